//! Atomic completion against DynamoDB Local: the handler's writes are committed in
//! one transaction with the record's completion, or not at all. Needs
//! `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::Error;
use lambda_idempotency::atomic::{AtomicWrites, AtomicWritesError};
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::event::{EventIdempotencyLayer, IdempotencyError};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::{Record, Status};
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{
    BeginOutcome, BeginRequest, Lease, Store, TransactionalStore, WriteOutcome,
};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

struct Tables {
    client: aws_sdk_dynamodb::Client,
    store: DynamoDbStore,
    clock: ManualClock,
    /// The handler's own table (pk only): the side effects.
    orders: String,
}

async fn tables() -> Tables {
    let client = support::client().await;
    let records = support::fresh_table(&client, &AttributeNames::default()).await;
    // Any table with a string `pk` will do for the side effects.
    let orders = support::fresh_table(&client, &AttributeNames::default()).await;
    let clock = ManualClock::starting_now();
    let store = DynamoDbStore::new(client.clone(), records).with_clock(clock.clone());
    Tables {
        client,
        store,
        clock,
        orders,
    }
}

impl Tables {
    fn order_put(&self, id: &str) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.orders)
            .item("pk", AttributeValue::S(format!("ORDER#{id}")))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .unwrap();
        TransactWriteItem::builder().put(put).build()
    }

    async fn orders(&self) -> i32 {
        self.client
            .scan()
            .table_name(&self.orders)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .count()
    }

    async fn record(&self, key: &str) -> Option<Record> {
        let pk = Scope::new(
            "POST /orders",
            ANONYMOUS_ACTOR,
            IdempotencyKey::parse(key).unwrap(),
        );
        self.store.read_record(pk.partition_key()).await.unwrap()
    }
}

fn request(key: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("idempotency-key", key)
        .body(Body::from("{}"))
        .unwrap()
}

/// A handler that queues one order write per run (a new order id each time).
fn ordering_handler(
    t: &Tables,
    runs: &Arc<AtomicUsize>,
) -> impl tower::Service<Request, Response = Response<Body>, Error = lambda_http::Error, Future: Send>
+ Clone
+ Send
+ 'static {
    let runs = Arc::clone(runs);
    let orders = t.orders.clone();
    service_fn(move |_req: Request| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let orders = orders.clone();
        async move {
            let writes = AtomicWrites::current().expect("the DynamoDB store commits atomically");
            let put = Put::builder()
                .table_name(orders)
                .item("pk", AttributeValue::S(format!("ORDER#{run}")))
                .build()?;
            writes.push(TransactWriteItem::builder().put(put).build())?;
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from(format!("order {run}")))?,
            )
        }
    })
}

#[tokio::test]
async fn the_order_and_the_completion_commit_together_once() {
    let t = tables().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let service = IdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(ordering_handler(&t, &runs));
    let first = service.clone().oneshot(request("atomic-1")).await.unwrap();
    assert_eq!(first.status(), 201);
    let again = service.oneshot(request("atomic-1")).await.unwrap();
    assert_eq!(again.headers()[IDEMPOTENT_REPLAYED], "true");
    assert_eq!(t.orders().await, 1);
    assert_eq!(
        t.record("atomic-1").await.unwrap().status,
        Status::Completed
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Fails every commit, as if the connection dropped between the handler and the
/// completion; everything else goes to DynamoDB.
#[derive(Debug)]
struct CommitFails(DynamoDbStore);

#[async_trait]
impl Store for CommitFails {
    async fn begin(&self, r: &BeginRequest) -> lambda_idempotency::Result<BeginOutcome> {
        self.0.begin(r).await
    }
    async fn complete(
        &self,
        lease: &Lease,
        response: &[u8],
    ) -> lambda_idempotency::Result<WriteOutcome> {
        self.0.complete(lease, response).await
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
    async fn fail(&self, lease: &Lease) -> lambda_idempotency::Result<WriteOutcome> {
        self.0.fail(lease).await
    }
    async fn get(&self, pk: &str) -> lambda_idempotency::Result<Option<Record>> {
        self.0.get(pk).await
    }
    async fn delete(&self, pk: &str) -> lambda_idempotency::Result<bool> {
        self.0.delete(pk).await
    }
}

#[async_trait]
impl TransactionalStore for CommitFails {
    async fn complete_with_writes(
        &self,
        _lease: &Lease,
        _response: &[u8],
        _writes: Vec<TransactWriteItem>,
    ) -> lambda_idempotency::Result<WriteOutcome> {
        Err(Error::StoreUnavailable {
            message: "injected: connection reset before the commit".into(),
            source: None,
        })
    }
}

#[tokio::test]
async fn a_failure_between_handler_and_completion_leaves_neither_order_nor_completed_record() {
    let t = tables().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let broken = IdempotencyLayer::builder(CommitFails(t.store.clone()))
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(ordering_handler(&t, &runs));
    let response = broken.oneshot(request("atomic-2")).await.unwrap();
    assert_eq!(
        response.status(),
        503,
        "the handler's 201 is not returned: nothing was committed"
    );
    assert_eq!(t.orders().await, 0);
    assert_eq!(t.record("atomic-2").await.unwrap().status, Status::Errored);

    // The retry runs again and commits exactly once.
    let healthy = IdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(ordering_handler(&t, &runs));
    assert_eq!(
        healthy.oneshot(request("atomic-2")).await.unwrap().status(),
        201
    );
    assert_eq!(t.orders().await, 1);
    assert_eq!(
        t.record("atomic-2").await.unwrap().status,
        Status::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_holder_after_takeover_commits_nothing() {
    let t = tables().await;
    let release = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (r, s, c, orders) = (
        Arc::clone(&release),
        Arc::clone(&started),
        Arc::clone(&runs),
        t.orders.clone(),
    );
    let handler = service_fn(move |_req: Request| {
        let (r, s, orders) = (Arc::clone(&r), Arc::clone(&s), orders.clone());
        let run = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let put = Put::builder()
                .table_name(orders)
                .item("pk", AttributeValue::S(format!("ORDER#{run}")))
                .build()?;
            AtomicWrites::current()
                .unwrap()
                .push(TransactWriteItem::builder().put(put).build())?;
            if run == 1 {
                s.notify_one();
                r.notified().await; // the slow first attempt
            }
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from(format!("order {run}")))?,
            )
        }
    });
    let service = IdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(handler);
    let slow = tokio::spawn(service.clone().oneshot(request("atomic-3")));
    started.notified().await;
    // The first attempt's lease lapses (15 min max lease, no deadline); a retry takes over.
    t.clock.advance(Duration::from_secs(15 * 60 + 1));
    let retry = service.oneshot(request("atomic-3")).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(std::str::from_utf8(retry.body()).unwrap(), "order 2");

    release.notify_one();
    let late = slow.await.unwrap().unwrap();
    assert_eq!(
        late.status(),
        409,
        "the late holder's answer is not returned"
    );
    assert_eq!(
        t.orders().await,
        1,
        "only the new holder's order was committed"
    );
    let record = t.record("atomic-3").await.unwrap();
    assert_eq!(record.status, Status::Completed);
    assert!(record.response.is_some());
}

#[tokio::test]
async fn a_refused_handler_write_commits_nothing_and_a_retry_runs_again() {
    let t = tables().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let (c, orders) = (Arc::clone(&runs), t.orders.clone());
    let handler = service_fn(move |_req: Request| {
        let run = c.fetch_add(1, Ordering::SeqCst) + 1;
        let orders = orders.clone();
        async move {
            let writes = AtomicWrites::current().unwrap();
            // Both attempts write order 1, but only if the customer exists; the first
            // attempt's condition fails.
            let check = ConditionCheck::builder()
                .table_name(&orders)
                .key("pk", AttributeValue::S("CUSTOMER#c-1".into()))
                .condition_expression("attribute_exists(pk)")
                .build()?;
            if run == 1 {
                writes.push(TransactWriteItem::builder().condition_check(check).build())?;
            }
            let put = Put::builder()
                .table_name(&orders)
                .item("pk", AttributeValue::S("ORDER#1".into()))
                .build()?;
            writes.push(TransactWriteItem::builder().put(put).build())?;
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from("created"))?,
            )
        }
    });
    let service = IdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(handler);
    let refused = service.clone().oneshot(request("atomic-4")).await.unwrap();
    assert_eq!(refused.status(), 409);
    let problem: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(
        problem["type"],
        "urn:lambda-idempotency:problem:writes-rejected"
    );
    assert_eq!(t.orders().await, 0);
    assert_eq!(t.record("atomic-4").await.unwrap().status, Status::Errored);
    assert_eq!(
        service.oneshot(request("atomic-4")).await.unwrap().status(),
        201
    );
    assert_eq!(t.orders().await, 1);
}

#[tokio::test]
async fn the_transaction_limits_give_clear_errors() {
    // 100 actions: the 99th write is the last that fits beside the record.
    let writes = AtomicWrites::default();
    let t = tables().await;
    for i in 0..99 {
        writes.push(t.order_put(&i.to_string())).unwrap();
    }
    let err = writes.push(t.order_put("99")).unwrap_err();
    assert_eq!(
        err,
        AtomicWritesError::TooManyActions {
            actions: 100,
            max: 99
        }
    );
    assert!(
        err.to_string()
            .contains("at most 99 fit beside the idempotency record")
    );

    // 4 MB: six 700 KB writes through the layer.
    let orders = t.orders.clone();
    let handler = service_fn(move |_req: Request| {
        let orders = orders.clone();
        async move {
            let writes = AtomicWrites::current().unwrap();
            for i in 0..6 {
                let put = Put::builder()
                    .table_name(&orders)
                    .item("pk", AttributeValue::S(format!("BIG#{i}")))
                    .item("blob", AttributeValue::S("x".repeat(700 * 1024)))
                    .build()?;
                writes.push(TransactWriteItem::builder().put(put).build())?;
            }
            Ok::<_, lambda_http::Error>(Response::builder().status(201).body(Body::from("ok"))?)
        }
    });
    let service = IdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .build()
        .unwrap()
        .layer(handler);
    let response = service.oneshot(request("atomic-5")).await.unwrap();
    assert_eq!(response.status(), 500);
    let problem: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(
        problem["type"],
        "urn:lambda-idempotency:problem:writes-too-large"
    );
    assert_eq!(t.orders().await, 0);
    assert_eq!(t.record("atomic-5").await.unwrap().status, Status::Errored);
}

#[tokio::test]
async fn event_handlers_commit_atomically_too() {
    let t = tables().await;
    let layer = EventIdempotencyLayer::builder(t.store.clone())
        .clock(t.clock.clone())
        .key_pointer("/id")
        .build()
        .unwrap();
    let orders = t.orders.clone();
    let service = layer.layer(lambda_runtime::service_fn(
        move |e: lambda_runtime::LambdaEvent<Value>| {
            let orders = orders.clone();
            async move {
                let put = Put::builder()
                    .table_name(&orders)
                    .item(
                        "pk",
                        AttributeValue::S(format!(
                            "ORDER#{}",
                            e.payload["id"].as_str().unwrap_or("?")
                        )),
                    )
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?;
                AtomicWrites::current()
                    .unwrap()
                    .push(TransactWriteItem::builder().put(put).build())?;
                Ok::<_, lambda_runtime::Error>(json!({"ok": true}))
            }
        },
    ));
    let event = |id: &str| {
        lambda_runtime::LambdaEvent::new(json!({"id": id}), lambda_runtime::Context::default())
    };
    assert_eq!(
        service.clone().oneshot(event("e-1")).await.unwrap(),
        json!({"ok": true})
    );
    assert_eq!(
        service.clone().oneshot(event("e-1")).await.unwrap(),
        json!({"ok": true})
    );
    assert_eq!(t.orders().await, 1);
    // An order that already exists refuses the write: nothing is committed.
    t.client
        .put_item()
        .table_name(&t.orders)
        .item("pk", AttributeValue::S("ORDER#e-2".into()))
        .send()
        .await
        .unwrap();
    let err = service.oneshot(event("e-2")).await.unwrap_err();
    assert!(
        matches!(err, IdempotencyError::NotCommitted { .. }),
        "{err}"
    );
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Idempotency.NotCommitted"
    );
}

use crate::canned;

/// A `TransactionCanceledException` whose reasons are throttling is the store asking
/// to slow down, like any throttling: the commit is retried within the completion
/// budget, the handler runs once, its write is committed once, and the client gets
/// its answer.
#[tokio::test]
async fn a_throttled_transaction_is_retried_not_turned_into_an_errored_record() {
    let canned = canned::Canned::default();
    let client = canned.client().await;
    for (reason, code) in [
        ("ThrottlingError", "throttling"),
        ("ProvisionedThroughputExceeded", "provisioned"),
    ] {
        let records = support::fresh_table(&client, &AttributeNames::default()).await;
        let orders = support::fresh_table(&client, &AttributeNames::default()).await;
        let t = Tables {
            store: DynamoDbStore::new(client.clone(), records),
            clock: ManualClock::starting_now(),
            client: client.clone(),
            orders,
        };
        canned.answer(
            "TransactWriteItems",
            2,
            400,
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [{reason}, None]","CancellationReasons":[{{"Code":"{reason}","Message":"Throughput exceeds the current capacity of your table or index."}},{{"Code":"None"}}]}}"#
            ),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let service = IdempotencyLayer::builder(t.store.clone())
            .build()
            .unwrap()
            .layer(ordering_handler(&t, &runs));
        let key = format!("throttled-{code}");
        let first = service.clone().oneshot(request(&key)).await.unwrap();
        assert_eq!(first.status(), 201, "{reason}: {:?}", first.body());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{reason}");
        assert_eq!(t.orders().await, 1, "{reason}: one committed order");
        assert_eq!(
            t.record(&key).await.unwrap().status,
            Status::Completed,
            "{reason}"
        );
        let again = service.oneshot(request(&key)).await.unwrap();
        assert_eq!(again.headers()[IDEMPOTENT_REPLAYED], "true");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{reason}");
    }
    assert_eq!(canned.answered().len(), 4, "every canned answer was used");
}
