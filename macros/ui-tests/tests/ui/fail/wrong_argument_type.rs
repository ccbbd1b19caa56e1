use lambda_idempotency::idempotent;
use lambda_runtime::Error;
use serde_json::Value;

// A handler whose argument is not a `LambdaEvent<T>` is a plain function: its input
// is `{"event": ...}`, so a key meant for the payload cannot match.
#[idempotent(key = "/orderId", store = "memory")]
async fn handler(event: Value) -> Result<Value, Error> {
    Ok(event)
}

fn main() {}
