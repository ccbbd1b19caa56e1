//! Where the API's idempotency records live: Redis when `IDEMPOTENCY_REDIS_URL` is
//! set (this crate's `redis` feature), else the DynamoDB table `IDEMPOTENCY_TABLE`.
//! The orders themselves always live in DynamoDB.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_http::Error;
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::{DynamoDbStore, ENV_TABLE, KeyLayout};

/// Environment variable that selects the Redis store (its URL).
pub const ENV_REDIS_URL: &str = "IDEMPOTENCY_REDIS_URL";

/// The Redis URL, when one is set.
pub fn redis_url() -> Option<String> {
    std::env::var(ENV_REDIS_URL).ok().filter(|u| !u.is_empty())
}

/// A check of the store, to run beside the function's other start-up calls.
pub type Check = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The store the environment names, and its check (the table's key schema and
/// replication, or a `PING`), not yet run: `main` runs it at the same time as the
/// orders table's, so start-up waits for one round trip instead of two.
pub async fn from_env(client: &aws_sdk_dynamodb::Client) -> Result<(Arc<dyn Store>, Check), Error> {
    if let Some(url) = redis_url() {
        return redis(&url).await;
    }
    let table = function_support::required_env(ENV_TABLE, "a DynamoDB table")?;
    let store = DynamoDbStore::new(client.clone(), table).with_key_layout(KeyLayout::from_env()?);
    let checked = store.clone();
    let check: Check = Box::pin(async move { Ok(checked.check_table().await?) });
    Ok((Arc::new(store), check))
}

/// The Redis store at `url`, and its check.
#[cfg(feature = "redis")]
pub async fn redis(url: &str) -> Result<(Arc<dyn Store>, Check), Error> {
    let store = lambda_idempotency::store::redis::RedisStore::connect(url).await?;
    let checked = store.clone();
    let check: Check = Box::pin(async move { Ok(checked.check().await?) });
    Ok((Arc::new(store), check))
}

/// Without the `redis` feature there is no Redis store: say how to get one.
#[cfg(not(feature = "redis"))]
pub async fn redis(_url: &str) -> Result<(Arc<dyn Store>, Check), Error> {
    Err(format!(
        "{ENV_REDIS_URL} is set, but orders-api was built without its `redis` feature: \
         build it with `--features redis` (or unset {ENV_REDIS_URL} to use DynamoDB)"
    )
    .into())
}
