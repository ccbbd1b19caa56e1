use lambda_idempotency::idempotent;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

#[idempotent(key = "/orderId")]
async fn handler(event: LambdaEvent<Value>) -> Value {
    event.payload
}

fn main() {}
