//! The HTTP layer's failure rows against DynamoDB Local: a handler `Err` and a
//! handler panic mark the record `ERRORED` through the real SDK path, and a retry
//! runs the handler again. Needs `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use lambda_http::{Body, Error, Request, Response, service_fn};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use tower::{Layer, ServiceExt};

async fn store() -> DynamoDbStore {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    DynamoDbStore::new(client, table)
}

fn request(key: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/payments")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"amountCents":100}"#))
        .unwrap()
}

fn partition_key(key: &str) -> String {
    Scope::new(
        "POST /payments",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

#[tokio::test]
async fn a_handler_error_marks_the_record_errored_and_a_retry_runs_again() {
    let store = store().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let handler = service_fn(move |_req: Request| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if run == 1 {
                return Err::<Response<Body>, Error>("payment provider timed out".into());
            }
            Ok(Response::builder()
                .status(201)
                .body(Body::from("charged"))?)
        }
    });
    let service = IdempotencyLayer::builder(store.clone())
        .build()
        .unwrap()
        .layer(handler);

    let err = service.clone().oneshot(request("pay-1")).await.unwrap_err();
    assert_eq!(err.to_string(), "payment provider timed out");
    assert_eq!(
        store
            .get(&partition_key("pay-1"))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Errored
    );

    let retried = service.clone().oneshot(request("pay-1")).await.unwrap();
    assert_eq!(retried.status(), 201);
    let replayed = service.oneshot(request("pay-1")).await.unwrap();
    assert_eq!(replayed.headers()[IDEMPOTENT_REPLAYED], "true");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_handler_panic_marks_the_record_errored_and_a_retry_runs_again() {
    let store = store().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let handler = service_fn(move |_req: Request| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            assert!(run > 1, "the first attempt panics");
            Ok::<_, Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from("charged"))?,
            )
        }
    });
    let service = IdempotencyLayer::builder(store.clone())
        .build()
        .unwrap()
        .layer(handler);

    let panicked = std::panic::AssertUnwindSafe(service.clone().oneshot(request("pay-2")))
        .catch_unwind()
        .await;
    assert!(panicked.is_err(), "the panic reaches the runtime");
    assert_eq!(
        store
            .get(&partition_key("pay-2"))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Errored
    );

    let retried = service.oneshot(request("pay-2")).await.unwrap();
    assert_eq!(retried.status(), 201);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
