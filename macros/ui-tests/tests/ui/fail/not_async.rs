use lambda_idempotency::idempotent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[idempotent(key = "/orderId")]
fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

fn main() {}
