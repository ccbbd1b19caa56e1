//! An SQS consumer that applies payment messages to a ledger, each exactly once.
//!
//! Every message is idempotent on its own (`lambda_idempotency::batch`): the key is
//! the body's `paymentId`, and only the body is compared, so the same payment sent
//! twice by a producer (two message ids) or redelivered by SQS is applied once.
//! Messages that fail (a body that is not a payment, a ledger error, a payment id
//! reused with another amount) are reported in `batchItemFailures`, so SQS
//! redelivers only those (the event source mapping needs `ReportBatchItemFailures`).

use std::sync::Arc;

use lambda_idempotency::batch::aws_lambda_events::event::sqs::{
    SqsBatchResponse, SqsEvent, SqsMessage,
};
use lambda_idempotency::batch::{BatchProcessor, BatchProcessorBuilder, Sqs};
use lambda_idempotency::store::Store;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

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

/// The consumer: a ledger and the per-message batch processor.
#[derive(Debug, Clone)]
pub struct Consumer {
    ledger: Arc<dyn Ledger>,
    batch: BatchProcessor<Sqs>,
}

impl Consumer {
    /// A consumer over `ledger`; `batch` must come from [`Consumer::batch_builder`].
    pub fn new(ledger: Arc<dyn Ledger>, batch: BatchProcessor<Sqs>) -> Self {
        Self { ledger, batch }
    }

    /// The batch processor's settings: the key is the body's `paymentId`, and only
    /// the body (as JSON) is compared.
    pub fn batch_builder(store: impl Store) -> BatchProcessorBuilder<Sqs> {
        BatchProcessor::sqs(store)
            .name("payments-consumer")
            .key_pointer("/body|json/paymentId")
            .payload_pointers(["/body|json"])
    }

    /// Processes a batch; failed messages are listed for redelivery.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let ledger = &*self.ledger;
        Ok(self
            .batch
            .process(event, |message| apply(ledger, message))
            .await)
    }
}

async fn apply(ledger: &dyn Ledger, message: SqsMessage) -> Result<Applied, MessageError> {
    let payment: Payment = serde_json::from_str(message.body.as_deref().unwrap_or_default())
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
