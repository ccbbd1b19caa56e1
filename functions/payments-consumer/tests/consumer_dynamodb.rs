//! The payments consumer against DynamoDB Local, driven by the SQS events in
//! `events/`: every payment is applied exactly once. Needs
//! `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use lambda_idempotency_test_support as support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lambda_idempotency::batch::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_runtime::{Context, LambdaEvent};
use payments_consumer::Consumer;
use payments_consumer::ledger::{DynamoDbLedger, Ledger, LedgerError, create_ledger_table};

fn batch(name: &str) -> LambdaEvent<SqsEvent> {
    let event: SqsEvent = serde_json::from_value(support::events::json(name)).unwrap();
    LambdaEvent::new(event, Context::default())
}

fn failed(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

const M5: &str = "3b9c1f3e-0005-4a51-9d0e-000000000005";
const M6: &str = "3b9c1f3e-0006-4a51-9d0e-000000000006";
const M7: &str = "3b9c1f3e-0007-4a51-9d0e-000000000007";
const M2: &str = "3b9c1f3e-0002-4a51-9d0e-000000000002";

struct Harness {
    ledger: Arc<DynamoDbLedger>,
    consumer: Consumer,
}

async fn harness_with(wrap: impl FnOnce(Arc<DynamoDbLedger>) -> Arc<dyn Ledger>) -> Harness {
    let client = support::client().await;
    let records = support::fresh_table(&client, &AttributeNames::default()).await;
    let table = format!("ledger-test-{}", uuid::Uuid::new_v4());
    create_ledger_table(&client, &table).await.unwrap();
    let ledger = Arc::new(DynamoDbLedger::new(client.clone(), table));
    let batch = Consumer::batch_builder(DynamoDbStore::new(client, records))
        .build()
        .unwrap();
    let consumer = Consumer::new(wrap(Arc::clone(&ledger)), batch);
    Harness { ledger, consumer }
}

async fn harness() -> Harness {
    harness_with(|l| l).await
}

impl Harness {
    async fn entries(&self, payment_id: &str) -> usize {
        self.ledger.entries_for(payment_id).await.unwrap()
    }
    async fn balance(&self, order_id: &str) -> i64 {
        self.ledger.balance(order_id).await.unwrap()
    }
}

#[tokio::test]
async fn a_batch_that_repeats_a_payment_applies_it_once() {
    let h = harness().await;
    let response = h
        .consumer
        .handle(batch("sqs-payments.batch"))
        .await
        .unwrap();
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(h.entries("pay-001").await, 1);
    assert_eq!(h.entries("pay-002").await, 1);
    assert_eq!(h.balance("ord-A").await, 1250);
}

#[tokio::test]
async fn a_redelivered_batch_applies_nothing_again() {
    let h = harness().await;
    h.consumer
        .handle(batch("sqs-payments.batch"))
        .await
        .unwrap();
    let response = h
        .consumer
        .handle(batch("sqs-payments.redelivered"))
        .await
        .unwrap();
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(h.entries("pay-001").await, 1);
    assert_eq!(h.entries("pay-002").await, 1);
    assert_eq!(h.balance("ord-A").await, 1250);
}

#[tokio::test]
async fn failing_messages_are_reported_and_the_rest_applied_once() {
    let h = harness().await;
    h.consumer
        .handle(batch("sqs-payments.batch"))
        .await
        .unwrap();
    for _ in 0..2 {
        let response = h
            .consumer
            .handle(batch("sqs-payments.with-failures"))
            .await
            .unwrap();
        // The poison body, the negative amount, and pay-001 reused with another amount.
        assert_eq!(failed(&response), [M5, M6, M7]);
        assert_eq!(h.entries("pay-003").await, 1);
        assert_eq!(h.balance("ord-B").await, 700);
        assert_eq!(h.entries("pay-004").await, 0);
        assert_eq!(
            h.entries("pay-001").await,
            1,
            "the reused id changed nothing"
        );
        assert_eq!(h.balance("ord-A").await, 1250);
    }
}

/// A ledger whose first application of each listed payment fails, as if the write
/// timed out.
#[derive(Debug)]
struct FlakyLedger {
    inner: Arc<DynamoDbLedger>,
    fail_once: Mutex<HashSet<String>>,
}

#[async_trait]
impl Ledger for FlakyLedger {
    async fn apply(
        &self,
        payment_id: &str,
        order_id: &str,
        amount: i64,
    ) -> Result<(String, i64), LedgerError> {
        if self.fail_once.lock().unwrap().remove(payment_id) {
            return Err(LedgerError("write timed out".into()));
        }
        self.inner.apply(payment_id, order_id, amount).await
    }
    async fn balance(&self, order_id: &str) -> Result<i64, LedgerError> {
        self.inner.balance(order_id).await
    }
    async fn entries_for(&self, payment_id: &str) -> Result<usize, LedgerError> {
        self.inner.entries_for(payment_id).await
    }
}

#[tokio::test]
async fn a_message_whose_handler_fails_is_redelivered_and_applied_once() {
    let h = harness_with(|inner| {
        Arc::new(FlakyLedger {
            inner,
            fail_once: Mutex::new(HashSet::from(["pay-002".to_owned()])),
        })
    })
    .await;
    let response = h
        .consumer
        .handle(batch("sqs-payments.batch"))
        .await
        .unwrap();
    assert_eq!(failed(&response), [M2]);
    assert_eq!(h.entries("pay-002").await, 0);
    assert_eq!(h.balance("ord-A").await, 1000);

    let response = h
        .consumer
        .handle(batch("sqs-payments.redelivered"))
        .await
        .unwrap();
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(h.entries("pay-001").await, 1);
    assert_eq!(h.entries("pay-002").await, 1);
    assert_eq!(h.balance("ord-A").await, 1250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_batch_apply_each_payment_once() {
    let h = harness().await;
    let consumer = h.consumer.clone();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let consumer = consumer.clone();
            tokio::spawn(async move { consumer.handle(batch("sqs-payments.batch")).await.unwrap() })
        })
        .collect();
    let mut reported = 0;
    for task in tasks {
        reported += task.await.unwrap().batch_item_failures.len();
    }
    // Messages that met another invocation mid-flight were reported for redelivery;
    // redelivering them replays.
    let response = h
        .consumer
        .handle(batch("sqs-payments.redelivered"))
        .await
        .unwrap();
    assert!(failed(&response).is_empty());
    eprintln!("8 concurrent deliveries: {reported} messages reported in flight, all applied once");
    assert_eq!(h.entries("pay-001").await, 1);
    assert_eq!(h.entries("pay-002").await, 1);
    assert_eq!(h.balance("ord-A").await, 1250);
}
