use lambda_idempotency::idempotent;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

struct Orders;

impl Orders {
    #[idempotent(key = "/orderId")]
    async fn handler(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(event.payload)
    }
}

fn main() {}
