//! Batches with per-record idempotency: SQS (standard and FIFO), Kinesis Data
//! Streams and DynamoDB Streams, with partial batch responses.
//!
//! A batch is delivered again when any of it fails, and a record may come twice in
//! one batch (a producer's duplicate) or in the next. [`BatchProcessor`] runs your
//! record handler once per record key and reports only the records that failed, in
//! the response Lambda reads (`batchItemFailures`; the event source mapping needs
//! `FunctionResponseTypes: [ReportBatchItemFailures]`). A record whose key completed
//! earlier is a success without running again.
//!
//! | source | order | a failure |
//! |---|---|---|
//! | SQS standard | up to [`concurrency`](BatchProcessorBuilder::concurrency) keys at once (default 1: one record after the other, in order, except that copies of a key run right after its first record) | that record is reported and redelivered; the others go on |
//! | SQS FIFO (ARN ends in `.fifo`) | in order within each message group; groups at once up to `concurrency` | the rest of that group is reported without running (its order must hold); other groups go on |
//! | Kinesis, DynamoDB Streams | in order | a checkpoint: that record is reported and nothing after it runs; Lambda delivers again from it |
//!
//! Records of one SQS standard batch that share a key run one after the other,
//! whatever the concurrency, so a duplicate inside a batch runs once and the second
//! copy is a success; so do copies within one FIFO message group, and within a
//! Kinesis or DynamoDB Streams batch (which run in order). On a FIFO queue with a
//! concurrency above 1, the same key in two different message groups can meet in
//! flight: the later one is reported and replays when redelivered. A record whose key
//! completed earlier is a success without reading its stored output, so an output type
//! that changed between deployments never fails a record that was processed. A record is seen as JSON (its `aws_lambda_events` form) by the key and
//! payload [selectors](crate::event::Selector): `/body|json/paymentId` reaches into
//! an SQS body, `/kinesis/data|base64|json/orderId` into Kinesis data. Each source
//! keys by the record's own id and compares its content by default (see [`Sqs`],
//! [`Kinesis`], [`DynamoDbStreams`]); a business key (a payment id) also catches a
//! producer that sent the same thing twice.
//!
//! A record fails when: the handler returns `Err` (or panics: the panic is caught,
//! logged and the record reported, so one poison record does not fail the whole
//! batch forever); it has no key (unless [`MissingKey::PassThrough`]); its key was used
//! with different content (`KeyMismatch`); the same key is in flight in another
//! invocation; or the store cannot be reached. Each failure is logged with the
//! record's identifier and why. A missing key or a `KeyMismatch` does not go away on
//! redelivery: on SQS the record ends in the queue's dead-letter queue after
//! `maxReceiveCount`; on Kinesis and DynamoDB Streams it is a checkpoint that holds
//! the shard back until the event source mapping's `MaximumRetryAttempts` or
//! `MaximumRecordAgeInSeconds` gives up on it (set them, with an on-failure
//! destination), so choose keys and compared parts that a redelivery keeps.
//!
//! ```
//! use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
//! use lambda_idempotency::batch::BatchProcessor;
//! use lambda_idempotency::store::MemoryStore;
//! use lambda_runtime::{Context, LambdaEvent};
//! use serde_json::json;
//!
//! async fn apply_payment(message: SqsMessage) -> Result<(), String> {
//!     let body = message.body.unwrap_or_default();
//!     if body.contains("\"amount\":-") { return Err("negative amount".into()); }
//!     Ok(()) // write the ledger entry
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let batch = BatchProcessor::sqs(MemoryStore::new())
//!     .key_pointer("/body|json/paymentId")
//!     .build()?;
//! // In a function: lambda_runtime::run(service_fn(|event| async {
//! //     Ok::<_, Error>(batch.process(event, apply_payment).await) })).await
//!
//! let message = |id: &str, body: serde_json::Value| json!({"messageId": id, "body": body.to_string()});
//! let event: SqsEvent = serde_json::from_value(json!({"Records": [
//!     message("m-1", json!({"paymentId": "p-1", "amount": 5})),
//!     message("m-2", json!({"paymentId": "p-2", "amount": -1})),
//!     message("m-3", json!({"paymentId": "p-1", "amount": 5})), // a producer's duplicate
//! ]}))?;
//! let response = batch.process(LambdaEvent::new(event, Context::default()), apply_payment).await;
//! let failed: Vec<_> = response.batch_item_failures.iter()
//!     .map(|f| f.item_identifier.as_str()).collect();
//! assert_eq!(failed, ["m-2"]); // p-1 ran once; m-3 is its replay
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`MissingKey::PassThrough`]: crate::event::MissingKey::PassThrough

mod run;
mod source;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde::Serialize;

pub use source::{BatchSource, DynamoDbStreams, Kinesis, Sqs};

/// The `aws_lambda_events` the batch types come from (`SqsEvent`, `SqsMessage`,
/// `KinesisEventRecord`, ...), so a function can name them without depending on a
/// second copy of the crate.
pub use aws_lambda_events;

use crate::config::ConfigError;
use crate::engine::{CoreBuilder, core_builder_methods};
use crate::event::settings::{EventSettings, PayloadParts, payload_builder_methods};
use crate::store::Store;

/// Processes the records of an `S` batch, each idempotent; see the [module
/// docs](self). Cheap to clone; build it once (at start-up) and share it.
pub struct BatchProcessor<S> {
    settings: Arc<EventSettings>,
    concurrency: NonZeroUsize,
    source: PhantomData<fn() -> S>,
}

impl<S> Clone for BatchProcessor<S> {
    fn clone(&self) -> Self {
        Self {
            settings: Arc::clone(&self.settings),
            concurrency: self.concurrency,
            source: PhantomData,
        }
    }
}

impl<S> fmt::Debug for BatchProcessor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("BatchProcessor")
            .field("source", &std::any::type_name::<S>())
            .field("name", &s.name)
            .field("store", &s.core.store)
            .field("key", &s.key)
            .field("payload", &s.payload)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl BatchProcessor<Sqs> {
    /// A builder for SQS batches (standard and FIFO queues) over `store`.
    pub fn sqs(store: impl Store) -> BatchProcessorBuilder<Sqs> {
        BatchProcessorBuilder::new(store)
    }
}

impl BatchProcessor<Kinesis> {
    /// A builder for Kinesis Data Streams batches over `store`.
    pub fn kinesis(store: impl Store) -> BatchProcessorBuilder<Kinesis> {
        BatchProcessorBuilder::new(store)
    }
}

impl BatchProcessor<DynamoDbStreams> {
    /// A builder for DynamoDB Streams batches over `store`.
    pub fn dynamodb_streams(store: impl Store) -> BatchProcessorBuilder<DynamoDbStreams> {
        BatchProcessorBuilder::new(store)
    }
}

impl<S: BatchSource> BatchProcessor<S> {
    /// Runs `handler` for each record of `event` (at most once per key, see the
    /// [module docs](self) for order and concurrency) and returns the partial batch
    /// response: the records that failed, for Lambda to deliver again. The output of
    /// each run is stored, so a record seen again is a success without running.
    #[must_use = "return the response to Lambda: dropping it acknowledges every record, failed ones included"]
    pub async fn process<F, Fut, O, E>(
        &self,
        event: LambdaEvent<S::Event>,
        handler: F,
    ) -> S::Response
    where
        F: Fn(S::Record) -> Fut + Sync,
        Fut: Future<Output = Result<O, E>> + Send,
        O: Serialize,
        E: fmt::Display,
    {
        let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let (records, order) = S::records(event.payload);
        let failed = run::process::<S, _, _, _, _>(
            &self.settings,
            self.concurrency,
            order,
            deadline,
            records,
            &handler,
        )
        .await;
        S::response(failed)
    }
}

/// Builds a [`BatchProcessor`].
#[must_use]
pub struct BatchProcessorBuilder<S> {
    core: CoreBuilder,
    parts: PayloadParts,
    concurrency: NonZeroUsize,
    source: PhantomData<fn() -> S>,
}

impl<S: BatchSource> BatchProcessorBuilder<S> {
    fn new(store: impl Store) -> Self {
        Self {
            core: CoreBuilder::new(store),
            parts: PayloadParts::default(),
            concurrency: NonZeroUsize::MIN,
            source: PhantomData,
        }
    }

    core_builder_methods!();
    payload_builder_methods!();

    /// How many records of an SQS batch may run at once (default 1: one after the
    /// other, in order). For a FIFO queue, how many message groups; each group stays
    /// in order. Kinesis and DynamoDB Streams batches always run in order.
    pub fn concurrency(mut self, concurrency: NonZeroUsize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Checks the selectors and builds the processor; the source's defaults fill in
    /// the key and the payload compared where none were set.
    pub fn build(self) -> Result<BatchProcessor<S>, ConfigError> {
        let parts = self
            .parts
            .or_defaults(&[S::DEFAULT_KEY], S::DEFAULT_PAYLOAD);
        Ok(BatchProcessor {
            settings: Arc::new(parts.build(self.core)?),
            concurrency: self.concurrency,
            source: PhantomData,
        })
    }
}
