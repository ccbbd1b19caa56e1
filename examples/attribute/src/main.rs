//! An idempotent function in one attribute: `#[idempotent]` wraps the handler in the
//! event layer (keyed by the payload's `paymentId`, records kept 6 hours), so a
//! retried invocation returns the stored output instead of charging again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_idempotency::idempotent;
use lambda_idempotency::store::dynamodb::DynamoDbStore;
use lambda_idempotency::store::{MemoryStore, Store};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

static CHARGES: AtomicUsize = AtomicUsize::new(0);

/// The DynamoDB table named by `IDEMPOTENCY_TABLE`; without one (a local run, the
/// tests) an in-memory store.
async fn store() -> Result<Arc<dyn Store>, lambda_idempotency::Error> {
    if std::env::var_os(lambda_idempotency::store::dynamodb::ENV_TABLE).is_none() {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let store = DynamoDbStore::from_env().await?;
    store.check_table().await?;
    Ok(Arc::new(store))
}

/// Charges a payment: runs once per `paymentId`.
#[idempotent(key = "/paymentId", expiry = "6h", store = store)]
async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let charge = CHARGES.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(json!({ "chargeId": format!("ch-{charge}"), "amountCents": event.payload["amountCents"] }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(charge)).await
}

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};

    /// `events/charge.direct.json`, with a Lambda context 29 s from its deadline.
    fn invocation() -> LambdaEvent<serde_json::Value> {
        let event = include_str!("../../../events/charge.direct.json");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let mut context = Context::default();
        context.deadline = u64::try_from(now.unwrap().as_millis()).unwrap() + 29_000;
        LambdaEvent::new(serde_json::from_str(event).unwrap(), context)
    }

    #[tokio::test]
    async fn a_retried_invocation_returns_the_first_charge() {
        let first = super::charge(invocation()).await.unwrap();
        let retry = super::charge(invocation()).await.unwrap();
        assert_eq!(first["chargeId"], "ch-1");
        assert_eq!(retry, first);
        assert_eq!(super::CHARGES.load(super::Ordering::SeqCst), 1);
    }
}
