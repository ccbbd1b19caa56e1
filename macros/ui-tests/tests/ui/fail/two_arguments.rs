use lambda_idempotency::idempotent;
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::Value;

#[idempotent(key = "/orderId")]
async fn handler(event: LambdaEvent<Value>, context: Context) -> Result<Value, Error> {
    let _ = context;
    Ok(event.payload)
}

fn main() {}
