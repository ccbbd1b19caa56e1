//! The event sources a batch can come from, and what differs between them: the
//! records, their identifiers, the order they must keep, the defaults, the response.

use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisEventResponse,
};
use serde::Serialize;

/// How the records of one batch must be processed (reachable through
/// [`BatchSource`], not nameable outside the crate).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Any order (SQS standard): records may run concurrently.
    Any,
    /// In order within each message group (SQS FIFO): after a failure, the rest of
    /// the group is not run.
    PerGroup,
    /// In order, stopping at the first failure (Kinesis, DynamoDB Streams): the
    /// failure is a checkpoint, and everything from it is delivered again.
    Checkpoint,
}

mod sealed {
    pub trait Sealed {}
}

/// An event source [`BatchProcessor`](super::BatchProcessor) handles: [`Sqs`],
/// [`Kinesis`] or [`DynamoDbStreams`]. Sealed.
pub trait BatchSource: sealed::Sealed + Send + Sync + 'static {
    /// The Lambda event (`SqsEvent`, `KinesisEvent`, DynamoDB's `Event`).
    type Event: Send;
    /// One record of it.
    type Record: Serialize + Send;
    /// The partial-batch response Lambda reads (`batchItemFailures`).
    type Response: Default + Send;

    /// The key selector when none is set: the record's own id, the same on every
    /// redelivery of the record.
    #[doc(hidden)]
    const DEFAULT_KEY: &'static str;
    /// The parts compared when none are set: the record's content, not its delivery
    /// metadata (receive counts, timestamps).
    #[doc(hidden)]
    const DEFAULT_PAYLOAD: &'static [&'static str];

    /// The records, in delivery order, and the order they must keep.
    #[doc(hidden)]
    fn records(event: Self::Event) -> (Vec<Self::Record>, Order);
    /// The identifier Lambda expects in `batchItemFailures`.
    #[doc(hidden)]
    fn item_identifier(record: &Self::Record) -> String;
    /// The FIFO message group, where there is one.
    #[doc(hidden)]
    fn group(_record: &Self::Record) -> Option<&str> {
        None
    }
    /// The response listing `failed` (item identifiers).
    #[doc(hidden)]
    fn response(failed: Vec<String>) -> Self::Response;
}

/// Amazon SQS, standard and FIFO queues: `SqsEvent` in, `SqsBatchResponse` out.
///
/// A FIFO queue is recognised by its ARN (`eventSourceARN` ending in `.fifo`), not by
/// a `MessageGroupId` (a standard queue's fair-queue messages carry one too). Default
/// key: `/messageId`; default payload compared: `/body`.
#[derive(Debug, Clone, Copy)]
pub struct Sqs;

/// Amazon Kinesis Data Streams: `KinesisEvent` in, `KinesisEventResponse` out.
///
/// The record's `data` is base64: select inside it with
/// `/kinesis/data|base64|json/...`. Default key: `/eventID` (shard and sequence
/// number); default payload compared: `/kinesis/data`.
#[derive(Debug, Clone, Copy)]
pub struct Kinesis;

/// Amazon DynamoDB Streams: DynamoDB's `Event` in, `DynamoDbEventResponse` out.
///
/// The record's images are in DynamoDB's JSON (`{"S": "..."}`): select
/// `/dynamodb/Keys/pk/S` or `/dynamodb/NewImage/orderId/S`. Default key: `/eventID`;
/// default payload compared: `/eventName` and `/dynamodb/Keys`, `NewImage`,
/// `OldImage`.
#[derive(Debug, Clone, Copy)]
pub struct DynamoDbStreams;

impl sealed::Sealed for Sqs {}
impl sealed::Sealed for Kinesis {}
impl sealed::Sealed for DynamoDbStreams {}

impl BatchSource for Sqs {
    type Event = SqsEvent;
    type Record = SqsMessage;
    type Response = SqsBatchResponse;

    const DEFAULT_KEY: &'static str = "/messageId";
    const DEFAULT_PAYLOAD: &'static [&'static str] = &["/body"];

    fn records(event: SqsEvent) -> (Vec<SqsMessage>, Order) {
        let fifo = event.records.iter().any(|m| {
            m.event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(".fifo"))
        });
        let order = if fifo { Order::PerGroup } else { Order::Any };
        (event.records, order)
    }

    fn item_identifier(record: &SqsMessage) -> String {
        record.message_id.clone().unwrap_or_default()
    }

    fn group(record: &SqsMessage) -> Option<&str> {
        record.attributes.get("MessageGroupId").map(String::as_str)
    }

    fn response(failed: Vec<String>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for id in failed {
            response.add_failure(id);
        }
        response
    }
}

impl BatchSource for Kinesis {
    type Event = KinesisEvent;
    type Record = KinesisEventRecord;
    type Response = KinesisEventResponse;

    const DEFAULT_KEY: &'static str = "/eventID";
    const DEFAULT_PAYLOAD: &'static [&'static str] = &["/kinesis/data"];

    fn records(event: KinesisEvent) -> (Vec<KinesisEventRecord>, Order) {
        (event.records, Order::Checkpoint)
    }

    fn item_identifier(record: &KinesisEventRecord) -> String {
        record.kinesis.sequence_number.clone()
    }

    fn response(failed: Vec<String>) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        for id in failed {
            response.add_failure(id);
        }
        response
    }
}

impl BatchSource for DynamoDbStreams {
    type Event = DynamoDbEvent;
    type Record = EventRecord;
    type Response = DynamoDbEventResponse;

    const DEFAULT_KEY: &'static str = "/eventID";
    const DEFAULT_PAYLOAD: &'static [&'static str] = &[
        "/eventName",
        "/dynamodb/Keys",
        "/dynamodb/NewImage",
        "/dynamodb/OldImage",
    ];

    fn records(event: DynamoDbEvent) -> (Vec<EventRecord>, Order) {
        (event.records, Order::Checkpoint)
    }

    fn item_identifier(record: &EventRecord) -> String {
        record.change.sequence_number.clone().unwrap_or_default()
    }

    fn response(failed: Vec<String>) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for id in failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id);
            response.batch_item_failures.push(failure);
        }
        response
    }
}
