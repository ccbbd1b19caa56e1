//! An SQS consumer that applies each payment once, however often SQS delivers it:
//! each message goes through the event layer, keyed by its body's `paymentId`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_idempotency::event::EventIdempotencyLayer;
use lambda_idempotency::store::{Store, dynamodb::DynamoDbStore};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

static APPLIED: AtomicUsize = AtomicUsize::new(0);

/// Applies one payment (its side effects go here); runs once per `paymentId`.
async fn apply(payment: LambdaEvent<Value>) -> Result<Value, Error> {
    APPLIED.fetch_add(1, SeqCst);
    Ok(json!({ "applied": payment.payload["paymentId"] }))
}

/// Runs each message of the batch through the layer; reports the ones that failed.
async fn handle(layer: &EventIdempotencyLayer, event: LambdaEvent<SqsEvent>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.payload.records {
        let id = message.message_id.unwrap_or_default();
        // A body that is not JSON has no paymentId: refused, reported failed.
        let payload = serde_json::from_str(&message.body.unwrap_or_default());
        let payment = LambdaEvent::new(payload.unwrap_or(Value::Null), event.context.clone());
        if let Err(e) = layer.layer(service_fn(apply)).oneshot(payment).await {
            lambda_runtime::tracing::warn!(message_id = %id, error = %e, "payment not applied");
            response.add_failure(id);
        }
    }
    response
}

/// Payments are keyed by `paymentId` and compared by amount and currency only.
fn layer(store: impl Store) -> Result<EventIdempotencyLayer, Error> {
    let builder = EventIdempotencyLayer::builder(store).key_pointer("/paymentId");
    let builder = builder.payload_pointers(["/amountCents", "/currency"]);
    Ok(builder.name("payments").build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = DynamoDbStore::from_env().await?; // IDEMPOTENCY_TABLE
    store.check_table().await?;
    let layer = layer(store)?;
    lambda_runtime::run(service_fn(move |event| {
        let layer = layer.clone();
        async move { Ok::<_, Error>(handle(&layer, event).await) }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};

    /// pay-001 twice (two message ids) and pay-002, from `events/`.
    fn batch() -> LambdaEvent<super::SqsEvent> {
        let event = include_str!("../../../events/sqs-payments.batch.json");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let mut context = Context::default();
        context.deadline = u64::try_from(now.unwrap().as_millis()).unwrap() + 29_000;
        LambdaEvent::new(serde_json::from_str(event).unwrap(), context)
    }

    #[tokio::test]
    async fn each_payment_is_applied_once_across_duplicates_and_redelivery() {
        let layer = super::layer(lambda_idempotency::store::MemoryStore::new()).unwrap();
        for _delivery in 0..2 {
            let response = super::handle(&layer, batch()).await;
            assert!(response.batch_item_failures.is_empty());
        }
        assert_eq!(super::APPLIED.load(super::SeqCst), 2);
    }
}
