//! An event handler: key, expiry, the in-memory store. `main` calls it twice.

use lambda_idempotency::event::IdempotencyError;
use lambda_idempotency::idempotent;
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::{Value, json};

/// Doc comments and other attributes stay on the handler.
#[idempotent(key = "/orderId", expiry = "1h", store = "memory")]
pub async fn handle_order(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "accepted": event.payload["orderId"] }))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let event = || LambdaEvent::new(json!({ "orderId": "o-1" }), Context::default());
        let first: Result<Value, IdempotencyError<Error>> = handle_order(event()).await;
        let again = handle_order(event()).await;
        assert_eq!(first.unwrap(), again.unwrap());
    });
}
