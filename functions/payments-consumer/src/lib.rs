//! An SQS consumer that applies payment messages to a ledger, each exactly once.
//!
//! Every message is idempotent on its own: the key is the body's `paymentId`
//! (falling back to the SQS message id), and only the body is compared, so the same
//! payment sent twice by a producer (two message ids) or redelivered by SQS is applied
//! once. Messages that fail are reported in `batchItemFailures`, so SQS redelivers
//! only those (the event source mapping needs `ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_idempotency::event::{EventIdempotencyLayer, IdempotencyError};
use lambda_runtime::{Context, Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

pub mod ledger;

use ledger::Ledger;

/// Environment variable naming the ledger table.
pub const ENV_LEDGER_TABLE: &str = "LEDGER_TABLE";

/// A payment message's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payment {
    /// The producer's id for the payment: the idempotency key.
    pub payment_id: String,
    /// The order paid.
    pub order_id: String,
    /// Amount in minor units, positive.
    pub amount_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// What applying one payment produced; stored and replayed for duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The payment.
    pub payment_id: String,
    /// The ledger entry written.
    pub entry_id: String,
    /// The order's balance right after.
    pub balance_cents: i64,
}

/// Why a message was not applied.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The body is not a payment.
    #[error("invalid payment message: {0}")]
    Invalid(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}

/// The consumer: a ledger and the per-message idempotency layer.
#[derive(Debug, Clone)]
pub struct Consumer {
    ledger: Arc<dyn Ledger>,
    layer: EventIdempotencyLayer,
}

impl Consumer {
    /// A consumer over `ledger`; `layer` must come from [`Consumer::layer_builder`].
    pub fn new(ledger: Arc<dyn Ledger>, layer: EventIdempotencyLayer) -> Self {
        Self { ledger, layer }
    }

    /// The per-message layer's settings: key from `/body/paymentId`, else
    /// `/messageId`; only `/body` is compared.
    pub fn layer_builder(
        store: impl lambda_idempotency::store::Store,
    ) -> lambda_idempotency::event::EventIdempotencyLayerBuilder {
        EventIdempotencyLayer::builder(store)
            .name("payments-consumer")
            .key_fn(|message: &Value| {
                message
                    .pointer("/body/paymentId")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .or_else(|| message.get("messageId").and_then(Value::as_str))
                    .map(str::to_owned)
            })
            .payload_pointers(["/body"])
    }

    /// Processes a batch; failed messages are listed for redelivery.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut response = SqsBatchResponse::default();
        for message in &event.payload.records {
            let id = message.message_id.clone().unwrap_or_default();
            match self.process(message, &event.context).await {
                Ok(applied) => {
                    tracing::info!(message_id = %id, payment_id = %applied.payment_id, entry_id = %applied.entry_id, "payment applied")
                }
                Err(e) => {
                    match &e {
                        IdempotencyError::KeyMismatch { .. } => {
                            tracing::warn!(message_id = %id, error = %e, "payment id reused with a different body")
                        }
                        _ => {
                            tracing::warn!(message_id = %id, error = %e, "message failed; SQS will redeliver it")
                        }
                    }
                    response.add_failure(id);
                }
            }
        }
        Ok(response)
    }

    /// One message through the idempotency layer. Boxed, so the batch future stays
    /// provably `Send` for the runtime.
    fn process(&self, message: &SqsMessage, context: &Context) -> ProcessFuture {
        let ledger = Arc::clone(&self.ledger);
        let apply = tower::service_fn(move |e: LambdaEvent<Value>| {
            let ledger = Arc::clone(&ledger);
            async move { apply(&*ledger, &e.payload).await }
        });
        let event = LambdaEvent::new(message_payload(message), context.clone());
        Box::pin(self.layer.layer(apply).oneshot(event))
    }
}

type ProcessFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Applied, IdempotencyError<MessageError>>> + Send>,
>;

/// The per-message payload the layer sees: the message id and the body (parsed when
/// it is JSON, else the raw text, so a poison message still has a fingerprint).
fn message_payload(message: &SqsMessage) -> Value {
    let body = message.body.as_deref().unwrap_or_default();
    let body =
        serde_json::from_str::<Value>(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    json!({"messageId": message.message_id, "body": body})
}

async fn apply(ledger: &dyn Ledger, message: &Value) -> Result<Applied, MessageError> {
    let payment: Payment = serde_json::from_value(message["body"].clone())
        .map_err(|e| MessageError::Invalid(e.to_string()))?;
    if payment.amount_cents <= 0 {
        return Err(MessageError::Invalid(
            "amountCents must be positive".to_owned(),
        ));
    }
    if payment.currency.len() != 3 {
        return Err(MessageError::Invalid(
            "currency must be an ISO 4217 code".to_owned(),
        ));
    }
    let (entry_id, balance_cents) = ledger
        .apply(&payment.payment_id, &payment.order_id, payment.amount_cents)
        .await?;
    Ok(Applied {
        payment_id: payment.payment_id,
        entry_id,
        balance_cents,
    })
}
