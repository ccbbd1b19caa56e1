//! `#[idempotent]` handlers, called directly as `main` would through the runtime.
//!
//! Handlers use `store = "memory"` or `store = path` to a `MemoryStore` the test
//! can read. A handler's store lives as long as the test process and is shared by
//! every test that calls the handler, so each test uses its own keys, and handlers
//! count their runs per key (tests run in parallel).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_http::{Body, Request, Response};
use lambda_idempotency::event::IdempotencyError;
use lambda_idempotency::idempotent;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::MemoryStore;
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::{Value, json};

/// How many times a handler body ran, per idempotency key.
static RUNS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Mutex::default);

/// Counts a run for `key`; returns the count.
fn ran(key: &str) -> usize {
    let mut runs = RUNS.lock().unwrap();
    let count = runs.entry(key.to_owned()).or_default();
    *count += 1;
    *count
}

fn runs(key: &str) -> usize {
    RUNS.lock().unwrap().get(key).copied().unwrap_or(0)
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn now_secs() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

/// The store behind the handlers that use `store = inspected_store`.
static INSPECTED: LazyLock<MemoryStore> = LazyLock::new(MemoryStore::new);

async fn inspected_store() -> Result<MemoryStore, lambda_idempotency::Error> {
    Ok(INSPECTED.clone())
}

/// How long the record for (`name`, `key`) in [`INSPECTED`] has left, in seconds,
/// and its status.
fn stored(name: &str, key: &str) -> (i64, Status) {
    let scope = Scope::new(name, "anonymous", IdempotencyKey::parse(key).unwrap());
    let record = INSPECTED
        .get_raw(scope.partition_key())
        .unwrap_or_else(|| panic!("no record for {name}/{key}"));
    assert_eq!(record.route, name);
    (record.expires_at - now_secs(), record.status)
}

fn assert_about(actual: i64, expected: i64) {
    assert!(
        (expected - 5..=expected).contains(&actual),
        "{actual} s left, expected about {expected} s"
    );
}

// ---------------------------------------------------------------------------------
// Event handlers
// ---------------------------------------------------------------------------------

#[idempotent(key = "/orderId", expiry = "1h", store = "memory")]
async fn accept_order(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let run = ran(event.payload["orderId"].as_str().unwrap_or_default());
    Ok(json!({ "accepted": event.payload["orderId"], "run": run }))
}

#[tokio::test]
async fn an_event_runs_once_and_its_retry_gets_the_stored_output() {
    let payload = json!({ "orderId": "o-once", "sku": "A1" });

    let first = accept_order(event(payload.clone())).await.unwrap();
    let again = accept_order(event(payload)).await.unwrap();

    assert_eq!(runs("o-once"), 1);
    assert_eq!(first["accepted"], "o-once");
    assert_eq!(again, first, "the retry gets the stored output");
}

#[tokio::test]
async fn a_reused_key_with_a_different_payload_is_a_key_mismatch() {
    accept_order(event(json!({ "orderId": "o-reused", "sku": "A1" })))
        .await
        .unwrap();

    let reused = accept_order(event(json!({ "orderId": "o-reused", "sku": "B2" }))).await;

    assert!(
        matches!(&reused, Err(IdempotencyError::KeyMismatch { key }) if key == "o-reused"),
        "{reused:?}"
    );
    assert_eq!(runs("o-reused"), 1, "the handler did not run again");
    let diagnostic = lambda_runtime::Diagnostic::from(reused.unwrap_err());
    assert_eq!(diagnostic.error_type, "Idempotency.KeyMismatch");
}

#[tokio::test]
async fn an_event_without_the_key_is_refused() {
    let missing = accept_order(event(json!({ "sku": "A1" }))).await;
    assert!(
        matches!(missing, Err(IdempotencyError::MissingKey { .. })),
        "{missing:?}"
    );
}

#[idempotent(
    key = ["/tenant", "/paymentId"],
    payload = ["/amount"],
    name = "payments",
    expiry = "90m",
    store = inspected_store,
)]
async fn charge(LambdaEvent { payload, .. }: LambdaEvent<Value>) -> Result<Value, Error> {
    ran(&format!("{}/{}", payload["tenant"], payload["paymentId"]));
    Ok(json!({ "charged": payload["amount"] }))
}

#[tokio::test]
async fn several_key_pointers_a_payload_subset_and_a_name() {
    let payment = |tenant: &str, amount: u64, received_at: &str| {
        event(json!({
            "tenant": tenant,
            "paymentId": "p-subset",
            "amount": amount,
            "receivedAt": received_at,
        }))
    };

    let first = charge(payment("acme", 100, "10:00")).await.unwrap();
    // Only `/amount` is compared: a redelivery stamped differently is a retry.
    let redelivered = charge(payment("acme", 100, "10:05")).await.unwrap();
    assert_eq!(redelivered, first);
    assert_eq!(runs(r#""acme"/"p-subset""#), 1);

    let changed = charge(payment("acme", 250, "10:06")).await;
    assert!(
        matches!(changed, Err(IdempotencyError::KeyMismatch { .. })),
        "{changed:?}"
    );

    // The tenant is part of the key: the same payment id elsewhere is another event.
    charge(payment("globex", 250, "10:07")).await.unwrap();
    assert_eq!(runs(r#""acme"/"p-subset""#), 1);
    assert_eq!(runs(r#""globex"/"p-subset""#), 1);
    assert!(INSPECTED.len() >= 2);
}

#[idempotent(key = "/id", expiry = "90m", store = inspected_store)]
async fn ninety_minutes(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

/// The shortest expiry: shorter than the default maximum lease (15 minutes), which
/// only applies without a deadline; then the record lives as long as the lease.
#[idempotent(key = "/id", expiry = "5m", store = inspected_store)]
async fn five_minutes(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[idempotent(key = "/id", expiry = "72h", store = inspected_store)]
async fn three_days(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::test]
async fn the_expiry_and_the_default_name_reach_the_record() {
    ninety_minutes(event(json!({ "id": "e-90m" })))
        .await
        .unwrap();
    let mut context = Context::default();
    context.deadline = u64::try_from(now_secs() * 1000 + 30_000).unwrap();
    five_minutes(LambdaEvent::new(json!({ "id": "e-5m" }), context))
        .await
        .unwrap();
    // Without a deadline the lease is the 15-minute maximum and the record outlives it.
    five_minutes(event(json!({ "id": "e-5m-no-deadline" })))
        .await
        .unwrap();
    three_days(event(json!({ "id": "e-72h" }))).await.unwrap();

    // The scope name defaults to the function's name.
    let (left, status) = stored("ninety_minutes", "e-90m");
    assert_eq!(status, Status::Completed);
    assert_about(left, 90 * 60);
    assert_about(stored("five_minutes", "e-5m").0, 5 * 60);
    assert_about(stored("five_minutes", "e-5m-no-deadline").0, 15 * 60 + 4);
    assert_about(stored("three_days", "e-72h").0, 72 * 60 * 60);
}

static FAILURES_RUN: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("card declined")]
struct Declined;

#[idempotent(key = "/id", store = "memory")]
async fn flaky(event: LambdaEvent<Value>) -> Result<Value, Declined> {
    let run = FAILURES_RUN.fetch_add(1, Ordering::SeqCst);
    if run == 0 {
        Err(Declined)
    } else {
        Ok(event.payload)
    }
}

#[tokio::test]
async fn a_handler_error_is_passed_through_and_a_retry_runs_again() {
    let payload = json!({ "id": "f-1" });
    let failed = flaky(event(payload.clone())).await;
    assert!(
        matches!(failed, Err(IdempotencyError::Handler(Declined))),
        "{failed:?}"
    );
    assert_eq!(flaky(event(payload.clone())).await.unwrap(), payload);
    assert_eq!(FAILURES_RUN.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------
// Setup errors
// ---------------------------------------------------------------------------------

static SETUP_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Unreachable on the first call, fine after.
async fn unreachable_once() -> Result<MemoryStore, lambda_idempotency::Error> {
    if SETUP_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(lambda_idempotency::Error::StoreUnavailable {
            message: "no route to the store".to_owned(),
            source: None,
        });
    }
    Ok(MemoryStore::new())
}

static SETUP_HANDLER_RUN: AtomicUsize = AtomicUsize::new(0);

#[idempotent(key = "/id", store = unreachable_once)]
async fn needs_setup(event: LambdaEvent<Value>) -> Result<Value, Error> {
    SETUP_HANDLER_RUN.fetch_add(1, Ordering::SeqCst);
    Ok(event.payload)
}

#[tokio::test]
async fn a_setup_error_is_returned_and_the_next_invocation_sets_up_again() {
    let payload = json!({ "id": "s-1" });

    let failed = needs_setup(event(payload.clone())).await;
    let Err(IdempotencyError::Setup(error)) = &failed else {
        panic!("expected a setup error, got {failed:?}");
    };
    assert!(error.is_transient());
    assert_eq!(
        SETUP_HANDLER_RUN.load(Ordering::SeqCst),
        0,
        "the handler did not run"
    );
    let diagnostic = lambda_runtime::Diagnostic::from(failed.unwrap_err());
    assert_eq!(diagnostic.error_type, "Idempotency.Setup");

    assert_eq!(needs_setup(event(payload.clone())).await.unwrap(), payload);
    assert_eq!(needs_setup(event(payload.clone())).await.unwrap(), payload);
    assert_eq!(SETUP_HANDLER_RUN.load(Ordering::SeqCst), 1);
    assert_eq!(
        SETUP_CALLS.load(Ordering::SeqCst),
        2,
        "set up once it worked"
    );
}

async fn misconfigured() -> Result<MemoryStore, lambda_idempotency::Error> {
    Err(lambda_idempotency::config::ConfigError::MissingEnv {
        name: "IDEMPOTENCY_TABLE",
    }
    .into())
}

#[idempotent(store = misconfigured)]
async fn http_needs_setup(_request: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(Response::new(Body::Empty))
}

#[tokio::test]
async fn an_http_setup_error_is_converted_into_the_handlers_error() {
    let error = http_needs_setup(post("/setup", "h-setup", "{}"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable IDEMPOTENCY_TABLE is not set"
    );
}

// ---------------------------------------------------------------------------------
// HTTP handlers
// ---------------------------------------------------------------------------------

fn post(uri: &str, key: &str, body: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[idempotent(store = "memory", expiry = "24h")]
async fn create_order(request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let run = ran(request.headers()["idempotency-key"].to_str()?);
    Ok(Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(format!("{{\"orderId\":\"o-{run}\"}}")))?)
}

#[tokio::test]
async fn an_http_retry_is_replayed() {
    let request = || post("/orders", "k-http-replay", "{\"sku\":\"A1\"}");

    let first = create_order(request()).await.unwrap();
    let again = create_order(request()).await.unwrap();

    assert_eq!(runs("k-http-replay"), 1);
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.body(), first.body());
}

#[tokio::test]
async fn an_http_key_reused_with_another_body_is_a_conflict() {
    create_order(post("/orders", "k-http-conflict", "{\"sku\":\"A1\"}"))
        .await
        .unwrap();

    let reused = create_order(post("/orders", "k-http-conflict", "{\"sku\":\"B2\"}"))
        .await
        .unwrap();

    assert_eq!(reused.status(), 409);
    assert_eq!(runs("k-http-conflict"), 1, "the handler did not run again");
}

// ---------------------------------------------------------------------------------
// The attribute's expiry never shortens the lease
// ---------------------------------------------------------------------------------

/// Reads its own PENDING record while it runs: the lease it holds and its expiry.
#[idempotent(key = "/jobId", expiry = "5m", store = inspected_store, name = "short_expiry")]
async fn long_job(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let key = event.payload["jobId"].as_str().unwrap_or_default();
    let scope = Scope::new("short_expiry", "anonymous", IdempotencyKey::parse(key)?);
    let record = INSPECTED
        .get_raw(scope.partition_key())
        .ok_or("no record while running")?;
    Ok(json!({
        "status": record.status.as_str(),
        "leaseEndsMs": record.lease_expires_at_ms,
        "expiresAt": record.expires_at,
    }))
}

#[tokio::test]
async fn a_short_attribute_expiry_does_not_shorten_the_lease_under_a_known_deadline() {
    let now_ms = now_secs() * 1000;
    let deadline = now_ms + 15 * 60 * 1000;
    let mut context = Context::default();
    context.deadline = u64::try_from(deadline).unwrap();
    let held = long_job(LambdaEvent::new(
        json!({ "jobId": "job-15-minutes" }),
        context,
    ))
    .await
    .unwrap();
    assert_eq!(held["status"], "PENDING");
    let lease_end = held["leaseEndsMs"].as_i64().unwrap();
    // The whole 15-minute invocation plus the 3 s margin, not the 5-minute expiry.
    // The lease's length is taken when the request is scoped and its start when the
    // record is written, a millisecond or so later: it may end that much later
    // (longer, the safe side), never earlier.
    assert!(
        (deadline + 3_000..deadline + 3_100).contains(&lease_end),
        "{lease_end} vs deadline {deadline}"
    );
    assert!(
        held["expiresAt"].as_i64().unwrap() * 1000 >= lease_end + 3_000,
        "{held}"
    );
}

/// The default store (DynamoDB from the environment) compiles with the library's
/// `dynamodb` feature; without it, it is a compile error (macros/tests/ui/fail).
#[idempotent(key = "/id")]
async fn from_env(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[idempotent(key = "/id", store = "env")]
async fn from_env_explicitly(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[test]
fn the_environment_store_compiles_with_the_dynamodb_feature() {
    let _ = lambda_runtime::service_fn(from_env);
    let _ = lambda_runtime::service_fn(from_env_explicitly);
}

#[derive(serde::Serialize)]
struct Shipment<'a> {
    order_id: &'a str,
    items: u32,
}

/// A plain async function (one step of a handler), keyed by an argument's field;
/// its arguments are the input by name: `{"shipment": {...}, "carrier": "..."}`.
#[idempotent(key = "/shipment/order_id", store = "memory", name = "book-courier")]
async fn book_courier(shipment: &Shipment<'_>, carrier: String) -> Result<Value, Error> {
    let run = ran(&format!("courier-{}", shipment.order_id));
    Ok(
        json!({"booking": format!("{carrier}-{}-{run}", shipment.order_id), "items": shipment.items}),
    )
}

#[tokio::test]
async fn a_plain_async_function_runs_once_per_key_and_replays() {
    let shipment = Shipment {
        order_id: "ship-1",
        items: 3,
    };
    let first = book_courier(&shipment, "dhl".into()).await.unwrap();
    let again = book_courier(&shipment, "dhl".into()).await.unwrap();
    assert_eq!(first, json!({"booking": "dhl-ship-1-1", "items": 3}));
    assert_eq!(again, first);
    assert_eq!(runs("courier-ship-1"), 1);
    // Another argument value under the same key is another request.
    let other = book_courier(&shipment, "ups".into()).await;
    assert!(
        matches!(other, Err(IdempotencyError::KeyMismatch { .. })),
        "{other:?}"
    );
    assert_eq!(runs("courier-ship-1"), 1);
}
