//! Batches with per-record idempotency (`lambda_idempotency::batch`): SQS standard
//! and FIFO, Kinesis and DynamoDB Streams, from the sample events in `events/`, on
//! the in-memory store and on DynamoDB Local (`make test`).

use crate::support;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lambda_idempotency::batch::BatchProcessor;
use lambda_idempotency::batch::aws_lambda_events::event::dynamodb::{
    Event as DynamoDbEvent, EventRecord,
};
use lambda_idempotency::batch::aws_lambda_events::event::kinesis::{
    KinesisEvent, KinesisEventRecord,
};
use lambda_idempotency::batch::aws_lambda_events::event::sqs::{
    SqsBatchResponse, SqsEvent, SqsMessage,
};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// How often the handler ran, per payment (or order) id.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<String, usize>>>);

impl Runs {
    fn hit(&self, id: &str) -> usize {
        let mut runs = self.0.lock().unwrap();
        let n = runs.entry(id.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn of(&self, id: &str) -> usize {
        self.0.lock().unwrap().get(id).copied().unwrap_or_default()
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
}

fn event<T: serde::de::DeserializeOwned>(name: &str) -> LambdaEvent<T> {
    let payload = serde_json::from_value(support::events::json(name))
        .unwrap_or_else(|e| panic!("events/{name}.json: {e}"));
    LambdaEvent::new(payload, Context::default())
}

fn failed_sqs(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// The message id of `events/sqs-payments.*` message `n` (they are numbered).
fn message_id(n: u32) -> String {
    if n < 10 {
        format!("3b9c1f3e-{n:04}-4a51-9d0e-{n:012}")
    } else {
        format!("5f1e2d3c-{n:04}-4b6a-8c7d-{n:012}")
    }
}

fn body(message: &SqsMessage) -> Value {
    serde_json::from_str(message.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null)
}

/// Applies a payment: fails on a negative amount, panics on `"panic"` as currency.
async fn apply(runs: Runs, message: SqsMessage) -> Result<String, String> {
    let payment = body(&message);
    let id = payment["paymentId"].as_str().unwrap_or_default().to_owned();
    runs.hit(&id);
    if payment["currency"] == "panic" {
        panic!("the ledger client panicked on {id}");
    }
    if payment["amountCents"].as_i64().unwrap_or(-1) < 0 {
        return Err(format!("{id}: the amount must be positive"));
    }
    Ok(format!("entry-for-{id}"))
}

fn sqs_processor(store: impl Store) -> BatchProcessor<lambda_idempotency::batch::Sqs> {
    BatchProcessor::sqs(store)
        .name("payments")
        .key_pointer("/body|json/paymentId")
        .payload_pointers(["/body|json"])
        .build()
        .unwrap()
}

async fn dynamodb_store() -> DynamoDbStore {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    DynamoDbStore::new(client, table)
}

/// A batch with a producer's duplicate runs each payment once; a redelivered batch
/// runs nothing again.
async fn duplicates_run_once(store: impl Store) {
    let batch = sqs_processor(store);
    let runs = Runs::default();
    let handler = |m| apply(runs.clone(), m);
    let response = batch.process(event("sqs-payments.batch"), handler).await;
    assert_eq!(failed_sqs(&response), Vec::<String>::new());
    assert_eq!(runs.of("pay-001"), 1, "message 3 is message 1 sent twice");
    assert_eq!(runs.of("pay-002"), 1);

    let again = batch
        .process(event("sqs-payments.redelivered"), handler)
        .await;
    assert_eq!(failed_sqs(&again), Vec::<String>::new());
    assert_eq!(runs.total(), 2, "a redelivered batch is replayed, not run");
}

#[tokio::test]
async fn a_batch_with_duplicates_runs_each_payment_once_in_memory() {
    duplicates_run_once(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_batch_with_duplicates_runs_each_payment_once_on_dynamodb() {
    duplicates_run_once(dynamodb_store().await).await;
}

/// After a partial failure only the failed record is reported; its redelivery runs
/// it again, and the records that succeeded are replayed.
async fn a_partial_failure_is_redelivered_and_completes(store: impl Store) {
    let batch = sqs_processor(store);
    let runs = Runs::default();
    // pay-002 fails on its first run only (a timeout downstream).
    let flaky = |m: SqsMessage| {
        let runs = runs.clone();
        async move {
            let id = body(&m)["paymentId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if runs.hit(&id) == 1 && id == "pay-002" {
                return Err("ledger timed out".to_owned());
            }
            Ok(())
        }
    };
    let first = batch.process(event("sqs-payments.batch"), flaky).await;
    assert_eq!(failed_sqs(&first), [message_id(2)]);
    let redelivered = batch
        .process(event("sqs-payments.redelivered"), flaky)
        .await;
    assert_eq!(failed_sqs(&redelivered), Vec::<String>::new());
    assert_eq!(runs.of("pay-001"), 1);
    assert_eq!(runs.of("pay-002"), 2, "the failed payment ran again");
}

#[tokio::test]
async fn a_partial_failure_is_redelivered_and_completes_in_memory() {
    a_partial_failure_is_redelivered_and_completes(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_partial_failure_is_redelivered_and_completes_on_dynamodb() {
    a_partial_failure_is_redelivered_and_completes(dynamodb_store().await).await;
}

#[tokio::test]
async fn poison_records_fail_alone_and_a_reused_key_is_refused() {
    let batch = sqs_processor(MemoryStore::new());
    let runs = Runs::default();
    let handler = |m| apply(runs.clone(), m);
    // pay-001 completes with 1000 cents first.
    let first = batch.process(event("sqs-payments.batch"), handler).await;
    assert_eq!(failed_sqs(&first), Vec::<String>::new());
    // Message 4 is fine; 5 is not JSON (no key); 6 has a negative amount (the
    // handler fails); 7 reuses pay-001 with another amount (KeyMismatch).
    let response = batch
        .process(event("sqs-payments.with-failures"), handler)
        .await;
    assert_eq!(
        failed_sqs(&response),
        [message_id(5), message_id(6), message_id(7)]
    );
    assert_eq!(runs.of("pay-003"), 1);
    assert_eq!(runs.of("pay-004"), 1);
    assert_eq!(runs.of("pay-001"), 1, "the reused key did not run");
}

#[tokio::test]
async fn a_panicking_record_fails_alone_and_runs_again_when_redelivered() {
    let batch = sqs_processor(MemoryStore::new());
    let runs = Runs::default();
    let mut poisoned = support::events::json("sqs-payments.batch");
    poisoned["Records"][1]["body"] = Value::String(
        r#"{"paymentId":"pay-002","orderId":"ord-A","amountCents":250,"currency":"panic"}"#
            .to_owned(),
    );
    let poisoned: SqsEvent = serde_json::from_value(poisoned).unwrap();
    let response = batch
        .process(
            LambdaEvent::new(poisoned.clone(), Context::default()),
            |m| apply(runs.clone(), m),
        )
        .await;
    assert_eq!(failed_sqs(&response), [message_id(2)]);
    assert_eq!(runs.of("pay-001"), 1);
    // The panic left the record ERRORED: the redelivery runs it again.
    let again = batch
        .process(LambdaEvent::new(poisoned, Context::default()), |m| {
            apply(runs.clone(), m)
        })
        .await;
    assert_eq!(failed_sqs(&again), [message_id(2)]);
    assert_eq!(runs.of("pay-002"), 2);
    assert_eq!(runs.of("pay-001"), 1);
}

async fn fifo_short_circuits_the_failed_group(concurrency: usize) {
    let batch = BatchProcessor::sqs(MemoryStore::new())
        .key_pointer("/body|json/paymentId")
        .concurrency(NonZeroUsize::new(concurrency).unwrap())
        .build()
        .unwrap();
    let runs = Runs::default();
    let order = Arc::new(Mutex::new(Vec::new()));
    let handler = |m: SqsMessage| {
        let (runs, order) = (runs.clone(), Arc::clone(&order));
        async move {
            let id = body(&m)["paymentId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            order.lock().unwrap().push(id.clone());
            apply(runs, m).await
        }
    };
    let response = batch.process(event("sqs-payments.fifo"), handler).await;
    // Group ord-A: 10 runs, 11 fails, 12 is reported without running. Group ord-B
    // (20, 21) is not affected.
    assert_eq!(failed_sqs(&response), [message_id(11), message_id(12)]);
    assert_eq!(runs.of("pay-012"), 0, "after a failure the group stops");
    for id in ["pay-010", "pay-011", "pay-020", "pay-021"] {
        assert_eq!(runs.of(id), 1, "{id}");
    }
    let order = order.lock().unwrap().clone();
    let position = |id: &str| order.iter().position(|o| o == id).unwrap();
    assert!(position("pay-010") < position("pay-011"), "{order:?}");
    assert!(position("pay-020") < position("pay-021"), "{order:?}");
}

#[tokio::test]
async fn fifo_stops_a_message_group_at_its_first_failure_and_goes_on_with_the_others() {
    fifo_short_circuits_the_failed_group(1).await;
    fifo_short_circuits_the_failed_group(2).await;
}

#[tokio::test]
async fn concurrent_records_with_duplicates_still_run_each_key_once() {
    let batch = BatchProcessor::sqs(MemoryStore::new())
        .key_pointer("/body|json/paymentId")
        .concurrency(NonZeroUsize::new(8).unwrap())
        .build()
        .unwrap();
    // 40 messages, 10 payments, each sent 4 times, interleaved.
    let mut records = Vec::new();
    let template = support::events::json("sqs-payments.batch")["Records"][0].clone();
    for copy in 0..4 {
        for payment in 0..10 {
            let mut message = template.clone();
            message["messageId"] = Value::String(format!("m-{copy}-{payment}"));
            message["body"] = Value::String(format!(
                r#"{{"paymentId":"pay-{payment}","amountCents":{}}}"#,
                100 + payment
            ));
            records.push(message);
        }
    }
    let event: SqsEvent =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let runs = Runs::default();
    let response = batch
        .process(LambdaEvent::new(event, Context::default()), |m| {
            let runs = runs.clone();
            async move {
                // Long enough for the copies to overlap if they were not grouped.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                apply(runs, m).await
            }
        })
        .await;
    assert_eq!(
        failed_sqs(&response),
        Vec::<String>::new(),
        "no copy was in flight"
    );
    for payment in 0..10 {
        assert_eq!(runs.of(&format!("pay-{payment}")), 1);
    }
}

fn kinesis_order(record: &KinesisEventRecord) -> Value {
    serde_json::from_slice(&record.kinesis.data.0).unwrap()
}

fn dynamodb_order(record: &EventRecord) -> Value {
    let image = serde_json::to_value(&record.change.new_image).unwrap();
    serde_json::json!({
        "orderId": image["pk"]["S"],
        "amountCents": image["amountCents"]["N"].as_str().and_then(|n| n.parse::<i64>().ok()),
    })
}

/// Fails an order with a negative amount until `fixed`.
async fn ship(runs: Runs, order: Value, fixed: bool) -> Result<(), String> {
    let id = order["orderId"].as_str().unwrap_or("(none)").to_owned();
    runs.hit(&id);
    match order["amountCents"].as_i64() {
        Some(n) if n < 0 && !fixed => Err(format!("{id}: negative amount")),
        _ => Ok(()),
    }
}

async fn a_kinesis_failure_is_a_checkpoint(store: impl Store) {
    let batch = BatchProcessor::kinesis(store)
        .key_pointer("/kinesis/data|base64|json/orderId")
        .build()
        .unwrap();
    let runs = Runs::default();
    let handler = |fixed: bool| {
        let runs = runs.clone();
        move |r: KinesisEventRecord| ship(runs.clone(), kinesis_order(&r), fixed)
    };
    let response = batch
        .process(
            event::<KinesisEvent>("kinesis-orders.batch"),
            handler(false),
        )
        .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    let all: KinesisEvent = event::<KinesisEvent>("kinesis-orders.batch").payload;
    assert_eq!(failed, [all.records[2].kinesis.sequence_number.clone()]);
    assert_eq!(runs.of("ord-104"), 0, "nothing after the checkpoint runs");

    // Lambda delivers again from the failed record; a retry of the whole batch
    // replays the first two.
    let again = batch
        .process(event::<KinesisEvent>("kinesis-orders.batch"), handler(true))
        .await;
    assert!(again.batch_item_failures.is_empty());
    for (id, n) in [
        ("ord-101", 1),
        ("ord-102", 1),
        ("ord-103", 2),
        ("ord-104", 1),
    ] {
        assert_eq!(runs.of(id), n, "{id}");
    }
}

#[tokio::test]
async fn a_kinesis_batch_failing_in_the_middle_checkpoints_at_the_failure_in_memory() {
    a_kinesis_failure_is_a_checkpoint(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_kinesis_batch_failing_in_the_middle_checkpoints_at_the_failure_on_dynamodb() {
    a_kinesis_failure_is_a_checkpoint(dynamodb_store().await).await;
}

#[tokio::test]
async fn a_dynamodb_streams_batch_failing_in_the_middle_checkpoints_at_the_failure() {
    let batch = BatchProcessor::dynamodb_streams(dynamodb_store().await)
        .build()
        .unwrap();
    let runs = Runs::default();
    let handler = |fixed: bool| {
        let runs = runs.clone();
        move |r: EventRecord| {
            let (runs, event_id) = (runs.clone(), r.event_id.clone());
            let order = dynamodb_order(&r);
            async move {
                runs.hit(&event_id);
                ship(Runs::default(), order, fixed).await
            }
        }
    };
    let all: DynamoDbEvent = event::<DynamoDbEvent>("dynamodb-streams-orders.batch").payload;
    let ids: Vec<String> = all.records.iter().map(|r| r.event_id.clone()).collect();
    let response = batch
        .process(event("dynamodb-streams-orders.batch"), handler(false))
        .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(
        failed,
        [all.records[2].change.sequence_number.clone().unwrap()]
    );
    assert_eq!(
        runs.of(&ids[3]),
        0,
        "the REMOVE after the failure did not run"
    );
    let again = batch
        .process(event("dynamodb-streams-orders.batch"), handler(true))
        .await;
    assert!(again.batch_item_failures.is_empty());
    for (id, n) in [(&ids[0], 1), (&ids[1], 1), (&ids[2], 2), (&ids[3], 1)] {
        assert_eq!(runs.of(id), n, "{id}");
    }
}

#[test]
fn the_batch_future_is_send_so_a_lambda_runtime_handler_can_await_it() {
    fn assert_send<T: Send>(_: &T) {}
    let batch = sqs_processor(MemoryStore::new());
    let runs = Runs::default();
    let future = batch.process(event::<SqsEvent>("sqs-payments.batch"), |m| {
        apply(runs.clone(), m)
    });
    assert_send(&future);
}

#[tokio::test]
async fn a_completed_record_is_a_success_even_when_its_output_no_longer_reads() {
    let batch = sqs_processor(MemoryStore::new());
    let runs = Runs::default();
    // The first deployment's handler returns a loose JSON value, for pay-002 one too
    // large to keep even compressed (2 MB of random hex)...
    let first = batch
        .process(event("sqs-payments.batch"), |m: SqsMessage| {
            let runs = runs.clone();
            async move {
                let key = message_key(&m);
                runs.hit(&key);
                let pad = if key == "pay-002" {
                    random_hex(2_000_000)
                } else {
                    String::new()
                };
                Ok::<_, String>(serde_json::json!({"entry": 1, "pad": pad}))
            }
        })
        .await;
    assert_eq!(failed_sqs(&first), Vec::<String>::new());

    // ... the next one a stricter type the stored outputs do not fit, and one output
    // too large to keep: redelivered records are still successes, and nothing reruns.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Strict {
        ledger_entry_id: String,
    }
    let again = batch
        .process(event("sqs-payments.redelivered"), |m: SqsMessage| {
            let runs = runs.clone();
            async move {
                runs.hit(&message_key(&m));
                Ok::<_, String>(Strict {
                    ledger_entry_id: "x".repeat(2_000_000),
                })
            }
        })
        .await;
    assert_eq!(failed_sqs(&again), Vec::<String>::new());
    assert_eq!(runs.total(), 2, "pay-001 and pay-002 ran once each");
}

fn random_hex(len: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state >> 60) as usize])
        })
        .collect()
}

fn message_key(m: &SqsMessage) -> String {
    body(m)["paymentId"].as_str().unwrap_or_default().to_owned()
}
