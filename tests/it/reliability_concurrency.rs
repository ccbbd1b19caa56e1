//! Many identical requests at once through the HTTP layer: exactly one runs the
//! handler; every other one is answered "in flight" (409) or with the replay. Every
//! other trial starts from a key whose first attempt failed (record `ERRORED`), so the
//! burst races to take it over.
//!
//! Against DynamoDB Local, the requests are spread over several layers, each with its
//! own SDK client, as concurrent Lambda execution environments would be. `make test`
//! runs a small version; `make stress` runs 1000 requests per trial over many trials:
//!
//!     IDEM_STRESS_REQUESTS=1000 IDEM_STRESS_TRIALS=20 \
//!       scripts/with-dynamodb-local.sh cargo test --release --test it reliability_concurrency::

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_http::{Body, Error, Request, Response, service_fn};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use tower::{BoxError, Layer, Service, ServiceExt};

/// Concurrent Lambda execution environments in the DynamoDB runs.
const INSTANCES: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

fn requests_per_trial() -> usize {
    env_usize("IDEM_STRESS_REQUESTS", 200)
}

fn trials() -> usize {
    env_usize("IDEM_STRESS_TRIALS", 3)
}

fn request(key: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"sku":"SKU-1","quantity":2}"#))
        .unwrap()
}

fn partition_key(key: &str) -> String {
    Scope::new(
        "POST /orders",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

type Handler = tower::util::BoxCloneSyncService<Request, Response<Body>, BoxError>;

/// Keys whose next run fails with a 503 from the handler (an errored attempt).
type FailNext = Arc<Mutex<HashSet<String>>>;

/// One layer per instance, all over the given stores (one per instance). The
/// handler places an order: it counts the side effect, takes a little time (so the
/// other requests find the key in flight), and answers with the order's own id.
fn services<S: Store + Clone>(
    stores: &[S],
    executions: &Arc<AtomicUsize>,
    fail_next: &FailNext,
) -> Vec<Handler> {
    stores
        .iter()
        .map(|store| {
            let executions = Arc::clone(executions);
            let fail_next = Arc::clone(fail_next);
            let handler = service_fn(move |request: Request| {
                let key = request.headers()["idempotency-key"].to_str().unwrap();
                let fail = fail_next.lock().unwrap().remove(key);
                let order = (!fail).then(|| executions.fetch_add(1, Ordering::SeqCst) + 1);
                async move {
                    let Some(order) = order else {
                        return Ok(Response::builder()
                            .status(503)
                            .body(Body::from("the warehouse is unavailable"))?);
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<_, Error>(
                        Response::builder()
                            .status(201)
                            .header("content-type", "application/json")
                            .body(Body::from(format!(r#"{{"orderId":"ord-{order}"}}"#)))?,
                    )
                }
            });
            let service = IdempotencyLayer::builder(store.clone())
                .build()
                .unwrap()
                .layer(handler)
                .map_err(BoxError::from);
            tower::util::BoxCloneSyncService::new(service)
        })
        .collect()
}

/// What one trial's answers were.
#[derive(Debug, Default)]
struct Tally {
    originals: usize,
    replays: usize,
    in_flight: usize,
    /// Anything else, by status and a sample body.
    unexpected: BTreeMap<String, usize>,
}

async fn body_text(response: Response<Body>) -> (lambda_http::http::response::Parts, String) {
    let (parts, body) = response.into_parts();
    let text = match body {
        Body::Empty => String::new(),
        Body::Text(text) => text,
        Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::from("<unknown body>"),
    };
    (parts, text)
}

/// Sends `n` identical requests at once, spread round-robin over `services`, and
/// checks that exactly one ran and every other answer is "in flight" or its replay.
async fn one_trial(
    services: &[Handler],
    executions: &AtomicUsize,
    n: usize,
    trial: usize,
    fail_next: Option<&FailNext>,
) -> (Tally, String) {
    let key = uuid::Uuid::new_v4().to_string();
    if let Some(fail_next) = fail_next {
        // An earlier attempt failed: the burst races to take over an ERRORED record.
        fail_next.lock().unwrap().insert(key.clone());
        let failed = services[0].clone().oneshot(request(&key)).await.unwrap();
        assert_eq!(failed.status(), 503, "trial {trial}: the failed attempt");
    }
    let before = executions.load(Ordering::SeqCst);
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let service = services[i % services.len()].clone();
            let request = request(&key);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                service.oneshot(request).await
            })
        })
        .collect();
    let mut tally = Tally::default();
    let mut original_body = None;
    let mut replayed_bodies = Vec::new();
    for task in tasks {
        let response = task
            .await
            .expect("no request panics")
            .expect("no request fails");
        let (parts, body) = body_text(response).await;
        let replayed = parts
            .headers
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v == "true");
        let problem = parts
            .headers
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json");
        match parts.status.as_u16() {
            201 if !replayed => {
                tally.originals += 1;
                original_body = Some(body);
            }
            201 => {
                tally.replays += 1;
                replayed_bodies.push(body);
            }
            409 if problem
                && parts.headers.contains_key("retry-after")
                && body.contains("request-in-progress") =>
            {
                tally.in_flight += 1;
            }
            status => {
                *tally
                    .unexpected
                    .entry(format!("{status}: {body}"))
                    .or_default() += 1;
            }
        }
    }
    let executed = executions.load(Ordering::SeqCst) - before;
    assert!(
        tally.unexpected.is_empty(),
        "trial {trial}: unexpected answers {:?} (tally {tally:?})",
        tally.unexpected
    );
    assert_eq!(
        executed, 1,
        "trial {trial}: the handler ran {executed} times ({tally:?})"
    );
    assert_eq!(tally.originals, 1, "trial {trial}: {tally:?}");
    assert_eq!(tally.originals + tally.replays + tally.in_flight, n);
    let original_body = original_body.unwrap();
    for body in &replayed_bodies {
        assert_eq!(
            body, &original_body,
            "trial {trial}: a replay differs from the original"
        );
    }
    (tally, key)
}

/// Runs the trials, then checks that each key answers with its replay (not stuck)
/// and its record is `COMPLETED`.
async fn run_trials<S: Store + Clone>(label: &str, stores: Vec<S>) {
    let executions = Arc::new(AtomicUsize::new(0));
    let fail_next = FailNext::default();
    let services = services(&stores, &executions, &fail_next);
    let (n, trials) = (requests_per_trial(), trials());
    let mut totals = Tally::default();
    for trial in 1..=trials {
        // Every other trial starts from a key whose first attempt failed.
        let after_error = trial % 2 == 0;
        let (tally, key) = one_trial(
            &services,
            &executions,
            n,
            trial,
            after_error.then_some(&fail_next),
        )
        .await;
        println!(
            "{label} trial {trial}{}: {n} requests, 1 execution, {} in flight, {} replays",
            if after_error {
                " (after an errored attempt)"
            } else {
                ""
            },
            tally.in_flight,
            tally.replays
        );
        totals.in_flight += tally.in_flight;
        totals.replays += tally.replays;

        let mut service = services[trial % services.len()].clone();
        let again = service
            .ready()
            .await
            .unwrap()
            .call(request(&key))
            .await
            .unwrap();
        assert_eq!(
            again.status(),
            201,
            "{label} trial {trial}: the key is not stuck"
        );
        assert_eq!(again.headers()[IDEMPOTENT_REPLAYED], "true");
        let record = stores[0].get(&partition_key(&key)).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Completed);
    }
    assert_eq!(executions.load(Ordering::SeqCst), trials);
    println!(
        "{label}: {trials} trials x {n} requests: {trials} executions, {} in flight, {} replays",
        totals.in_flight, totals.replays
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_requests_run_once_on_dynamodb() {
    let names = AttributeNames::default();
    let first = support::client().await;
    let table = support::fresh_table(&first, &names).await;
    let mut stores = Vec::new();
    for _ in 0..INSTANCES {
        // A client per instance: its own connections, as separate Lambdas have.
        stores.push(DynamoDbStore::new(support::client().await, table.clone()));
    }
    run_trials("dynamodb", stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_requests_run_once_in_memory() {
    run_trials("memory", vec![MemoryStore::new()]).await;
}
