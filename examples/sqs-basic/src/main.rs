//! An SQS consumer that applies each payment once, however often SQS delivers it:
//! a `BatchProcessor` runs each message once per body `paymentId` and reports the
//! messages that failed.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use lambda_idempotency::batch::aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_idempotency::batch::{BatchProcessor, Sqs};
use lambda_idempotency::store::{Store, dynamodb::DynamoDbStore};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

static APPLIED: AtomicUsize = AtomicUsize::new(0);

/// Applies one payment (its side effects go here); runs once per `paymentId`.
async fn apply(message: SqsMessage) -> Result<Value, Error> {
    let payment: Value = serde_json::from_str(&message.body.unwrap_or_default())?;
    APPLIED.fetch_add(1, SeqCst);
    Ok(json!({ "applied": payment["paymentId"] }))
}

/// Payments are keyed by the body's `paymentId` and compared by amount and currency
/// only; a body that is not JSON has no key and is reported failed.
fn batch(store: impl Store) -> Result<BatchProcessor<Sqs>, Error> {
    Ok(BatchProcessor::sqs(store)
        .name("payments")
        .key_pointer("/body|json/paymentId")
        .payload_pointers(["/body|json/amountCents", "/body|json/currency"])
        .build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = DynamoDbStore::from_env().await?; // IDEMPOTENCY_TABLE
    store.check_table().await?;
    let batch = batch(store)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let batch = batch.clone();
        async move { Ok::<_, Error>(batch.process(event, apply).await) }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};

    /// pay-001 twice (two message ids) and pay-002, from `events/`.
    fn delivery() -> LambdaEvent<super::SqsEvent> {
        let event = include_str!("../../../events/sqs-payments.batch.json");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let mut context = Context::default();
        context.deadline = u64::try_from(now.unwrap().as_millis()).unwrap() + 29_000;
        LambdaEvent::new(serde_json::from_str(event).unwrap(), context)
    }

    #[tokio::test]
    async fn each_payment_is_applied_once_across_duplicates_and_redelivery() {
        let batch = super::batch(lambda_idempotency::store::MemoryStore::new()).unwrap();
        for _delivery in 0..2 {
            let response = batch.process(delivery(), super::apply).await;
            assert!(response.batch_item_failures.is_empty());
        }
        assert_eq!(super::APPLIED.load(super::SeqCst), 2);
    }
}
