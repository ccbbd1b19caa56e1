//! Waiting for an in-flight original instead of answering 409 at once, against
//! DynamoDB Local with a slow handler. Needs `AWS_ENDPOINT_URL_DYNAMODB`.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::event::{EventIdempotencyLayer, IdempotencyError};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

/// Waits until the first request holds the key, so the duplicate is really second.
async fn until_begun(store: &DynamoDbStore) {
    let pk = Scope::new(
        "POST /payments",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse("wait-1").unwrap(),
    );
    for _ in 0..400 {
        if store.get(pk.partition_key()).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the first request never began");
}

async fn store() -> DynamoDbStore {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    DynamoDbStore::new(client, table)
}

fn request(deadline_ms: Option<i64>) -> Request {
    let mut request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/payments")
        .header("idempotency-key", "wait-1")
        .body(Body::from("{}"))
        .unwrap();
    if let Some(deadline) = deadline_ms {
        let mut context = Context::default();
        context.deadline = deadline as u64;
        request.extensions_mut().insert(context);
    }
    request
}

fn slow_handler(
    runs: &Arc<AtomicUsize>,
    delay: Duration,
) -> impl tower::Service<Request, Response = Response<Body>, Error = lambda_http::Error, Future: Send>
+ Clone
+ Send
+ 'static {
    let runs = Arc::clone(runs);
    service_fn(move |_req: Request| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            tokio::time::sleep(delay).await;
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from(format!("run {run}")))?,
            )
        }
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_duplicate_gets_the_originals_response() {
    let runs = Arc::new(AtomicUsize::new(0));
    let store = store().await;
    let layer = IdempotencyLayer::builder(store.clone())
        .wait_for_in_flight(Duration::from_secs(5))
        .build()
        .unwrap();
    let service = layer.layer(slow_handler(&runs, Duration::from_millis(400)));
    let first = tokio::spawn(service.clone().oneshot(request(None)));
    until_begun(&store).await;
    let duplicate = service.oneshot(request(None)).await.unwrap();
    assert_eq!(duplicate.status(), 201);
    assert_eq!(duplicate.headers()[IDEMPOTENT_REPLAYED], "true");
    assert_eq!(std::str::from_utf8(duplicate.body()).unwrap(), "run 1");
    assert_eq!(first.await.unwrap().unwrap().status(), 201);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded_by_its_maximum() {
    let runs = Arc::new(AtomicUsize::new(0));
    let store = store().await;
    let layer = IdempotencyLayer::builder(store.clone())
        .wait_for_in_flight(Duration::from_millis(150))
        .build()
        .unwrap();
    let service = layer.layer(slow_handler(&runs, Duration::from_millis(1500)));
    let first = tokio::spawn(service.clone().oneshot(request(None)));
    until_begun(&store).await;
    let duplicate = service.oneshot(request(None)).await.unwrap();
    assert_eq!(duplicate.status(), 409, "gave up waiting");
    assert!(duplicate.headers().contains_key("retry-after"));
    first.await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded_by_the_lambda_deadline() {
    let runs = Arc::new(AtomicUsize::new(0));
    let store = store().await;
    let layer = IdempotencyLayer::builder(store.clone())
        .wait_for_in_flight(Duration::from_secs(60))
        .build()
        .unwrap();
    let service = layer.layer(slow_handler(&runs, Duration::from_millis(2500)));
    let first = tokio::spawn(service.clone().oneshot(request(Some(now_ms() + 10_000))));
    until_begun(&store).await;
    // This invocation must answer within 1.3 s; the layer keeps 1 s back.
    let started = std::time::Instant::now();
    let duplicate = service
        .oneshot(request(Some(now_ms() + 1_300)))
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "stopped waiting before the original finished"
    );
    first.await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_duplicate_waits_and_returns_the_output() {
    let runs = Arc::new(AtomicUsize::new(0));
    let store = store().await;
    let layer = EventIdempotencyLayer::builder(store.clone())
        .key_pointer("/id")
        .name("lambda")
        .wait_for_in_flight(Duration::from_secs(5))
        .build()
        .unwrap();
    let counter = Arc::clone(&runs);
    let service = layer.layer(lambda_runtime::service_fn(move |_e: LambdaEvent<Value>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok::<_, lambda_runtime::Error>(json!({"ok": true}))
        }
    }));
    let event = || LambdaEvent::new(json!({"id": "e-1"}), Context::default());
    let first = tokio::spawn(service.clone().oneshot(event()));
    let pk = Scope::new(
        "lambda",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse("e-1").unwrap(),
    );
    while store.get(pk.partition_key()).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second: Result<Value, IdempotencyError<_>> = service.oneshot(event()).await;
    assert_eq!(second.unwrap(), json!({"ok": true}));
    assert_eq!(first.await.unwrap().unwrap(), json!({"ok": true}));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
