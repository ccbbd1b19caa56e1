//! The default store is DynamoDB from the environment: without the library's
//! `dynamodb` feature it is a compile error that says so.

use lambda_idempotency::idempotent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[idempotent(key = "/id")]
async fn from_env(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

fn main() {
    let _ = lambda_runtime::service_fn(from_env);
}
