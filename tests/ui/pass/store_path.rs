//! `store = path` to the user's own async fn; the default store compiles too.

use lambda_idempotency::idempotent;
use lambda_idempotency::store::MemoryStore;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

mod stores {
    use lambda_idempotency::store::MemoryStore;

    pub async fn shared() -> Result<MemoryStore, lambda_idempotency::Error> {
        Ok(MemoryStore::new())
    }
}

async fn local() -> lambda_idempotency::Result<MemoryStore> {
    Ok(MemoryStore::new())
}

#[idempotent(key = "/id", store = stores::shared)]
async fn from_module(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[idempotent(key = "/id", store = crate::local)]
async fn from_crate(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[idempotent(key = "/id")]
async fn from_env(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[idempotent(key = "/id", store = "env")]
async fn from_env_explicitly(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

fn main() {
    let _ = lambda_runtime::service_fn(from_module);
    let _ = lambda_runtime::service_fn(from_crate);
    let _ = lambda_runtime::service_fn(from_env);
    let _ = lambda_runtime::service_fn(from_env_explicitly);
}
