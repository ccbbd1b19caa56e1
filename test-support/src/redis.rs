//! The redis-server that `scripts/with-redis.sh` starts, and stores over it that
//! never share keys with another test.

use lambda_idempotency::clock::Clock;
use lambda_idempotency::store::redis::RedisStore;

/// The test server's URL, from `IDEMPOTENCY_TEST_REDIS_URL`.
pub fn redis_url() -> String {
    match std::env::var("IDEMPOTENCY_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "IDEMPOTENCY_TEST_REDIS_URL is not set: this test needs a real redis-server. \
             Run it with `make test`, or wrap the command in scripts/with-redis.sh \
             (it needs the Debian package redis-server)"
        ),
    }
}

/// A store over the test server with a key prefix of its own and `clock`.
pub async fn redis_store(clock: impl Clock) -> RedisStore {
    RedisStore::connect(&redis_url())
        .await
        .expect("the test redis-server answers")
        .with_prefix(format!("test-{}:", uuid::Uuid::new_v4()))
        .with_clock(clock)
}
