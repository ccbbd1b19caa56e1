//! Where the API's idempotency records live: Redis when `IDEMPOTENCY_REDIS_URL` is
//! set (this crate's `redis` feature), else the DynamoDB table `IDEMPOTENCY_TABLE`.
//! The orders themselves always live in DynamoDB.

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

/// The store the environment names, checked (the table's key schema and
/// replication, or a `PING`).
pub async fn from_env(client: &aws_sdk_dynamodb::Client) -> Result<Arc<dyn Store>, Error> {
    if let Some(url) = redis_url() {
        return redis(&url).await;
    }
    let table = function_support::required_env(ENV_TABLE, "a DynamoDB table")?;
    let store = DynamoDbStore::new(client.clone(), table).with_key_layout(KeyLayout::from_env()?);
    store.check_table().await?;
    Ok(Arc::new(store))
}

/// The Redis store at `url`, checked.
#[cfg(feature = "redis")]
pub async fn redis(url: &str) -> Result<Arc<dyn Store>, Error> {
    let store = lambda_idempotency::store::redis::RedisStore::connect(url).await?;
    store.check().await?;
    Ok(Arc::new(store))
}

/// Without the `redis` feature there is no Redis store: say how to get one.
#[cfg(not(feature = "redis"))]
pub async fn redis(_url: &str) -> Result<Arc<dyn Store>, Error> {
    Err(format!(
        "{ENV_REDIS_URL} is set, but orders-api was built without its `redis` feature: \
         build it with `--features redis` (or unset {ENV_REDIS_URL} to use DynamoDB)"
    )
    .into())
}
