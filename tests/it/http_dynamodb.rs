//! The HTTP layer's failure rows against DynamoDB Local: a handler `Err` and a
//! handler panic mark the record `ERRORED` through the real SDK path, and a retry
//! runs the handler again. Needs `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use crate::support;

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

/// The lease covers the whole invocation on DynamoDB too: a handler that runs past
/// `max_lease` and past its route's expiry is never run a second time by a retry
/// within its deadline, and a different request cannot take the key under it.
#[tokio::test]
async fn a_handler_that_outlives_the_max_lease_and_the_route_expiry_runs_once() {
    use lambda_idempotency::clock::ManualClock;
    use lambda_idempotency::config::{IdempotencyConfig, MIN_EXPIRY};
    use std::time::Duration;
    use tokio::sync::Notify;

    const T0: i64 = 1_700_000_000_000;
    const MINUTE: i64 = 60_000;
    let clock = ManualClock::new(T0);
    let store = store().await.with_clock(clock.clone());
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (started, release, runs) = (started.clone(), release.clone(), runs.clone());
        service_fn(move |_req: Request| {
            let (started, release) = (started.clone(), release.clone());
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run == 1 {
                    started.notify_one();
                    release.notified().await;
                }
                Ok::<_, Error>(
                    Response::builder()
                        .status(201)
                        .body(Body::from(format!("run {run}")))?,
                )
            }
        })
    };
    let service = IdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .config(
            IdempotencyConfig::builder()
                .max_lease(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .route_expiry("POST /payments", MIN_EXPIRY)
        .build()
        .unwrap()
        .layer(handler);
    let with_deadline = |mut request: Request, deadline: i64| {
        let mut context = lambda_http::Context::default();
        context.deadline = u64::try_from(deadline).unwrap();
        request.extensions_mut().insert(context);
        request
    };

    let deadline = T0 + 15 * MINUTE;
    let first = tokio::spawn(
        service
            .clone()
            .oneshot(with_deadline(request("long-run"), deadline)),
    );
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .unwrap();
    for at in [2 * MINUTE, 6 * MINUTE, 15 * MINUTE + 2_000] {
        clock.set_millis(T0 + at);
        let retry = service
            .clone()
            .oneshot(with_deadline(request("long-run"), T0 + at + 29_000));
        assert_eq!(retry.await.unwrap().status(), 409, "retry at +{at} ms");
        let mut other = request("long-run");
        *other.body_mut() = Body::from(r#"{"amountCents":999}"#);
        let other = service
            .clone()
            .oneshot(with_deadline(other, T0 + at + 29_000))
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(other.body()).unwrap();
        assert_eq!(
            problem["type"], "urn:lambda-idempotency:problem:key-reused",
            "+{at} ms"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let record = store
        .read_record(&partition_key("long-run"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.lease_expires_at_ms, deadline + 3_000);
    assert!(record.expires_at * 1000 >= deadline + 6_000);

    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap().status(), 201);
    let record = store
        .read_record(&partition_key("long-run"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Completed);
}
