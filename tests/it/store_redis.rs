//! The behaviour suite and the Redis-specific checks, against a real redis-server.
//!
//! Needs `IDEMPOTENCY_TEST_REDIS_URL`: run with `make test` (scripts/with-redis.sh).

use crate::support;
use lambda_idempotency::testing as behaviour;

use std::sync::Arc;

use behaviour::{request, start, with_body};
use lambda_idempotency::Error;
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::record::Status;
use lambda_idempotency::store::redis::RedisStore;
use lambda_idempotency::store::{BeginOutcome, Store, WriteOutcome};

async fn make() -> (Arc<dyn Store>, ManualClock) {
    let clock = ManualClock::starting_now();
    (Arc::new(support::redis_store(clock.clone()).await), clock)
}

lambda_idempotency::behaviour_suite!(make());

/// A raw connection to the test server, to look at what the store wrote.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_record_is_one_hash_whose_key_outlives_the_record_by_a_minute() {
    let clock = ManualClock::starting_now();
    let store = support::redis_store(clock.clone()).await;
    store.check().await.unwrap();
    let r = request("{\"sku\":\"A1\"}");
    let lease = start(&store, &r).await;
    let key = store.redis_key(&lease.partition_key);
    assert!(key.starts_with('{') && key.contains("}test-"), "{key}");
    let mut conn = raw().await;
    let kind: String = redis::cmd("TYPE")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    let expire_at_ms: i64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let record = store.get(&lease.partition_key).await.unwrap().unwrap();
    assert_eq!(
        expire_at_ms,
        record.expires_at * 1000 + 60_000,
        "the key expires a minute after the record"
    );
    assert_eq!(record.status, Status::Pending);
    assert_eq!(
        store.complete(&lease, b"{\"ok\":true}").await.unwrap(),
        WriteOutcome::Written
    );
    let status: String = redis::cmd("HGET")
        .arg(&key)
        .arg("st")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "COMPLETED");
    assert!(store.delete(&lease.partition_key).await.unwrap());
    assert!(!store.delete(&lease.partition_key).await.unwrap());
}

#[tokio::test]
async fn a_replay_or_a_conflict_returns_the_blocking_record() {
    let clock = ManualClock::starting_now();
    let store = support::redis_store(clock.clone()).await;
    let r = request("{\"a\":1}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"done").await.unwrap();
    match store.begin(&r).await.unwrap() {
        BeginOutcome::Replay(record) => assert_eq!(record.response.as_deref(), Some(&b"done"[..])),
        other => panic!("{other:?}"),
    }
    match store.begin(&with_body(&r, "{\"a\":2}")).await.unwrap() {
        BeginOutcome::Mismatch(record) => assert_eq!(record.status, Status::Completed),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn large_responses_follow_the_dynamodb_size_rule() {
    let clock = ManualClock::starting_now();
    let store = support::redis_store(clock.clone()).await;
    // 390 KB of compressible JSON is kept compressed and read back exactly.
    let big = format!("[{}]", vec!["{\"sku\":\"A1\",\"qty\":1}"; 20_000].join(","));
    let r = request("{\"big\":1}");
    let lease = start(&store, &r).await;
    assert_eq!(
        store.complete(&lease, big.as_bytes()).await.unwrap(),
        WriteOutcome::Written
    );
    let record = store.get(&lease.partition_key).await.unwrap().unwrap();
    assert_eq!(record.response.as_deref(), Some(big.as_bytes()));
    let mut conn = raw().await;
    let stored: Vec<u8> = redis::cmd("HGET")
        .arg(store.redis_key(&lease.partition_key))
        .arg("resp")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        stored.len() < big.len() / 4,
        "kept compressed: {} bytes",
        stored.len()
    );
    // 2 MB that does not compress is not kept; the record completes without it.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            // xorshift64: bytes zstd cannot shrink.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let r = request("{\"noise\":1}");
    let lease = start(&store, &r).await;
    assert_eq!(
        store.complete(&lease, &noise).await.unwrap(),
        WriteOutcome::WrittenWithoutResponse { size: noise.len() }
    );
    let record = store.get(&lease.partition_key).await.unwrap().unwrap();
    assert_eq!(
        (record.response, record.response_omitted),
        (None, Some(noise.len() as u64))
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_a_corrupt_record_is_typed() {
    // Nothing listens on port 1.
    match RedisStore::connect("redis://127.0.0.1:1").await {
        Err(Error::StoreUnavailable { .. }) => {}
        other => panic!("{other:?}"),
    }
    match RedisStore::connect("redis://user:hunter2@[not a host").await {
        Err(e) => assert!(!e.to_string().contains("hunter2"), "{e}"),
        Ok(_) => panic!("a bad URL connected"),
    }
    let clock = ManualClock::starting_now();
    let store = support::redis_store(clock.clone()).await;
    let r = request("{\"c\":1}");
    let lease = start(&store, &r).await;
    let mut conn = raw().await;
    let _: () = redis::cmd("HSET")
        .arg(store.redis_key(&lease.partition_key))
        .arg("st")
        .arg("DONE")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store.get(&lease.partition_key).await,
        Err(Error::CorruptRecord { .. })
    ));
    assert!(matches!(
        store.begin(&r).await,
        Err(Error::CorruptRecord { .. })
    ));
    // Nothing was overwritten.
    let status: String = redis::cmd("HGET")
        .arg(store.redis_key(&lease.partition_key))
        .arg("st")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "DONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_server_that_may_evict_records_unless_allowed() {
    let redis = tokio::task::block_in_place(support::redis_process::RedisProcess::start);
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    store
        .check()
        .await
        .expect("redis-server's default policy is noeviction");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    match store.check().await {
        Err(Error::StoreRejected { message, .. }) => {
            assert!(
                message.contains("maxmemory-policy is volatile-lru"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    store.clone().allow_eviction().check().await.unwrap();
}
