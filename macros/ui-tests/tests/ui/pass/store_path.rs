//! `store = path` to the user's own async fn. (The default store, DynamoDB from the
//! environment, is compiled by the library's own tests, which have its feature.)

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

fn main() {
    let _ = lambda_runtime::service_fn(from_module);
    let _ = lambda_runtime::service_fn(from_crate);
}
