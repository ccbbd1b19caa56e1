//! The orders API through the real idempotency layer, against DynamoDB Local,
//! driven by the sample events in `events/`. Needs `AWS_ENDPOINT_URL_DYNAMODB`:
//! run with `make test`.

use lambda_idempotency_test_support as support;

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Error, Request, Response, Service};
use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{Store, TransactionalStore};
use orders_api::fixtures::{SEED_ORDER_ID, SEED_SKU, SEED_STOCK, event, seed};
use orders_api::gateway::SimulatedGateway;
use orders_api::repo::dynamodb::{DynamoDbRepo, create_orders_table};
use orders_api::repo::{OrdersRepo, SideEffects};
use orders_api::{OrdersApi, service};
use serde_json::Value;
use tower::ServiceExt;

/// Every operation's event prefix.
const OPERATIONS: [&str; 4] = [
    "create-order",
    "payment-attempt",
    "refund",
    "reserve-inventory",
];

struct Harness {
    clock: ManualClock,
    store: DynamoDbStore,
    repo: Arc<dyn OrdersRepo>,
    gateway: Arc<SimulatedGateway>,
    layer: IdempotencyLayer,
    calls: support::CallCounter,
}

impl Harness {
    async fn new() -> Self {
        Self::with_gateway(SimulatedGateway::new()).await
    }

    async fn with_gateway(gateway: SimulatedGateway) -> Self {
        let client = support::client().await;
        let (counting, calls) = support::counting_client().await;
        let records = support::fresh_table(&client, &AttributeNames::default()).await;
        let orders = format!("orders-test-{}", uuid::Uuid::new_v4());
        create_orders_table(&client, &orders).await.unwrap();
        let clock = ManualClock::starting_now();
        let store = DynamoDbStore::new(counting, records).with_clock(clock.clone());
        let repo: Arc<dyn OrdersRepo> = Arc::new(DynamoDbRepo::new(client, orders));
        seed(&*repo).await.unwrap();
        let layer = IdempotencyLayer::builder(store.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        calls.take();
        Self {
            clock,
            store,
            repo,
            gateway: Arc::new(gateway),
            layer,
            calls,
        }
    }

    fn service(
        &self,
    ) -> impl Service<Request, Response = Response<Body>, Error = Error, Future: Send>
    + Clone
    + Send
    + 'static {
        let api = OrdersApi::new(Arc::clone(&self.repo), self.gateway.clone())
            .with_clock(self.clock.clone());
        service(api, &self.layer)
    }

    /// Loads an event with a Lambda context whose deadline is 29 s away (API
    /// Gateway's limit).
    fn event(&self, name: &str) -> Request {
        self.event_with_timeout(name, 29_000)
    }

    /// Loads an event with a Lambda context whose deadline is `timeout_ms` away.
    fn event_with_timeout(&self, name: &str, timeout_ms: i64) -> Request {
        let mut request = event(name).unwrap();
        let mut context = lambda_http::Context::default();
        context.deadline = (self.clock.now_millis() + timeout_ms) as u64;
        request.extensions_mut().insert(context);
        request
    }

    async fn call(&self, name: &str) -> Response<Body> {
        self.service().oneshot(self.event(name)).await.unwrap()
    }

    async fn effects(&self) -> SideEffects {
        self.repo.side_effects().await.unwrap()
    }
}

fn body(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
        _ => String::new(),
    }
}

fn json(response: &Response<Body>) -> Value {
    serde_json::from_str(&body(response)).unwrap()
}

fn replayed(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(IDEMPOTENT_REPLAYED)
        .is_some_and(|v| v == "true")
}

/// The partition key an event's request maps to (actor from its JWT `sub`).
fn partition_key(route: &str, sub: &str, key: &str) -> String {
    Scope::new(
        route,
        format!("jwt:{sub}"),
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

#[tokio::test]
async fn duplicate_post_with_same_key_and_body_replays_without_a_new_side_effect() {
    let h = Harness::new().await;
    for op in OPERATIONS {
        let first = h.call(&format!("{op}.new")).await;
        assert_eq!(first.status(), 201, "{op}: {}", body(&first));
        assert!(!replayed(&first));
        let after_first = h.effects().await;

        let again = h.call(&format!("{op}.duplicate")).await;
        assert_eq!(again.status(), first.status(), "{op}");
        assert_eq!(body(&again), body(&first), "{op}: body byte for byte");
        for name in ["content-type", "location"] {
            assert_eq!(
                again.headers().get(name),
                first.headers().get(name),
                "{op}: {name}"
            );
        }
        assert!(replayed(&again), "{op}");
        assert_eq!(h.effects().await, after_first, "{op}: no new side effect");
    }
    let effects = h.effects().await;
    assert_eq!(
        (
            effects.orders,
            effects.payment_attempts,
            effects.refunds,
            effects.reservations
        ),
        (2, 1, 1, 1),
        "one seeded order plus one of each"
    );
    assert_eq!(h.repo.stock(SEED_SKU).await.unwrap(), Some(SEED_STOCK - 3));
}

#[tokio::test]
async fn same_key_with_a_different_body_is_409_and_changes_nothing() {
    let h = Harness::new().await;
    for op in OPERATIONS {
        let first = h.call(&format!("{op}.new")).await;
        assert_eq!(first.status(), 201, "{op}");
        let before = h.effects().await;
        let stock = h.repo.stock(SEED_SKU).await.unwrap();

        let conflict = h.call(&format!("{op}.conflict")).await;
        assert_eq!(conflict.status(), 409, "{op}");
        assert_eq!(
            conflict.headers()["content-type"],
            "application/problem+json"
        );
        let problem = json(&conflict);
        assert_eq!(problem["status"], 409);
        assert_eq!(problem["type"], "urn:lambda-idempotency:problem:key-reused");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("different request"),
            "{problem}"
        );
        assert!(problem["idempotencyKey"].is_string());
        assert_eq!(h.effects().await, before, "{op}");
        assert_eq!(h.repo.stock(SEED_SKU).await.unwrap(), stock, "{op}");

        // The original response is still what a retry of the original gets.
        let again = h.call(&format!("{op}.duplicate")).await;
        assert!(replayed(&again));
        assert_eq!(body(&again), body(&first));
    }
}

async fn parallel_identical_posts(n: usize) {
    let h = Harness::new().await;
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(h.service().oneshot(h.event("create-order.concurrent"))))
        .collect();
    let (mut created, mut replays, mut in_flight) = (0, 0, 0);
    let mut order_ids = std::collections::HashSet::new();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        match response.status().as_u16() {
            201 if replayed(&response) => replays += 1,
            201 => created += 1,
            409 => {
                assert_eq!(
                    json(&response)["type"],
                    "urn:lambda-idempotency:problem:request-in-progress"
                );
                assert!(response.headers().contains_key("retry-after"));
                in_flight += 1;
            }
            other => panic!("unexpected status {other}: {}", body(&response)),
        }
        if response.status() == 201 {
            order_ids.insert(json(&response)["orderId"].as_str().unwrap().to_owned());
        }
    }
    eprintln!(
        "{n} parallel identical POSTs: {created} executed, {replays} replayed, {in_flight} in flight"
    );
    assert_eq!(created, 1);
    assert_eq!(created + replays + in_flight, n);
    assert_eq!(order_ids.len(), 1, "every 201 carries the same order");
    assert_eq!(
        h.effects().await.orders,
        2,
        "the seeded order and exactly one new one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_identical_posts_create_exactly_one_order() {
    parallel_identical_posts(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_parallel_identical_posts_create_exactly_one_order() {
    parallel_identical_posts(100).await;
}

#[tokio::test]
async fn an_expired_key_is_a_new_request_with_a_new_side_effect() {
    let h = Harness::new().await;
    let first = h.call("create-order.new").await;
    h.clock.advance(Duration::from_secs(24 * 60 * 60));
    let still = h.call("create-order.duplicate").await;
    assert!(replayed(&still), "at exactly 24 h the record is still live");
    h.clock.advance(Duration::from_secs(1));
    let after = h.call("create-order.duplicate").await;
    assert_eq!(after.status(), 201);
    assert!(!replayed(&after));
    assert_ne!(json(&after)["orderId"], json(&first)["orderId"]);
    assert_eq!(h.effects().await.orders, 3);
}

#[tokio::test]
async fn missing_and_malformed_keys_are_400_and_store_nothing() {
    let h = Harness::new().await;
    for op in OPERATIONS {
        for (scenario, type_uri) in [
            ("missing-key", "urn:lambda-idempotency:problem:missing-key"),
            (
                "malformed-key",
                "urn:lambda-idempotency:problem:malformed-key",
            ),
        ] {
            let response = h.call(&format!("{op}.{scenario}")).await;
            assert_eq!(response.status(), 400, "{op}.{scenario}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            assert_eq!(json(&response)["type"], type_uri);
        }
    }
    let malformed = json(&h.call("create-order.malformed-key").await);
    assert!(
        malformed["detail"].as_str().unwrap().contains("position 4"),
        "{malformed}"
    );
    assert_eq!(h.effects().await.total(), 1, "only the seeded order");
    assert!(h.calls.take().is_empty(), "the store was never called");
}

#[tokio::test]
async fn reads_are_not_protected() {
    let h = Harness::new().await;
    let response = h.call("get-order").await;
    assert_eq!(response.status(), 200);
    assert!(h.calls.take().is_empty());
}

#[tokio::test]
async fn store_unreachable_before_the_handler_is_503_and_the_handler_does_not_run() {
    let h = Harness::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws_sdk_dynamodb::config::Builder::from(&support::sdk_config().await)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let dead = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(config), "idempotency");
    let layer = IdempotencyLayer::builder(dead).build().unwrap();
    let api = OrdersApi::new(Arc::clone(&h.repo), h.gateway.clone());
    for op in OPERATIONS {
        let response = service(api.clone(), &layer)
            .oneshot(h.event(&format!("{op}.new")))
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{op}");
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(
            json(&response)["type"],
            "urn:lambda-idempotency:problem:store-unavailable"
        );
    }
    assert_eq!(h.effects().await.total(), 1, "no handler ran");
    assert_eq!(h.gateway.calls(), 0);
}

#[tokio::test]
async fn a_5xx_from_the_handler_is_passed_through_and_a_retry_runs_again() {
    // The gateway is down for the first attempt.
    let h = Harness::with_gateway(SimulatedGateway::new().with_outages(1)).await;
    let failed = h.call("payment-attempt.new").await;
    assert_eq!(failed.status(), 503);
    let pk = partition_key(
        "POST /orders/{orderId}/payment-attempts",
        "user-alice",
        "pay-2026-11-28-0001",
    );
    assert_eq!(
        h.store.get(&pk).await.unwrap().unwrap().status,
        Status::Errored
    );
    assert_eq!(h.effects().await.payment_attempts, 0);

    let retried = h.call("payment-attempt.duplicate").await;
    assert_eq!(retried.status(), 201);
    assert!(!replayed(&retried), "the retry ran the handler");
    assert_eq!(
        h.store.get(&pk).await.unwrap().unwrap().status,
        Status::Completed
    );
    let again = h.call("payment-attempt.duplicate").await;
    assert!(replayed(&again));
    assert_eq!(h.gateway.calls(), 2);
    assert_eq!(h.effects().await.payment_attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_in_flight_is_409_with_retry_after() {
    let h = Harness::with_gateway(SimulatedGateway::new().with_latency(Duration::from_millis(500)))
        .await;
    let first = tokio::spawn(h.service().oneshot(h.event("payment-attempt.new")));
    // Wait until the first request holds the key.
    let pk = partition_key(
        "POST /orders/{orderId}/payment-attempts",
        "user-alice",
        "pay-2026-11-28-0001",
    );
    for _ in 0..200 {
        if h.store.get(&pk).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let duplicate = h.call("payment-attempt.duplicate").await;
    assert_eq!(duplicate.status(), 409);
    assert_eq!(
        json(&duplicate)["type"],
        "urn:lambda-idempotency:problem:request-in-progress"
    );
    // The lease ends at the first invocation's deadline, 29 s after it started, plus
    // the 3 s margin for clock skew.
    assert_eq!(duplicate.headers()["retry-after"], "32");
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(h.effects().await.payment_attempts, 1);
    assert_eq!(h.gateway.calls(), 1);
}

#[tokio::test]
async fn two_actors_using_the_same_key_never_see_each_others_response() {
    let h = Harness::new().await;
    let alice = h.call("create-order.new").await;
    let bob = h.call("create-order.other-actor").await;
    assert_eq!(bob.status(), 201);
    assert!(!replayed(&bob), "Bob's request ran on its own");
    assert_ne!(json(&bob)["orderId"], json(&alice)["orderId"]);
    assert_eq!(json(&bob)["customerId"], "cust-77");
    let alice_again = h.call("create-order.duplicate").await;
    assert_eq!(body(&alice_again), body(&alice));
    let bob_again = h.call("create-order.other-actor").await;
    assert_eq!(body(&bob_again), body(&bob));
    assert_eq!(h.effects().await.orders, 3);
}

#[tokio::test]
async fn json_bodies_differing_only_in_key_order_and_whitespace_are_the_same_request() {
    let h = Harness::new().await;
    let first = h.call("create-order.new").await;
    let reordered = h.call("create-order.reordered").await;
    assert!(replayed(&reordered));
    assert_eq!(body(&reordered), body(&first));
    assert_eq!(h.effects().await.orders, 2);
}

#[tokio::test]
async fn dynamodb_calls_per_request_are_the_minimum() {
    let h = Harness::new().await;
    h.call("create-order.new").await;
    // Begin, then one transaction committing the order with the completion: the
    // order's own write costs no extra call.
    assert_eq!(h.calls.take(), ["PutItem", "TransactWriteItems"], "new key");
    h.call("create-order.duplicate").await;
    assert_eq!(h.calls.take(), ["PutItem"], "replay");
    h.call("create-order.conflict").await;
    assert_eq!(h.calls.take(), ["PutItem"], "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_take_stock_below_zero() {
    let h = Harness::new().await;
    // 40 different reservations of 3 units each against 100 in stock.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let mut request = h.event("reserve-inventory.new");
            request.headers_mut().insert(
                "idempotency-key",
                format!("reservation-{i}").parse().unwrap(),
            );
            tokio::spawn(h.service().oneshot(request))
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().unwrap().status().as_u16());
    }
    let reserved = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((reserved, refused), (33, 7), "{statuses:?}");
    assert_eq!(h.repo.stock(SEED_SKU).await.unwrap(), Some(1));
    assert_eq!(h.effects().await.reservations, 33);
}

#[test]
fn the_binary_refuses_to_start_without_its_tables() {
    let bin = env!("CARGO_BIN_EXE_orders-api");
    let missing = std::process::Command::new(bin)
        .env_remove("IDEMPOTENCY_TABLE")
        .env_remove("ORDERS_TABLE")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("IDEMPOTENCY_TABLE"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let absent = std::process::Command::new(bin)
        .env("IDEMPOTENCY_TABLE", "no-such-idempotency-table")
        .env("ORDERS_TABLE", "no-such-orders-table")
        .env("AWS_ENDPOINT_URL_DYNAMODB", support::endpoint())
        .output()
        .unwrap();
    assert!(!absent.status.success());
    let stderr = String::from_utf8_lossy(&absent.stderr);
    // Both tables are checked at once; the store's failure is the one reported.
    assert!(stderr.contains("no-such-idempotency-table"), "{stderr}");
    assert!(!stderr.contains("no-such-orders-table"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // With the idempotency table there, the orders table's failure is reported.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idempotency_table = runtime.block_on(async {
        support::fresh_table(&support::client().await, &AttributeNames::default()).await
    });
    let orders_missing = std::process::Command::new(bin)
        .env("IDEMPOTENCY_TABLE", &idempotency_table)
        .env("ORDERS_TABLE", "no-such-orders-table")
        .env("AWS_ENDPOINT_URL_DYNAMODB", support::endpoint())
        .output()
        .unwrap();
    assert!(!orders_missing.status.success());
    let stderr = String::from_utf8_lossy(&orders_missing.stderr);
    assert!(stderr.contains("no-such-orders-table"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Fails every atomic commit, as if the connection dropped between the handler and
/// the completion; everything else goes to DynamoDB.
#[derive(Debug)]
struct CommitFails(DynamoDbStore);

#[async_trait::async_trait]
impl Store for CommitFails {
    async fn begin(
        &self,
        r: &lambda_idempotency::store::BeginRequest,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::BeginOutcome> {
        self.0.begin(r).await
    }
    async fn complete(
        &self,
        lease: &lambda_idempotency::store::Lease,
        response: &[u8],
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        self.0.complete(lease, response).await
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
    async fn fail(
        &self,
        lease: &lambda_idempotency::store::Lease,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        self.0.fail(lease).await
    }
    async fn get(
        &self,
        pk: &str,
    ) -> lambda_idempotency::Result<Option<lambda_idempotency::record::Record>> {
        self.0.get(pk).await
    }
    async fn delete(&self, pk: &str) -> lambda_idempotency::Result<bool> {
        self.0.delete(pk).await
    }
}

#[async_trait::async_trait]
impl TransactionalStore for CommitFails {
    async fn complete_with_writes(
        &self,
        _lease: &lambda_idempotency::store::Lease,
        _response: &[u8],
        _writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        Err(lambda_idempotency::Error::StoreUnavailable {
            message: "injected: connection reset before the commit".into(),
            source: None,
        })
    }
}

#[tokio::test]
async fn a_commit_failure_leaves_neither_order_nor_reservation_nor_a_completed_record() {
    let h = Harness::new().await;
    let layer = IdempotencyLayer::builder(CommitFails(h.store.clone()))
        .clock(h.clock.clone())
        .build()
        .unwrap();
    let api = OrdersApi::new(Arc::clone(&h.repo), h.gateway.clone()).with_clock(h.clock.clone());
    for (op, route, key) in [
        (
            "create-order",
            "POST /orders",
            "6f1c2b7e-3d4a-4e5f-9a8b-7c6d5e4f3a2b",
        ),
        (
            "reserve-inventory",
            "POST /inventory/reservations",
            "8a0e4f4c-0b39-4d0b-a1a4-3f1f0c1e2d3c",
        ),
    ] {
        // Lambda's default 3 s timeout: the layer retries the failing commit until
        // 1 s before the deadline (not for its full 10 s), then answers 503.
        let response = service(api.clone(), &layer)
            .oneshot(h.event_with_timeout(&format!("{op}.new"), 3_000))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            503,
            "{op}: the handler's 201 is not returned"
        );
        let record = h
            .store
            .get(&partition_key(route, "user-alice", key))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, Status::Errored, "{op}");
    }
    assert_eq!(h.effects().await.total(), 1, "only the seeded order");
    assert_eq!(
        h.repo.stock(SEED_SKU).await.unwrap(),
        Some(SEED_STOCK),
        "no stock taken"
    );

    // Retries through the healthy store commit each exactly once.
    for op in ["create-order", "reserve-inventory"] {
        assert_eq!(
            h.call(&format!("{op}.duplicate")).await.status(),
            201,
            "{op}"
        );
    }
    let effects = h.effects().await;
    assert_eq!((effects.orders, effects.reservations), (2, 1));
    assert_eq!(h.repo.stock(SEED_SKU).await.unwrap(), Some(SEED_STOCK - 3));
}

/// The process dies after the handler ran: no completion, no fail, ever. The record
/// stays PENDING until its lease lapses, then a retry takes the key over.
#[derive(Debug)]
struct Crashes(DynamoDbStore);

#[async_trait::async_trait]
impl Store for Crashes {
    async fn begin(
        &self,
        request: &lambda_idempotency::store::BeginRequest,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::BeginOutcome> {
        self.0.begin(request).await
    }
    async fn complete(
        &self,
        _lease: &lambda_idempotency::store::Lease,
        _response: &[u8],
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        Err(crashed())
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
    async fn fail(
        &self,
        _lease: &lambda_idempotency::store::Lease,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        Err(crashed())
    }
    async fn get(
        &self,
        pk: &str,
    ) -> lambda_idempotency::Result<Option<lambda_idempotency::record::Record>> {
        self.0.get(pk).await
    }
    async fn delete(&self, pk: &str) -> lambda_idempotency::Result<bool> {
        self.0.delete(pk).await
    }
}

#[async_trait::async_trait]
impl TransactionalStore for Crashes {
    async fn complete_with_writes(
        &self,
        _lease: &lambda_idempotency::store::Lease,
        _response: &[u8],
        _writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> lambda_idempotency::Result<lambda_idempotency::store::WriteOutcome> {
        Err(crashed())
    }
}

fn crashed() -> lambda_idempotency::Error {
    lambda_idempotency::Error::StoreUnavailable {
        message: "injected: the process died before completing".into(),
        source: None,
    }
}

/// Refunds and payment attempts are committed with the completion, and the gateway
/// call carries a key derived from the request's scope: a commit that fails (the
/// retry runs at once) or a crash after the handler ran (the retry runs after the
/// lease) never refunds twice, records two attempts, or authorises twice.
#[tokio::test]
async fn a_failed_commit_or_a_crash_never_refunds_or_authorises_twice() {
    for crash in [false, true] {
        let h = Harness::new().await;
        let broken: Arc<dyn Store> = if crash {
            Arc::new(Crashes(h.store.clone()))
        } else {
            Arc::new(CommitFails(h.store.clone()))
        };
        let layer = IdempotencyLayer::builder(broken)
            .clock(h.clock.clone())
            .build()
            .unwrap();
        let api =
            OrdersApi::new(Arc::clone(&h.repo), h.gateway.clone()).with_clock(h.clock.clone());
        for op in ["refund", "payment-attempt"] {
            // With Lambda's default 3 s timeout, the failing commit is retried for
            // 2 s (until 1 s before the deadline).
            let response = service(api.clone(), &layer)
                .oneshot(h.event_with_timeout(&format!("{op}.new"), 3_000))
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                503,
                "crash {crash}, {op}: nothing committed"
            );
        }
        let effects = h.effects().await;
        assert_eq!(
            (effects.refunds, effects.payment_attempts),
            (0, 0),
            "crash {crash}: nothing was written before the commit"
        );
        assert_eq!(h.gateway.authorizations(), 1, "crash {crash}");

        if crash {
            // The dead invocation's lease (its 3 s deadline plus the 3 s margin)
            // lapses.
            h.clock.advance(Duration::from_secs(7));
        }
        for op in ["refund", "payment-attempt"] {
            let response = h.call(&format!("{op}.duplicate")).await;
            assert_eq!(
                response.status(),
                201,
                "crash {crash}, {op}: {}",
                body(&response)
            );
        }
        let effects = h.effects().await;
        assert_eq!(
            (effects.refunds, effects.payment_attempts),
            (1, 1),
            "crash {crash}: one refund, one payment attempt"
        );
        assert_eq!(
            h.gateway.calls(),
            2,
            "crash {crash}: the retry called the gateway"
        );
        assert_eq!(
            h.gateway.authorizations(),
            1,
            "crash {crash}: with the same key, so it authorised once"
        );
        let order = h.repo.get_order(SEED_ORDER_ID).await.unwrap().unwrap();
        let refunded = json(&h.call("refund.duplicate").await)["refundedCents"].clone();
        assert_eq!(
            serde_json::json!(order.refunded_cents),
            refunded,
            "crash {crash}"
        );
    }
}
