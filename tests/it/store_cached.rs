//! The behaviour suite on the warm cache in front of the in-memory store, and the
//! cache's own rules.

use lambda_idempotency::testing as behaviour;

use std::sync::Arc;
use std::time::Duration;

use behaviour::{request, start, with_body};
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::store::{BeginOutcome, CachedStore, MemoryStore, Store};

async fn make() -> (Arc<dyn Store>, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = CachedStore::new(MemoryStore::with_clock(clock.clone())).with_clock(clock.clone());
    (Arc::new(store), clock)
}

lambda_idempotency::behaviour_suite!(make());

fn cached() -> (CachedStore<MemoryStore>, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = CachedStore::new(MemoryStore::with_clock(clock.clone())).with_clock(clock.clone());
    (store, clock)
}

#[tokio::test]
async fn a_completed_record_is_replayed_from_the_cache_without_the_store() {
    let (store, _clock) = cached();
    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    assert_eq!(store.cached(), 1);
    // Remove it underneath: a replay still comes from the cache (that is the point;
    // staleness is bounded by max_age).
    store.inner().delete(r.scope.partition_key()).await.unwrap();
    let BeginOutcome::Replay(record) = store.begin(&r).await.unwrap() else {
        panic!("served from the cache");
    };
    assert_eq!(record.response.as_deref(), Some(&b"ok"[..]));
}

#[tokio::test]
async fn a_different_request_is_decided_by_the_store_not_the_cache() {
    let (store, _clock) = cached();
    let r = request(r#"{"n":1}"#);
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    assert!(matches!(
        store.begin(&with_body(&r, r#"{"n":2}"#)).await.unwrap(),
        BeginOutcome::Mismatch(_)
    ));
}

#[tokio::test]
async fn an_expired_record_is_never_served() {
    let (store, clock) = cached();
    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    clock.advance(behaviour::EXPIRY + Duration::from_secs(1));
    assert!(matches!(
        store.begin(&r).await.unwrap(),
        BeginOutcome::Started { .. }
    ));
}

#[tokio::test]
async fn staleness_is_bounded_by_max_age() {
    let (store, clock) = cached();
    let store = store.with_max_age(Duration::from_secs(60));
    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    store.inner().delete(r.scope.partition_key()).await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert!(
        matches!(store.begin(&r).await.unwrap(), BeginOutcome::Started { .. }),
        "the store decides again"
    );
}

#[tokio::test]
async fn pending_and_errored_records_are_never_cached() {
    let (store, _clock) = cached();
    let r = request("{}");
    let lease = start(&store, &r).await;
    assert!(matches!(
        store.begin(&r).await.unwrap(),
        BeginOutcome::InFlight(_)
    ));
    store.fail(&lease).await.unwrap();
    assert_eq!(store.cached(), 0);
    assert!(matches!(
        store.begin(&r).await.unwrap(),
        BeginOutcome::Started { .. }
    ));
}

#[tokio::test]
async fn the_cache_is_bounded_by_count_and_bytes() {
    let (store, _clock) = cached();
    let store = store.with_capacity(3).with_max_bytes(1000);
    for i in 0..5 {
        let lease = start(&store, &request(&format!(r#"{{"i":{i}}}"#))).await;
        store.complete(&lease, &[0; 100]).await.unwrap();
    }
    assert_eq!(store.cached(), 3);
    let lease = start(&store, &request("{}")).await;
    store.complete(&lease, &[0; 950]).await.unwrap();
    assert_eq!(
        store.cached(),
        1,
        "950 + 100 bytes > 1000: older entries evicted"
    );
    let lease = start(&store, &request(r#"{"big":1}"#)).await;
    store.complete(&lease, &[0; 5000]).await.unwrap();
    assert_eq!(
        store.cached(),
        1,
        "a response larger than the bound is not cached"
    );
}

/// A record too large to cache must still evict the entry it replaces: otherwise the
/// old entry (another request's response) stays and is replayed to its request
/// although the store now holds a different one.
#[tokio::test]
async fn a_record_too_large_to_cache_still_evicts_the_old_entry_for_its_key() {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = CachedStore::new(MemoryStore::with_clock(clock.clone()))
        .with_clock(clock.clone())
        .with_max_bytes(64);
    let a = request(r#"{"n":"a"}"#);
    let lease = start(&store, &a).await;
    store.complete(&lease, b"small").await.unwrap();
    assert_eq!(store.cached(), 1);

    // Another instance purges the record and a different request takes the key, with
    // a response too large for this cache.
    store.inner().delete(a.scope.partition_key()).await.unwrap();
    let b = with_body(&a, r#"{"n":"b"}"#);
    let lease = start(store.inner(), &b).await;
    store.inner().complete(&lease, &[b'x'; 100]).await.unwrap();

    // B's replay comes from the store (too large to cache) ...
    let BeginOutcome::Replay(record) = store.begin(&b).await.unwrap() else {
        panic!("B replays");
    };
    assert_eq!(record.response.as_deref().map(<[u8]>::len), Some(100));
    // ... and A's stale entry is gone: A is now told it differs from the stored request.
    assert_eq!(store.cached(), 0);
    assert!(matches!(
        store.begin(&a).await.unwrap(),
        BeginOutcome::Mismatch(_)
    ));
}
