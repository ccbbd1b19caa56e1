//! The HTTP layer end to end.
//!
//! Requests are real Lambda events (HTTP API v2, REST API v1, ALB and a Function URL)
//! from `events/refund.via-*.json`, edited per test and parsed by
//! `lambda_http::request::from_str`; records live in
//! the in-memory store on a [`ManualClock`] shared with the layer; handlers count
//! their runs, so every test asserts how many side effects happened.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::events::{self, with_deadline};
use futures::FutureExt;
use lambda_http::http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Context, Request, RequestExt, Response, service_fn};
use lambda_idempotency::__internals::{StoredBody, StoredResponse, fingerprint_of};
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::config::{ConfigError, IdempotencyConfig, MAX_EXPIRY, MIN_EXPIRY};
use lambda_idempotency::http::{
    DefaultActor, IdempotencyLayer, IdempotencyLayerBuilder, MissingKey, PROBLEM_JSON, Profile,
    Protect, UnidentifiedCaller, idempotent, route_of,
};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::{LeaseToken, Record, Status};
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::{
    BeginOutcome, BeginRequest, Lease, MemoryStore, Store, WriteOutcome,
};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::util::ServiceFn;
use tower::{Layer, Service, ServiceExt};

/// 2023-11-14T22:13:20Z, the manual clock's starting time.
const T0: i64 = 1_700_000_000_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// The default maximum lease (15 minutes), in ms.
const DEFAULT_MAX_LEASE_MS: i64 = 15 * MINUTE_MS;
/// The route of [`Event::refund`] and [`Event::rest_refund`].
const REFUND: &str = "POST /orders/{orderId}/refunds";
const ANONYMOUS: &str = "anonymous";

// ---------------------------------------------------------------------------------
// Event fixtures
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    HttpApi,
    Rest,
    Alb,
    FunctionUrl,
}

/// A Lambda event as JSON, edited before it is parsed into a [`Request`].
#[derive(Debug, Clone)]
struct Event {
    source: Source,
    json: Value,
}

impl Event {
    /// `events/<name>.json`, to edit.
    fn load(source: Source, name: &str) -> Self {
        Self {
            source,
            json: events::json(name),
        }
    }

    /// An HTTP API v2 event for `method route` at `path`.
    fn http_api(method: &str, route: &str, path: &str) -> Self {
        let mut event = Self::load(Source::HttpApi, "refund.via-http-api");
        let route_key = format!("{method} {route}");
        event.json["routeKey"] = json!(route_key);
        event.json["requestContext"]["routeKey"] = json!(route_key);
        event.set_v2_method_and_path(method, path);
        event
    }

    /// A Function URL event for `method path`.
    fn function_url(method: &str, path: &str) -> Self {
        let mut event = Self::load(Source::FunctionUrl, "refund.via-function-url");
        event.set_v2_method_and_path(method, path);
        event
    }

    /// A REST API v1 event for `method resource` at `path` (stage `prod`).
    fn rest(method: &str, resource: &str, path: &str) -> Self {
        let mut event = Self::load(Source::Rest, "refund.via-rest-api");
        event.json["resource"] = json!(resource);
        event.json["path"] = json!(path);
        event.json["httpMethod"] = json!(method);
        let ctx = &mut event.json["requestContext"];
        ctx["resourcePath"] = json!(resource);
        ctx["httpMethod"] = json!(method);
        ctx["path"] = json!(format!("/prod{path}"));
        event
    }

    /// An ALB event for `method path`.
    fn alb(method: &str, path: &str) -> Self {
        let mut event = Self::load(Source::Alb, "refund.via-alb");
        event.json["httpMethod"] = json!(method);
        event.json["path"] = json!(path);
        event
    }

    /// `POST /orders/o-1/refunds` through an HTTP API.
    fn refund() -> Self {
        Self::http_api("POST", "/orders/{orderId}/refunds", "/orders/o-1/refunds")
    }

    /// `POST /orders/o-1/refunds` through a REST API.
    fn rest_refund() -> Self {
        Self::rest("POST", "/orders/{orderId}/refunds", "/orders/o-1/refunds")
    }

    fn set_v2_method_and_path(&mut self, method: &str, path: &str) {
        self.json["rawPath"] = json!(path);
        self.json["requestContext"]["http"]["method"] = json!(method);
        self.json["requestContext"]["http"]["path"] = json!(path);
        if method == "GET" {
            self.json["body"] = Value::Null;
        }
    }

    fn key(self, key: &str) -> Self {
        self.header("Idempotency-Key", key)
    }

    /// Sets a header (replacing any spelling of the same name); REST events carry
    /// it in both `headers` and `multiValueHeaders`, as API Gateway sends them.
    fn header(mut self, name: &str, value: &str) -> Self {
        set_header(&mut self.json["headers"], name, json!(value));
        if self.source == Source::Rest {
            set_header(&mut self.json["multiValueHeaders"], name, json!([value]));
        }
        self
    }

    fn without_header(mut self, name: &str) -> Self {
        for map in ["headers", "multiValueHeaders"] {
            if let Some(headers) = self.json[map].as_object_mut() {
                headers.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
            }
        }
        self
    }

    fn body(mut self, body: &str) -> Self {
        self.json["body"] = json!(body);
        self
    }

    /// The raw query string of a v2 event, in the order given.
    fn raw_query(mut self, query: &str) -> Self {
        assert!(matches!(self.source, Source::HttpApi | Source::FunctionUrl));
        self.json["rawQueryString"] = json!(query);
        let params: serde_json::Map<String, Value> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        self.json["queryStringParameters"] = Value::Object(params);
        self
    }

    fn authorizer(mut self, authorizer: Value) -> Self {
        self.json["requestContext"]["authorizer"] = authorizer;
        self
    }

    /// Overrides fields of a REST event's `requestContext.identity`.
    fn identity(mut self, fields: Value) -> Self {
        assert_eq!(self.source, Source::Rest);
        let identity = self.json["requestContext"]["identity"]
            .as_object_mut()
            .expect("identity object");
        for (name, value) in fields.as_object().expect("identity fields") {
            identity.insert(name.clone(), value.clone());
        }
        self
    }

    fn request(&self) -> Request {
        lambda_http::request::from_str(&self.json.to_string()).expect("a valid Lambda event")
    }

    /// The request with a Lambda context whose deadline is `deadline_ms`.
    fn request_with_deadline(&self, deadline_ms: i64) -> Request {
        with_deadline(self.request(), deadline_ms)
    }
}

fn set_header(headers: &mut Value, name: &str, value: Value) {
    if headers.is_null() {
        *headers = json!({});
    }
    let map = headers.as_object_mut().expect("headers object");
    map.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
    map.insert(name.to_owned(), value);
}

// ---------------------------------------------------------------------------------
// Handlers, layer and assertions
// ---------------------------------------------------------------------------------

/// How many times a handler ran.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    /// Records one run; returns its 1-based number.
    fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

type Handled = Result<Response<Body>, lambda_http::Error>;
type HandlerFuture = Pin<Box<dyn Future<Output = Handled> + Send>>;

/// A `service_fn` handler that counts its runs and answers with `respond(run, request)`.
fn handler<F>(
    calls: &Calls,
    respond: F,
) -> ServiceFn<impl FnMut(Request) -> HandlerFuture + Clone + use<F>>
where
    F: Fn(usize, &Request) -> Handled + Clone + Send + Sync + 'static,
{
    let calls = calls.clone();
    service_fn(move |request: Request| -> HandlerFuture {
        let calls = calls.clone();
        let respond = respond.clone();
        Box::pin(async move {
            let run = calls.bump();
            respond(run, &request)
        })
    })
}

/// `201` with a JSON body naming the run, so a replay shows which run it came from.
fn created(run: usize) -> Handled {
    Ok(Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"refundId":"r-{run}"}}"#)))?)
}

/// Answers with the status in the `x-respond-with` header (default `201`). Headers are
/// not part of the fingerprint, so a retry can ask for a different status.
fn status_from_header(run: usize, request: &Request) -> Handled {
    let status = request
        .headers()
        .get("x-respond-with")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(201);
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"run":{run},"status":{status}}}"#)))?)
}

fn setup() -> (ManualClock, MemoryStore) {
    let clock = ManualClock::new(T0);
    let store = MemoryStore::with_clock(clock.clone());
    (clock, store)
}

fn builder(clock: &ManualClock, store: &MemoryStore) -> IdempotencyLayerBuilder {
    IdempotencyLayer::builder(store.clone()).clock(clock.clone())
}

fn layer(clock: &ManualClock, store: &MemoryStore) -> IdempotencyLayer {
    builder(clock, store).build().expect("valid layer")
}

async fn try_send<S>(service: &mut S, request: Request) -> Result<Response<Body>, S::Error>
where
    S: Service<Request, Response = Response<Body>>,
{
    service.ready().await?.call(request).await
}

async fn send<S>(service: &mut S, request: Request) -> Response<Body>
where
    S: Service<Request, Response = Response<Body>>,
    S::Error: std::fmt::Debug,
{
    try_send(service, request)
        .await
        .expect("the layer answers with a response")
}

fn text(response: &Response<Body>) -> &str {
    std::str::from_utf8(response.body()).expect("a UTF-8 body")
}

fn replayed(response: &Response<Body>) -> bool {
    match response.headers().get("idempotent-replayed") {
        None => false,
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
    }
}

/// Checks a problem+json answer and returns its JSON.
fn problem(response: &Response<Body>, status: u16, kind: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{}", text(response));
    assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
    let json: Value = serde_json::from_slice(response.body()).expect("a JSON problem body");
    assert_eq!(
        json["type"],
        format!("urn:lambda-idempotency:problem:{kind}")
    );
    assert_eq!(json["status"], status);
    assert!(
        json["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{json}"
    );
    assert!(
        json["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{json}"
    );
    assert!(!replayed(response));
    json
}

fn scope(route: &str, actor: &str, key: &str) -> Scope {
    Scope::new(route, actor, IdempotencyKey::parse(key).expect("valid key"))
}

fn record(store: &MemoryStore, route: &str, actor: &str, key: &str) -> Option<Record> {
    store.get_raw(scope(route, actor, key).partition_key())
}

fn status_of(store: &MemoryStore, route: &str, actor: &str, key: &str) -> Option<Status> {
    record(store, route, actor, key).map(|r| r.status)
}

// ---------------------------------------------------------------------------------
// 1. New key
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn new_key_runs_the_handler_once_and_stores_a_completed_record() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let response = send(&mut service, Event::refund().key("refund-o-1").request()).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(text(&response), r#"{"refundId":"r-1"}"#);
    assert!(!replayed(&response));
    assert_eq!(calls.count(), 1);

    let pk = scope(REFUND, ANONYMOUS, "refund-o-1");
    let record = store
        .get(pk.partition_key())
        .await
        .unwrap()
        .expect("a record under (route, actor, key)");
    assert_eq!(record.status, Status::Completed);
    assert_eq!(
        (
            record.route.as_str(),
            record.actor.as_str(),
            record.key.as_str()
        ),
        (REFUND, ANONYMOUS, "refund-o-1")
    );
    assert_eq!(record.expires_at, (T0 + 24 * HOUR_MS) / 1000);
    let stored = StoredResponse::decode(record.response.as_deref().unwrap()).unwrap();
    assert_eq!(stored.status, StatusCode::CREATED);
    assert_eq!(
        stored.body,
        StoredBody::Text(r#"{"refundId":"r-1"}"#.into())
    );
    assert_eq!(store.len(), 1);
}

// ---------------------------------------------------------------------------------
// 2. Replay
// ---------------------------------------------------------------------------------

fn response_with_headers(body: Body) -> Handled {
    Ok(Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json; charset=utf-8")
        .header("location", "/orders/o-1/refunds/r-1")
        .header("etag", "\"r-1-v1\"")
        .header("link", "</orders/o-1>; rel=\"up\"")
        .header("link", "</refunds/r-1/receipt>; rel=\"related\"")
        .header("set-cookie", "session=secret; HttpOnly")
        .header("x-internal-debug", "db=primary")
        .body(body)?)
}

#[tokio::test]
async fn replay_returns_stored_status_allow_listed_headers_and_exact_text_body() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let body = "{\"refundId\":\"r-1\",\"note\":\"remboursé ✓\"}  \n";
    let mut service = layer(&clock, &store).layer(handler(&calls, move |_, _: &Request| {
        response_with_headers(Body::Text(body.to_owned()))
    }));
    let event = Event::refund().key("replay-text");

    let first = send(&mut service, event.request()).await;
    assert!(!replayed(&first));
    // The first response is the handler's, untouched.
    assert_eq!(first.headers()["set-cookie"], "session=secret; HttpOnly");
    assert_eq!(first.headers()["x-internal-debug"], "db=primary");

    let again = send(&mut service, event.request()).await;
    assert!(replayed(&again));
    assert_eq!(again.status(), StatusCode::CREATED);
    for name in ["content-type", "location", "etag"] {
        assert_eq!(again.headers()[name], first.headers()[name], "{name}");
    }
    let links: Vec<_> = again.headers().get_all("link").iter().collect();
    assert_eq!(
        links.len(),
        2,
        "repeated allow-listed headers are all replayed"
    );
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.headers().get("x-internal-debug").is_none());
    assert_eq!(again.body(), &Body::Text(body.to_owned()));
    assert_eq!(calls.count(), 1);

    // Set-Cookie is not even stored.
    let record = record(&store, REFUND, ANONYMOUS, "replay-text").unwrap();
    let stored = StoredResponse::decode(record.response.as_deref().unwrap()).unwrap();
    assert!(stored.headers.iter().all(|(name, _)| name != "set-cookie"));
}

#[tokio::test]
async fn replay_returns_binary_and_empty_bodies_byte_for_byte() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let png: Vec<u8> = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80,
    ];
    let bytes = png.clone();
    let mut service = layer(&clock, &store).layer(handler(&calls, move |_, req: &Request| {
        if req.headers().contains_key("x-want-empty") {
            return Ok(Response::builder().status(204).body(Body::Empty)?);
        }
        Ok(Response::builder()
            .status(200)
            .header("content-type", "image/png")
            .body(Body::Binary(bytes.clone()))?)
    }));

    let binary = Event::refund().key("replay-binary");
    let first = send(&mut service, binary.request()).await;
    let again = send(&mut service, binary.request()).await;
    assert!(replayed(&again));
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["content-type"], "image/png");
    // Still binary, so lambda_http base64-encodes it exactly like the original.
    assert_eq!(again.body(), &Body::Binary(png.clone()));
    assert_eq!(again.body(), first.body());

    let empty = Event::refund()
        .key("replay-empty")
        .header("x-want-empty", "1");
    let first = send(&mut service, empty.request()).await;
    let again = send(&mut service, empty.request()).await;
    assert!(replayed(&again));
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    // lambda_http's IntoResponse turns an empty body without a content type into
    // `Text("")`; the replay is whatever the first response was.
    assert!(again.body().is_empty());
    assert_eq!(again.body(), first.body());
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn set_cookie_is_never_replayed_even_when_allow_listed() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .replay_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("set-cookie"),
            HeaderName::from_static("x-internal-debug"),
        ])
        .build()
        .unwrap()
        .layer(handler(&calls, |_, _: &Request| {
            response_with_headers(Body::from("{}"))
        }));
    let event = Event::refund().key("cookie-key");

    send(&mut service, event.request()).await;
    let again = send(&mut service, event.request()).await;

    assert!(replayed(&again));
    assert_eq!(
        again.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(again.headers()["x-internal-debug"], "db=primary");
    assert!(again.headers().get("set-cookie").is_none());
    // The list replaces the defaults: location is no longer replayed.
    assert!(again.headers().get("location").is_none());
    assert_eq!(calls.count(), 1);
}

// ---------------------------------------------------------------------------------
// 3. Same key, different request
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn same_key_with_a_different_body_is_a_409_problem_and_runs_nothing() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    send(&mut service, Event::refund().key("reused-key").request()).await;
    let before = record(&store, REFUND, ANONYMOUS, "reused-key").unwrap();

    let different = Event::refund()
        .key("reused-key")
        .body(r#"{"amount": 250, "currency": "EUR"}"#);
    let response = send(&mut service, different.request()).await;
    let json = problem(&response, 409, "key-reused");
    assert_eq!(json["idempotencyKey"], "reused-key");
    assert!(response.headers().get("retry-after").is_none());

    // Another order on the same route template is a different request too.
    let other_order = Event::http_api("POST", "/orders/{orderId}/refunds", "/orders/o-2/refunds")
        .key("reused-key");
    problem(
        &send(&mut service, other_order.request()).await,
        409,
        "key-reused",
    );

    assert_eq!(calls.count(), 1);
    assert_eq!(
        record(&store, REFUND, ANONYMOUS, "reused-key").unwrap(),
        before
    );
}

#[tokio::test]
async fn ietf_draft_profile_answers_a_reused_key_with_422() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .profile(Profile::IetfDraft)
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));

    send(&mut service, Event::refund().key("draft-key").request()).await;
    let response = send(
        &mut service,
        Event::refund()
            .key("draft-key")
            .body(r#"{"amount":1}"#)
            .request(),
    )
    .await;

    let json = problem(&response, 422, "key-reused");
    assert_eq!(json["idempotencyKey"], "draft-key");
    assert_eq!(calls.count(), 1);
}

// ---------------------------------------------------------------------------------
// 4. In flight
// ---------------------------------------------------------------------------------

/// Lets a test hold the first run of a handler inside the handler.
#[derive(Debug, Clone, Default)]
struct Gate {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gate {
    async fn wait_until_started(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.started.notified())
            .await
            .expect("the handler started");
    }
}

/// Counts its runs; the first run waits for the gate, later runs answer at once.
fn gated_handler(
    calls: &Calls,
    gate: &Gate,
) -> ServiceFn<impl FnMut(Request) -> HandlerFuture + Clone + use<>> {
    let calls = calls.clone();
    let gate = gate.clone();
    service_fn(move |_: Request| -> HandlerFuture {
        let calls = calls.clone();
        let gate = gate.clone();
        Box::pin(async move {
            let run = calls.bump();
            if run == 1 {
                gate.started.notify_one();
                gate.release.notified().await;
            }
            created(run)
        })
    })
}

#[tokio::test]
async fn in_flight_duplicate_gets_409_with_retry_after_until_the_holders_deadline() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let gate = Gate::default();
    let service = layer(&clock, &store).layer(gated_handler(&calls, &gate));
    let event = Event::refund().key("in-flight");

    // The first invocation must finish within 7.5 s: its lease lapses 3 s later.
    let first = tokio::spawn(
        service
            .clone()
            .oneshot(event.request_with_deadline(T0 + 7_500)),
    );
    gate.wait_until_started().await;

    // The duplicate's own (later) deadline does not matter: the holder's lease does.
    let mut duplicate = service.clone();
    let response = send(&mut duplicate, event.request_with_deadline(T0 + 29_000)).await;
    let json = problem(&response, 409, "request-in-progress");
    assert_eq!(json["idempotencyKey"], "in-flight");
    assert_eq!(response.headers()["retry-after"], "11");

    clock.advance(Duration::from_millis(2_200)); // 8.3 s left
    let response = send(&mut duplicate, event.request()).await;
    assert_eq!(response.headers()["retry-after"], "9");

    clock.set_millis(T0 + 10_400); // 0.1 s left: never "0"
    let response = send(&mut duplicate, event.request()).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "in-flight"),
        Some(Status::Pending)
    );
    assert_eq!(calls.count(), 1);

    gate.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = send(&mut duplicate, event.request()).await;
    assert!(replayed(&again));
    assert_eq!(text(&again), text(&first));
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn in_flight_retry_after_is_the_max_lease_without_a_deadline() {
    for (config, expected) in [
        (IdempotencyConfig::default(), "900"),
        (
            IdempotencyConfig::builder()
                .max_lease(Duration::from_secs(30))
                .build()
                .unwrap(),
            "30",
        ),
    ] {
        let (clock, store) = setup();
        let calls = Calls::default();
        let gate = Gate::default();
        let service = builder(&clock, &store)
            .config(config)
            .build()
            .unwrap()
            .layer(gated_handler(&calls, &gate));
        let event = Event::refund().key("no-deadline");

        let first = tokio::spawn(service.clone().oneshot(event.request()));
        gate.wait_until_started().await;
        let response = send(&mut service.clone(), event.request()).await;
        problem(&response, 409, "request-in-progress");
        assert_eq!(response.headers()["retry-after"], expected);
        assert_eq!(calls.count(), 1);

        gate.release.notify_one();
        first.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_lapsed_lease_lets_a_retry_run_and_fences_out_the_first_completion() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let gate = Gate::default();
    let service = layer(&clock, &store).layer(gated_handler(&calls, &gate));
    let event = Event::refund().key("lapsed");

    let first = tokio::spawn(
        service
            .clone()
            .oneshot(event.request_with_deadline(T0 + 5_000)),
    );
    gate.wait_until_started().await;

    // The first holder's lease (its deadline plus the 3 s margin) has lapsed.
    clock.advance(Duration::from_secs(9));
    let mut retry = service.clone();
    let second = send(&mut retry, event.request_with_deadline(T0 + 36_000)).await;
    assert_eq!(text(&second), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);

    gate.release.notify_one();
    let first = first.await.unwrap().unwrap();
    // Its client still gets its own response, but the record keeps the second one.
    assert_eq!(text(&first), r#"{"refundId":"r-1"}"#);
    let again = send(&mut retry, event.request()).await;
    assert!(replayed(&again));
    assert_eq!(text(&again), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);
}

// ---------------------------------------------------------------------------------
// 5. Missing key and which requests are protected
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn missing_key_on_a_protected_route_is_a_400_problem() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let response = send(&mut service, Event::refund().request()).await;
    let json = problem(&response, 400, "missing-key");
    assert!(json.get("idempotencyKey").is_none());

    // PATCH is protected by default too.
    let patch = Event::http_api("PATCH", "/orders/{orderId}", "/orders/o-1");
    problem(
        &send(&mut service, patch.request()).await,
        400,
        "missing-key",
    );

    assert_eq!(calls.count(), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn missing_key_pass_through_runs_the_handler_every_time() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .missing_key(MissingKey::PassThrough)
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));

    let first = send(&mut service, Event::refund().request()).await;
    let second = send(&mut service, Event::refund().request()).await;

    assert_eq!(text(&first), r#"{"refundId":"r-1"}"#);
    assert_eq!(text(&second), r#"{"refundId":"r-2"}"#);
    assert!(!replayed(&second));
    assert_eq!(calls.count(), 2);
    assert!(store.is_empty());
}

#[tokio::test]
async fn get_put_and_delete_pass_through_untouched_by_default() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let get = Event::http_api("GET", "/orders/{orderId}", "/orders/o-1");
    send(&mut service, get.request()).await;
    // Even a key does not make an unprotected request idempotent.
    send(&mut service, get.clone().key("get-key").request()).await;
    let again = send(&mut service, get.key("get-key").request()).await;
    assert!(!replayed(&again));
    for method in ["PUT", "DELETE"] {
        let event = Event::http_api(method, "/orders/{orderId}", "/orders/o-1");
        send(&mut service, event.request()).await;
    }

    assert_eq!(calls.count(), 5);
    assert!(store.is_empty());
}

#[tokio::test]
async fn protect_routes_guards_only_the_listed_routes() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .protect(Protect::Routes(HashSet::from([REFUND.to_owned()])))
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));

    // An unlisted POST route passes through, key or not.
    let orders = Event::http_api("POST", "/orders", "/orders");
    send(&mut service, orders.request()).await;
    send(&mut service, orders.clone().key("orders-key").request()).await;
    send(&mut service, orders.key("orders-key").request()).await;
    assert_eq!(calls.count(), 3);
    assert!(store.is_empty());

    // The listed route requires a key and is idempotent.
    problem(
        &send(&mut service, Event::refund().request()).await,
        400,
        "missing-key",
    );
    send(&mut service, Event::refund().key("refund-key").request()).await;
    let again = send(&mut service, Event::refund().key("refund-key").request()).await;
    assert!(replayed(&again));
    assert_eq!(calls.count(), 4);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn protect_all_makes_get_idempotent_too() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .protect(Protect::All)
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let get = Event::http_api("GET", "/orders/{orderId}", "/orders/o-1");

    problem(&send(&mut service, get.request()).await, 400, "missing-key");
    send(&mut service, get.clone().key("get-key").request()).await;
    let again = send(&mut service, get.key("get-key").request()).await;

    assert!(replayed(&again));
    assert_eq!(calls.count(), 1);
    assert_eq!(
        status_of(&store, "GET /orders/{orderId}", ANONYMOUS, "get-key"),
        Some(Status::Completed)
    );
}

// ---------------------------------------------------------------------------------
// 6. Malformed keys
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_keys_are_a_400_problem_naming_the_reason_and_store_nothing() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let long = "k".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        (&long, "256 bytes long; the maximum is 255"),
        ("order 42", "invalid character ' ' at position 6"),
        (
            "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
            "invalid character '{' at position 1",
        ),
        // What API Gateway v2 makes of two Idempotency-Key headers: one joined value.
        ("key-one,key-two", "invalid character ',' at position 8"),
    ];
    for (key, reason) in cases {
        let response = send(&mut service, Event::refund().key(key).request()).await;
        let json = problem(&response, 400, "malformed-key");
        let detail = json["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{key:?}: {detail}");
    }

    // Header values need not be UTF-8.
    let mut request = Event::refund().request();
    request.headers_mut().insert(
        "idempotency-key",
        HeaderValue::from_bytes(b"ab\xffcd").unwrap(),
    );
    let json = problem(&send(&mut service, request).await, 400, "malformed-key");
    assert!(
        json["detail"].as_str().unwrap().contains("at position 3"),
        "{json}"
    );

    assert_eq!(calls.count(), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn two_idempotency_key_headers_are_a_400_problem() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let mut request = Event::refund().key("key-one").request();
    request
        .headers_mut()
        .append("Idempotency-Key", HeaderValue::from_static("key-two"));
    let json = problem(&send(&mut service, request).await, 400, "malformed-key");
    assert!(json["detail"].as_str().unwrap().contains("exactly one"));

    // An ALB with multi-value headers on passes both values through.
    let alb = events::http_request("refund.via-alb-two-keys");
    assert_eq!(alb.headers().get_all("idempotency-key").iter().count(), 2);
    problem(&send(&mut service, alb).await, 400, "malformed-key");

    assert_eq!(calls.count(), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn key_header_name_is_matched_case_insensitively() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let upper = Event::refund().header("IDEMPOTENCY-KEY", "case-key");
    let lower = Event::refund().header("idempotency-key", "case-key");
    let first = send(&mut service, upper.request()).await;
    let again = send(&mut service, lower.request()).await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(replayed(&again));
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn rest_events_carry_the_key_in_both_header_maps_and_it_counts_once() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    // API Gateway REST sends every header in `headers` and `multiValueHeaders`.
    let event = Event::rest_refund().key("rest-key");
    assert!(event.json["multiValueHeaders"]["Idempotency-Key"].is_array());

    let first = send(&mut service, event.request()).await;
    let again = send(&mut service, event.request()).await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(replayed(&again));
    assert_eq!(calls.count(), 1);
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "rest-key"),
        Some(Status::Completed)
    );
}

// ---------------------------------------------------------------------------------
// 7-9. Handler errors, retryable statuses, panics
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn handler_error_is_passed_through_marks_errored_and_a_retry_runs_again() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, req: &Request| {
        if req.headers().contains_key("x-fail") {
            return Err("database unavailable".into());
        }
        created(run)
    }));
    let event = Event::refund().key("err-key");

    let error = try_send(&mut service, event.clone().header("x-fail", "1").request())
        .await
        .expect_err("the handler's error is passed through");
    assert_eq!(error.to_string(), "database unavailable");
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "err-key"),
        Some(Status::Errored)
    );
    assert_eq!(calls.count(), 1);

    // Within its expiry the key stays bound to the first request's fingerprint.
    let other = event.clone().body(r#"{"amount": 5}"#);
    problem(
        &send(&mut service, other.request()).await,
        409,
        "key-reused",
    );
    assert_eq!(calls.count(), 1);

    let retry = send(&mut service, event.request()).await;
    assert_eq!(text(&retry), r#"{"refundId":"r-2"}"#);
    assert!(!replayed(&retry));
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "err-key"),
        Some(Status::Completed)
    );
    let again = send(&mut service, event.request()).await;
    assert!(replayed(&again));
    assert_eq!(text(&again), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn retryable_statuses_pass_through_mark_errored_and_a_retry_runs_again() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, status_from_header));

    for (i, status) in ["500", "503", "429", "408"].into_iter().enumerate() {
        let key = format!("retryable-{status}");
        let event = Event::refund().key(&key);
        let runs_before = calls.count();

        let response = send(
            &mut service,
            event.clone().header("x-respond-with", status).request(),
        )
        .await;
        assert_eq!(response.status().as_str(), status);
        assert!(!replayed(&response));
        assert_eq!(
            status_of(&store, REFUND, ANONYMOUS, &key),
            Some(Status::Errored),
            "{status}"
        );

        // A second failure is passed through again, and the retry after it succeeds.
        let response = send(
            &mut service,
            event.clone().header("x-respond-with", status).request(),
        )
        .await;
        assert_eq!(response.status().as_str(), status);
        let retry = send(&mut service, event.request()).await;
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert!(!replayed(&retry));
        assert_eq!(
            status_of(&store, REFUND, ANONYMOUS, &key),
            Some(Status::Completed)
        );
        let again = send(
            &mut service,
            event.header("x-respond-with", status).request(),
        )
        .await;
        assert!(replayed(&again), "{status}");
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(calls.count(), runs_before + 3, "case {i}");
    }
}

#[tokio::test]
async fn deterministic_4xx_is_stored_and_replayed() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, status_from_header));

    for status in ["404", "422", "400", "409"] {
        let key = format!("final-{status}");
        let event = Event::refund().key(&key).header("x-respond-with", status);
        let first = send(&mut service, event.request()).await;
        // A retry that would now succeed still gets the stored answer.
        let again = send(
            &mut service,
            event.header("x-respond-with", "201").request(),
        )
        .await;
        assert_eq!(first.status().as_str(), status);
        assert_eq!(again.status().as_str(), status);
        assert!(replayed(&again));
        assert_eq!(text(&again), text(&first));
        assert_eq!(
            status_of(&store, REFUND, ANONYMOUS, &key),
            Some(Status::Completed)
        );
    }
    assert_eq!(calls.count(), 4);
}

#[tokio::test]
async fn custom_response_policy_replaces_the_default() {
    let (clock, store) = setup();
    let calls = Calls::default();
    // Only 2xx is final; and 503 is final too (the handler's 503 is a business answer).
    let mut service = builder(&clock, &store)
        .response_policy(|status: StatusCode| status.is_success() || status == 503)
        .build()
        .unwrap()
        .layer(handler(&calls, status_from_header));

    let not_found = Event::refund().key("policy-404");
    send(
        &mut service,
        not_found.clone().header("x-respond-with", "404").request(),
    )
    .await;
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "policy-404"),
        Some(Status::Errored)
    );
    let retry = send(&mut service, not_found.request()).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(calls.count(), 2);

    let unavailable = Event::refund()
        .key("policy-503")
        .header("x-respond-with", "503");
    send(&mut service, unavailable.request()).await;
    let again = send(&mut service, unavailable.request()).await;
    assert!(replayed(&again));
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn handler_panic_propagates_marks_errored_and_a_retry_runs_again() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, req: &Request| {
        if req.headers().contains_key("x-panic") {
            panic!("handler blew up");
        }
        created(run)
    }));
    let event = Event::refund().key("panic-key");

    let request = event.clone().header("x-panic", "1").request();
    let outcome = AssertUnwindSafe(try_send(&mut service, request))
        .catch_unwind()
        .await;
    let payload = outcome.expect_err("the panic propagates to the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"handler blew up"));
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "panic-key"),
        Some(Status::Errored)
    );
    assert_eq!(calls.count(), 1);

    let retry = send(&mut service, event.request()).await;
    assert_eq!(text(&retry), r#"{"refundId":"r-2"}"#);
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "panic-key"),
        Some(Status::Completed)
    );
    assert_eq!(calls.count(), 2);
}

// ---------------------------------------------------------------------------------
// 10. Expiry
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_completed_key_is_new_again_after_the_default_24_hours() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let event = Event::refund().key("day-key");

    send(&mut service, event.request()).await;
    clock.set_millis(T0 + 24 * HOUR_MS); // the last second of the record's life
    assert!(replayed(&send(&mut service, event.request()).await));
    assert_eq!(calls.count(), 1);

    clock.set_millis(T0 + 24 * HOUR_MS + 1_000);
    let fresh = send(&mut service, event.request()).await;
    assert!(!replayed(&fresh));
    assert_eq!(text(&fresh), r#"{"refundId":"r-2"}"#);
    // An expired key is free for a different request, too.
    clock.set_millis(T0 + 49 * HOUR_MS);
    let other = event.body(r#"{"amount": 7}"#);
    assert_eq!(
        send(&mut service, other.request()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn route_expiry_shortens_the_window_for_one_route_only() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let config = IdempotencyConfig::builder()
        .max_lease(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut service = builder(&clock, &store)
        .config(config)
        .route_expiry(REFUND, Duration::from_secs(10 * 60))
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let refund = Event::refund().key("short-key");
    let order = Event::http_api("POST", "/orders", "/orders").key("short-key");

    send(&mut service, refund.request()).await;
    send(&mut service, order.request()).await;
    assert_eq!(
        record(&store, REFUND, ANONYMOUS, "short-key")
            .unwrap()
            .expires_at,
        (T0 + 10 * MINUTE_MS) / 1000
    );

    clock.set_millis(T0 + 9 * MINUTE_MS);
    assert!(replayed(&send(&mut service, refund.request()).await));
    clock.set_millis(T0 + 10 * MINUTE_MS + 1_000);
    assert!(!replayed(&send(&mut service, refund.request()).await));
    assert!(replayed(&send(&mut service, order.request()).await));
    assert_eq!(calls.count(), 3);
}

#[test]
fn route_expiry_outside_5_minutes_to_72_hours_is_a_config_error() {
    let one_ms = Duration::from_millis(1);
    for expiry in [
        Duration::ZERO,
        MIN_EXPIRY - one_ms,
        MAX_EXPIRY + one_ms,
        Duration::from_secs(7 * 24 * 3600),
    ] {
        let error = IdempotencyLayer::builder(MemoryStore::new())
            .route_expiry(REFUND, expiry)
            .build()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::ExpiryOutOfRange {
                value: expiry,
                min: MIN_EXPIRY,
                max: MAX_EXPIRY
            }
        );
    }
    let lease = IdempotencyConfig::builder()
        .max_lease(Duration::from_secs(60))
        .build()
        .unwrap();
    for expiry in [MIN_EXPIRY, MAX_EXPIRY] {
        IdempotencyLayer::builder(MemoryStore::new())
            .config(lease.clone())
            .route_expiry(REFUND, expiry)
            .build()
            .expect("the bounds are inclusive");
    }
}

#[test]
fn a_route_expiry_is_checked_against_the_layers_own_bounds() {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let wide = IdempotencyConfig::builder()
        .expiry_bounds(MIN_EXPIRY, 30 * DAY)
        .build()
        .unwrap();
    IdempotencyLayer::builder(MemoryStore::new())
        .config(wide.clone())
        .route_expiry(REFUND, 30 * DAY)
        .build()
        .expect("within the layer's bounds");
    assert_eq!(
        IdempotencyLayer::builder(MemoryStore::new())
            .config(wide)
            .route_expiry(REFUND, 31 * DAY)
            .build()
            .unwrap_err(),
        ConfigError::ExpiryOutOfRange {
            value: 31 * DAY,
            min: MIN_EXPIRY,
            max: 30 * DAY
        }
    );
}

#[tokio::test]
async fn the_replay_hook_changes_replays_only() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let hooked = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&hooked);
    let mut service = builder(&clock, &store)
        .on_replay(move |response, record| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(record.status, Status::Completed);
            response
                .headers_mut()
                .insert("x-replay-of", HeaderValue::from_str(&record.key).unwrap());
        })
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let first = send(&mut service, Event::refund().key("hook-1").request()).await;
    assert!(first.headers().get("x-replay-of").is_none());
    let replay = send(&mut service, Event::refund().key("hook-1").request()).await;
    assert!(replayed(&replay));
    assert_eq!(replay.headers()["x-replay-of"], "hook-1");
    // A conflict is the layer's own answer, not a replay.
    let other = Event::refund().key("hook-1").body(r#"{"amountCents":1}"#);
    let conflict = send(&mut service, other.request()).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert!(conflict.headers().get("x-replay-of").is_none());
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn idempotency_disabled_by_the_environment_runs_every_request() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .env_lookup(|name| (name == "IDEMPOTENCY_DISABLED").then(|| "1".to_owned()))
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    for _ in 0..2 {
        let response = send(&mut service, Event::refund().key("off-1").request()).await;
        assert!(!replayed(&response));
    }
    // Not even a malformed key is refused: the layer is not there.
    let response = send(&mut service, Event::refund().key("bad key!").request()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(calls.count(), 3);
    assert!(store.is_empty());
}

/// A route expiry shorter than the lease (a 29 s invocation is short, but a lease
/// without a deadline is the 15-minute max lease) never shortens the lease: the
/// record lives as long as its lease instead.
#[tokio::test]
async fn a_route_expiry_shorter_than_the_lease_extends_the_record_not_the_lease() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let layer = builder(&clock, &store)
        .config(
            IdempotencyConfig::builder()
                .max_lease(Duration::from_secs(20 * 60))
                .build()
                .unwrap(),
        )
        .route_expiry(REFUND, Duration::from_secs(10 * 60))
        .build()
        .expect("a 10 minute route expiry is in range");
    let mut service = layer.layer(handler(&calls, |run, _: &Request| created(run)));
    let response = send(&mut service, Event::refund().key("short-lived").request()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let short = record(&store, REFUND, ANONYMOUS, "short-lived").expect("stored");
    assert_eq!(short.lease_expires_at_ms, T0 + 20 * MINUTE_MS);
    assert_eq!(
        short.expires_at,
        (T0 + 20 * MINUTE_MS + LEASE_MARGIN_MS) / 1000
    );
    // With a known deadline the route's expiry decides.
    let request = Event::refund()
        .key("with-deadline")
        .request_with_deadline(T0 + 29_000);
    send(&mut service, request).await;
    let known = record(&store, REFUND, ANONYMOUS, "with-deadline").expect("stored");
    assert_eq!(known.lease_expires_at_ms, T0 + 29_000 + LEASE_MARGIN_MS);
    assert_eq!(known.expires_at, (T0 + 10 * MINUTE_MS) / 1000);
}

// ---------------------------------------------------------------------------------
// 11. Route and actor
// ---------------------------------------------------------------------------------

#[test]
fn route_is_the_template_for_api_gateway_and_method_plus_path_otherwise() {
    let v2 = Event::refund().request();
    assert!(matches!(
        v2.request_context_ref(),
        Some(RequestContext::ApiGatewayV2(_))
    ));
    assert_eq!(route_of(&v2), REFUND);

    let v1 = Event::rest_refund().request();
    assert!(matches!(
        v1.request_context_ref(),
        Some(RequestContext::ApiGatewayV1(_))
    ));
    assert_eq!(v1.uri().path(), "/prod/orders/o-1/refunds");
    assert_eq!(route_of(&v1), REFUND);

    let alb = Event::alb("POST", "/some/path").request();
    assert!(matches!(
        alb.request_context_ref(),
        Some(RequestContext::Alb(_))
    ));
    assert_eq!(route_of(&alb), "POST /some/path");

    let url = Event::function_url("POST", "/some/path").request();
    assert!(matches!(
        url.request_context_ref(),
        Some(RequestContext::ApiGatewayV2(_))
    ));
    assert_eq!(route_of(&url), "POST /some/path");

    // An HTTP API whose only route is `$default` behaves like a Function URL.
    let mut default_route = Event::http_api("POST", "/some/path", "/some/path");
    default_route.json["routeKey"] = json!("$default");
    default_route.json["requestContext"]["routeKey"] = json!("$default");
    assert_eq!(route_of(&default_route.request()), "POST /some/path");
}

/// The role ARN every user of a Cognito identity pool calls with.
const COGNITO_ROLE_SESSION: &str =
    "arn:aws:sts::123456789012:assumed-role/Cognito_OrdersAuth_Role/CognitoIdentityCredentials";

#[tokio::test]
async fn each_principal_gets_its_own_record_and_response_for_the_same_key() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let cases = [
        (
            "jwt:alice",
            Event::refund().authorizer(json!({
                "jwt": {
                    "claims": {
                        "sub": "alice",
                        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
                        "scope": "orders/refund"
                    },
                    "scopes": null
                }
            })),
        ),
        (
            "jwt:bob",
            Event::rest_refund().authorizer(json!({
                "claims": { "sub": "bob", "cognito:username": "bob", "email": "bob@example.com" }
            })),
        ),
        (
            "iam:arn:aws:iam::123456789012:user/carol",
            Event::refund().authorizer(json!({
                "iam": {
                    "accessKey": "AKIAIOSFODNN7EXAMPLE",
                    "accountId": "123456789012",
                    "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                    "cognitoIdentity": null,
                    "principalOrgId": null,
                    "userArn": "arn:aws:iam::123456789012:user/carol",
                    "userId": "AIDACKCEVSQ6C2EXAMPLE"
                }
            })),
        ),
        (
            "iam:arn:aws:iam::123456789012:user/dave",
            Event::rest_refund().identity(json!({
                "accessKey": "AKIAI44QH8DHBEXAMPLE",
                "accountId": "123456789012",
                "caller": "AIDAJQABLZS4A3QDU576Q",
                "user": "AIDAJQABLZS4A3QDU576Q",
                "userArn": "arn:aws:iam::123456789012:user/dave"
            })),
        ),
        (
            "lambda:erin",
            Event::rest_refund().authorizer(json!({
                "principalId": "erin",
                "integrationLatency": 12,
                "tenant": "acme"
            })),
        ),
        // Every user of a Cognito identity pool calls with the same role ARN: the
        // identity id tells them apart.
        (
            "cognito:eu-west-1:11111111-2222-3333-4444-555555555555",
            Event::refund().authorizer(json!({
                "iam": {
                    "accessKey": "ASIAIOSFODNN7EXAMPLE",
                    "accountId": "123456789012",
                    "callerId": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials",
                    "cognitoIdentity": {
                        "amr": ["authenticated"],
                        "identityId": "eu-west-1:11111111-2222-3333-4444-555555555555",
                        "identityPoolId": "eu-west-1:99999999-8888-7777-6666-555555555555"
                    },
                    "principalOrgId": null,
                    "userArn": COGNITO_ROLE_SESSION,
                    "userId": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials"
                }
            })),
        ),
        (
            "cognito:eu-west-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            Event::rest_refund().identity(json!({
                "accessKey": "ASIAI44QH8DHBEXAMPLE",
                "accountId": "123456789012",
                "caller": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials",
                "cognitoAuthenticationProvider": "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
                "cognitoAuthenticationType": "authenticated",
                "cognitoIdentityId": "eu-west-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "cognitoIdentityPoolId": "eu-west-1:99999999-8888-7777-6666-555555555555",
                "user": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials",
                "userArn": COGNITO_ROLE_SESSION
            })),
        ),
        (ANONYMOUS, Event::refund()),
    ];

    for (i, (actor, event)) in cases.iter().enumerate() {
        let response = send(&mut service, event.clone().key("shared-key").request()).await;
        assert!(!replayed(&response), "{actor}");
        assert_eq!(
            text(&response),
            format!(r#"{{"refundId":"r-{}"}}"#, i + 1),
            "{actor}"
        );
    }
    for (i, (actor, event)) in cases.iter().enumerate() {
        let again = send(&mut service, event.clone().key("shared-key").request()).await;
        assert!(replayed(&again), "{actor}");
        assert_eq!(
            text(&again),
            format!(r#"{{"refundId":"r-{}"}}"#, i + 1),
            "{actor}"
        );
        assert_eq!(
            status_of(&store, REFUND, actor, "shared-key"),
            Some(Status::Completed),
            "{actor}"
        );
    }
    assert_eq!(calls.count(), cases.len());
    assert_eq!(store.len(), cases.len());
}

#[tokio::test]
async fn requests_without_a_principal_are_anonymous() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let blank_identity = json!({
        "accessKey": "", "accountId": "", "caller": "", "cognitoAuthenticationProvider": "",
        "cognitoAuthenticationType": "", "cognitoIdentityId": "", "cognitoIdentityPoolId": "",
        "user": "", "userArn": ""
    });
    let cases = [
        (REFUND, "v2-no-authorizer", Event::refund()),
        (REFUND, "v1-null-identity", Event::rest_refund()),
        // API Gateway's test console and SAM-style events send a null claims object.
        (
            REFUND,
            "v1-null-claims",
            Event::rest_refund().authorizer(json!({ "claims": null })),
        ),
        // ALB's OIDC header names mean nothing on another event: a client sent them.
        (
            REFUND,
            "v2-spoofed-oidc-header",
            Event::refund().header("x-amzn-oidc-identity", "someone"),
        ),
        // API Gateway's test console and SAM local send empty strings, not nulls.
        (
            REFUND,
            "v1-blank-identity",
            Event::rest_refund().identity(blank_identity),
        ),
        ("POST /some/path", "alb", Event::alb("POST", "/some/path")),
        (
            "POST /some/path",
            "function-url",
            Event::function_url("POST", "/some/path"),
        ),
    ];
    let count = cases.len();
    for (route, key, event) in cases {
        send(&mut service, event.key(key).request()).await;
        let record = record(&store, route, ANONYMOUS, key);
        assert_eq!(record.map(|r| r.actor), Some(ANONYMOUS.to_owned()), "{key}");
    }
    assert_eq!(calls.count(), count);
}

#[tokio::test]
async fn a_custom_actor_closure_replaces_the_default() {
    let (clock, store) = setup();
    let calls = Calls::default();
    // The tenant an HTTP API Lambda authorizer put in its context: a gateway-set
    // field, never a header the client chooses.
    let by_tenant = |req: &Request| match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .fields
            .get("tenant")?
            .as_str()
            .map(|t| format!("tenant:{t}")),
        _ => None,
    };
    let mut service = builder(&clock, &store)
        .actor(by_tenant)
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let tenant = |tenant: &str, user: &str| {
        Event::refund().authorizer(json!({ "lambda": { "tenant": tenant, "user": user } }))
    };

    let a = send(
        &mut service,
        tenant("acme", "alice").key("tenant-key").request(),
    )
    .await;
    let g = send(
        &mut service,
        tenant("globex", "alice").key("tenant-key").request(),
    )
    .await;
    // The user no longer counts: bob at acme is acme's actor.
    let b = send(
        &mut service,
        tenant("acme", "bob").key("tenant-key").request(),
    )
    .await;
    // A client-sent header cannot choose the tenant.
    let spoofed = tenant("globex", "mallory").header("x-tenant-id", "acme");
    let s = send(&mut service, spoofed.key("tenant-key").request()).await;

    assert_eq!(text(&a), r#"{"refundId":"r-1"}"#);
    assert_eq!(text(&g), r#"{"refundId":"r-2"}"#);
    assert!(replayed(&b));
    assert_eq!(text(&b), r#"{"refundId":"r-1"}"#);
    assert_eq!(text(&s), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);
    assert!(record(&store, REFUND, "tenant:acme", "tenant-key").is_some());
    assert!(record(&store, REFUND, "tenant:globex", "tenant-key").is_some());

    // No authorizer at all: anonymous. An authorizer without a tenant: refused.
    send(&mut service, Event::refund().key("no-tenant").request()).await;
    assert!(record(&store, REFUND, ANONYMOUS, "no-tenant").is_some());
    let jwt =
        Event::refund().authorizer(json!({ "jwt": { "claims": { "sub": "x" }, "scopes": null } }));
    let refused = send(&mut service, jwt.key("no-tenant-2").request()).await;
    problem(&refused, 500, "unidentified-caller");
}

// ---------------------------------------------------------------------------------
// 12. What counts as the same request
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn json_bodies_differing_only_in_key_order_and_whitespace_are_the_same_request() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let original = r#"{"amount": 100, "currency": "EUR", "reason": {"code": "damaged", "note": "box crushed"}}"#;
    let reordered = "{\n\t\"reason\" : {\"note\":\"box crushed\",\"code\":\"damaged\"},\n\t\"currency\":\"EUR\",\"amount\":1.0e2\n}";
    let changed = r#"{"amount": 101, "currency": "EUR", "reason": {"code": "damaged", "note": "box crushed"}}"#;

    send(
        &mut service,
        Event::refund().key("json-key").body(original).request(),
    )
    .await;
    let again = send(
        &mut service,
        Event::refund().key("json-key").body(reordered).request(),
    )
    .await;
    assert!(replayed(&again));
    // Without a content type, a JSON body is still compared as JSON.
    let untyped = Event::refund()
        .key("json-key")
        .body(reordered)
        .without_header("content-type")
        .request();
    assert!(replayed(&send(&mut service, untyped).await));

    let response = send(
        &mut service,
        Event::refund().key("json-key").body(changed).request(),
    )
    .await;
    problem(&response, 409, "key-reused");
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn non_json_bodies_are_compared_byte_for_byte() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let form = |body: &str| {
        Event::refund()
            .key("form-key")
            .header("content-type", "text/plain")
            .body(body)
            .request()
    };

    send(&mut service, form(r#"{"a": 1, "b": 2}"#)).await;
    assert!(replayed(
        &send(&mut service, form(r#"{"a": 1, "b": 2}"#)).await
    ));
    problem(
        &send(&mut service, form(r#"{"b": 2, "a": 1}"#)).await,
        409,
        "key-reused",
    );
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn query_parameters_in_a_different_order_are_the_same_request() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let with_query = |query: &str| Event::refund().key("query-key").raw_query(query).request();

    send(&mut service, with_query("notify=email&dryRun=false")).await;
    assert!(replayed(
        &send(&mut service, with_query("dryRun=false&notify=email")).await
    ));
    problem(
        &send(&mut service, with_query("dryRun=true&notify=email")).await,
        409,
        "key-reused",
    );
    problem(
        &send(&mut service, with_query("notify=email")).await,
        409,
        "key-reused",
    );
    assert_eq!(calls.count(), 1);
}

// ---------------------------------------------------------------------------------
// 13. The lease follows the invocation deadline
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn lease_ends_at_the_context_deadline_plus_the_margin_however_long() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    for (key, deadline) in [
        ("deadline-3s", T0 + 3_000),
        ("deadline-29s", T0 + 29_000),
        ("deadline-just-under-max", T0 + DEFAULT_MAX_LEASE_MS - 1),
        // A deadline beyond the max lease still decides: max_lease is only the
        // fallback for an unknown deadline.
        ("deadline-after-max", T0 + HOUR_MS),
    ] {
        let request = Event::refund().key(key).request_with_deadline(deadline);
        send(&mut service, request).await;
        let record = record(&store, REFUND, ANONYMOUS, key).unwrap();
        assert_eq!(
            record.lease_expires_at_ms,
            deadline + LEASE_MARGIN_MS,
            "{key}"
        );
    }
    assert_eq!(calls.count(), 4);
}

#[tokio::test]
async fn lease_is_the_max_lease_without_a_usable_deadline() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let event = |key: &str| Event::refund().key(key);

    let mut default_context = event("context-default").request();
    default_context.extensions_mut().insert(Context::default());
    let cases = [
        ("context-default", default_context),
        ("no-context", event("no-context").request()),
        (
            "deadline-now",
            event("deadline-now").request_with_deadline(T0),
        ),
        (
            "deadline-past",
            event("deadline-past").request_with_deadline(T0 - 1),
        ),
    ];
    for (key, request) in cases {
        send(&mut service, request).await;
        let record = record(&store, REFUND, ANONYMOUS, key).unwrap();
        assert_eq!(
            record.lease_expires_at_ms,
            T0 + DEFAULT_MAX_LEASE_MS,
            "{key}"
        );
    }
    assert_eq!(calls.count(), 4);
}

// ---------------------------------------------------------------------------------
// 14. The one-line wrapper
// ---------------------------------------------------------------------------------

static PLAIN_FN_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn create_refund(_: Request) -> Result<Response<Body>, lambda_http::Error> {
    let run = PLAIN_FN_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    created(run)
}

#[tokio::test]
async fn idempotent_wraps_a_plain_async_fn_in_one_line() {
    let (clock, store) = setup();
    let mut service = idempotent(layer(&clock, &store), create_refund);
    let event = Event::refund().key("one-liner");

    let first = send(&mut service, event.request()).await;
    let again = send(&mut service, event.request()).await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(replayed(&again));
    assert_eq!(text(&again), text(&first));
    assert_eq!(PLAIN_FN_RUNS.load(Ordering::SeqCst), 1);

    // A capturing closure works the same way.
    let calls = Calls::default();
    let counter = calls.clone();
    let mut service = idempotent(layer(&clock, &store), move |_: Request| {
        let counter = counter.clone();
        async move { created(counter.bump()) }
    });
    let event = Event::refund().key("one-liner-closure");
    send(&mut service, event.request()).await;
    assert!(replayed(&send(&mut service, event.request()).await));
    assert_eq!(calls.count(), 1);
}

// ---------------------------------------------------------------------------------
// 15. An unreadable stored response
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_unreadable_stored_response_is_a_500_problem_and_the_handler_does_not_run() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    let valid = StoredResponse {
        status: StatusCode::CREATED,
        headers: vec![],
        body: StoredBody::Text("{}".into()),
    }
    .encode();
    let cases: [(&str, Option<Vec<u8>>); 3] = [
        ("garbage", Some(b"\x00 not a stored response".to_vec())),
        ("truncated", Some(valid[..valid.len() - 3].to_vec())),
        ("missing", None),
    ];
    for (key, response) in cases {
        let request = Event::refund().key(key).request();
        let scope = Scope::new(
            route_of(&request),
            ANONYMOUS,
            IdempotencyKey::parse(key).unwrap(),
        );
        let stored = Record {
            partition_key: scope.partition_key().to_owned(),
            status: Status::Completed,
            fingerprint: fingerprint_of(&request),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms: T0 - 1_000,
            expires_at: T0 / 1000 + 3_600,
            response,
            response_omitted: None,
            created_at_ms: T0 - 2_000,
            updated_at_ms: T0 - 1_000,
            route: REFUND.to_owned(),
            actor: ANONYMOUS.to_owned(),
            key: key.to_owned(),
        };
        store.insert_raw(stored.clone());

        let answer = send(&mut service, request).await;
        let json = problem(&answer, 500, "stored-response-unreadable");
        assert_eq!(json["idempotencyKey"], key);
        assert_eq!(store.get_raw(scope.partition_key()), Some(stored), "{key}");
    }
    assert_eq!(calls.count(), 0);
}

// ---------------------------------------------------------------------------------
// What lambda_http finally sends
// ---------------------------------------------------------------------------------

/// `lambda_http::run` calls `IntoResponse::into_response` on whatever the service
/// returns, and the layer has already done so once. For UTF-8 text, binary and empty
/// bodies a second conversion must change nothing, for the first response and for a
/// replay alike.
#[tokio::test]
async fn a_second_lambda_http_conversion_leaves_first_and_replayed_responses_unchanged() {
    use lambda_http::IntoResponse;

    fn respond(request: &Request) -> Handled {
        let case = request.headers()["x-case"].to_str().unwrap_or_default();
        let builder = Response::builder().status(200);
        Ok(match case {
            "json" => builder
                .header("content-type", "application/json")
                .body(Body::from("{\"note\":\"remboursé ✓\"}"))?,
            "png" => builder
                .header("content-type", "image/png")
                .body(Body::Binary(vec![0x89, b'P', b'N', b'G', 0x00, 0xff]))?,
            "text-as-octets" => builder
                .header("content-type", "application/octet-stream")
                .body(Body::from("raw text"))?,
            "gzip" => builder
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::Binary(vec![0x1f, 0x8b, 0x08, 0x00, 0xee]))?,
            "untyped" => builder.body(Body::from("plain"))?,
            _ => builder.status(204).body(Body::Empty)?,
        })
    }

    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |_, req: &Request| respond(req)));
    for case in ["json", "png", "text-as-octets", "gzip", "untyped", "empty"] {
        let event = Event::refund()
            .key(&format!("convert-{case}"))
            .header("x-case", case);
        let direct = respond(&event.request()).unwrap().into_response().await;
        let first = send(&mut service, event.request())
            .await
            .into_response()
            .await;
        let mut replay = send(&mut service, event.request())
            .await
            .into_response()
            .await;
        assert!(
            replay.headers_mut().remove("idempotent-replayed").is_some(),
            "{case}"
        );
        for sent in [&first, &replay] {
            assert_eq!(sent.status(), direct.status(), "{case}");
            assert_eq!(sent.body(), direct.body(), "{case}");
            assert_eq!(
                sent.headers().get("content-type"),
                direct.headers().get("content-type")
            );
        }
    }
    assert_eq!(calls.count(), 6);
}

// ---------------------------------------------------------------------------------
// The store failing
// ---------------------------------------------------------------------------------

/// The in-memory store, with switches that make `begin` or `complete` fail as an
/// unreachable DynamoDB would.
#[derive(Debug)]
struct FlakyStore {
    inner: MemoryStore,
    fail_begin: AtomicBool,
    fail_complete: AtomicBool,
}

impl FlakyStore {
    fn new(inner: &MemoryStore) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            fail_begin: AtomicBool::new(false),
            fail_complete: AtomicBool::new(false),
        })
    }

    fn check(&self, switch: &AtomicBool) -> lambda_idempotency::Result<()> {
        if switch.load(Ordering::SeqCst) {
            return Err(lambda_idempotency::Error::StoreUnavailable {
                message: "connection refused".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for FlakyStore {
    async fn begin(&self, request: &BeginRequest) -> lambda_idempotency::Result<BeginOutcome> {
        self.check(&self.fail_begin)?;
        self.inner.begin(request).await
    }
    async fn complete(
        &self,
        lease: &Lease,
        response: &[u8],
    ) -> lambda_idempotency::Result<WriteOutcome> {
        self.check(&self.fail_complete)?;
        self.inner.complete(lease, response).await
    }
    async fn fail(&self, lease: &Lease) -> lambda_idempotency::Result<WriteOutcome> {
        self.inner.fail(lease).await
    }
    async fn get(&self, partition_key: &str) -> lambda_idempotency::Result<Option<Record>> {
        self.inner.get(partition_key).await
    }
    async fn delete(&self, partition_key: &str) -> lambda_idempotency::Result<bool> {
        self.inner.delete(partition_key).await
    }
}

#[tokio::test]
async fn store_unreachable_before_the_handler_is_a_503_and_the_handler_does_not_run() {
    let (clock, memory) = setup();
    let store = FlakyStore::new(&memory);
    store.fail_begin.store(true, Ordering::SeqCst);
    let calls = Calls::default();
    let mut service = IdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let event = Event::refund().key("store-down");

    let response = send(&mut service, event.request()).await;
    let json = problem(&response, 503, "store-unavailable");
    assert_eq!(json["idempotencyKey"], "store-down");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(calls.count(), 0);
    assert!(memory.is_empty());

    store.fail_begin.store(false, Ordering::SeqCst);
    assert_eq!(
        send(&mut service, event.request()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn a_response_that_cannot_be_stored_is_still_sent_and_the_key_waits_for_its_lease() {
    let (clock, memory) = setup();
    let store = FlakyStore::new(&memory);
    store.fail_complete.store(true, Ordering::SeqCst);
    let calls = Calls::default();
    let mut service = IdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    let event = Event::refund().key("store-flaky");

    let first = send(&mut service, event.request_with_deadline(T0 + 5_000)).await;
    assert_eq!(text(&first), r#"{"refundId":"r-1"}"#);
    assert_eq!(
        status_of(&memory, REFUND, ANONYMOUS, "store-flaky"),
        Some(Status::Pending)
    );

    store.fail_complete.store(false, Ordering::SeqCst);
    let retry = send(&mut service, event.request()).await;
    problem(&retry, 409, "request-in-progress");
    assert_eq!(retry.headers()["retry-after"], "8");
    assert_eq!(calls.count(), 1);

    clock.set_millis(T0 + 8_001);
    let retry = send(&mut service, event.request()).await;
    assert_eq!(text(&retry), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);
}

// ---------------------------------------------------------------------------------
// 18. No silent shared actor: an authorizer without a principal is refused
// ---------------------------------------------------------------------------------

/// Requests that went through an authorizer (or ALB authentication) but carry no
/// principal the default extractor recognises.
fn authenticated_without_a_principal() -> Vec<(&'static str, Event)> {
    vec![
        // HTTP API Lambda authorizer, simple response: only the returned context.
        (
            "v2-lambda-simple",
            Event::refund().authorizer(json!({ "lambda": { "tenant": "tenant-1" } })),
        ),
        // HTTP API Lambda authorizer that returned no context at all.
        (
            "v2-lambda-no-context",
            Event::refund().authorizer(json!({ "lambda": null })),
        ),
        ("v2-empty-authorizer", Event::refund().authorizer(json!({}))),
        // HTTP API Lambda authorizer, IAM policy response: its context, no principalId.
        (
            "v2-lambda-iam-policy",
            Event::refund().authorizer(json!({ "lambda": { "tenant": "tenant-1", "scope": "orders" } })),
        ),
        // A JWT authorizer whose token has no `sub` claim.
        (
            "v2-jwt-without-sub",
            Event::refund().authorizer(json!({
                "jwt": { "claims": { "iss": "https://issuer.example.com", "client_id": "abc" }, "scopes": null }
            })),
        ),
        // A REST Lambda authorizer whose principalId is empty.
        (
            "v1-lambda-empty-principal",
            Event::rest_refund().authorizer(json!({ "principalId": "", "tenant": "tenant-1" })),
        ),
        // A REST Cognito authorizer whose claims have no `sub`.
        (
            "v1-claims-without-sub",
            Event::rest_refund().authorizer(json!({ "claims": { "email": "x@example.com" } })),
        ),
        // ALB with an OIDC authenticate action: the identity is in headers ALB signs.
        (
            "alb-oidc",
            Event::alb("POST", "/some/path")
                .header("x-amzn-oidc-identity", "alice")
                .header("x-amzn-oidc-data", "eyJhbGciOiJFUzI1NiJ9.e30.sig"),
        ),
    ]
}

#[tokio::test]
async fn an_authorizer_without_a_principal_is_refused_never_shared() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));

    // The report's case: two tenants through an HTTP API Lambda authorizer whose
    // context names no principal, same key, same body.
    for tenant in ["tenant-1", "tenant-2"] {
        let event = Event::refund()
            .authorizer(json!({ "lambda": { "tenant": tenant } }))
            .key("short-key");
        let response = send(&mut service, event.request()).await;
        let body = problem(&response, 500, "unidentified-caller");
        assert!(
            body["detail"].as_str().unwrap().contains("principal"),
            "{body}"
        );
    }
    for (name, event) in authenticated_without_a_principal() {
        let response = send(&mut service, event.key(name).request()).await;
        problem(&response, 500, "unidentified-caller");
    }
    assert_eq!(calls.count(), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn unidentified_callers_share_the_anonymous_actor_only_when_opted_in() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .unidentified_caller(UnidentifiedCaller::Anonymous)
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    for (name, event) in authenticated_without_a_principal() {
        let response = send(&mut service, event.key(name).request()).await;
        assert!(
            response.status().is_success(),
            "{name}: {}",
            text(&response)
        );
        let route = if name == "alb-oidc" {
            "POST /some/path"
        } else {
            REFUND
        };
        assert!(record(&store, route, ANONYMOUS, name).is_some(), "{name}");
    }
    assert_eq!(calls.count(), authenticated_without_a_principal().len());
}

#[tokio::test]
async fn a_named_authorizer_context_field_is_the_principal() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .actor(DefaultActor::new().principal_field("userId"))
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));

    let v2 = |user: &str| {
        Event::refund().authorizer(json!({ "lambda": { "userId": user, "tenant": "t-1" } }))
    };
    // REST Lambda authorizers often return a constant principalId and put the user
    // in the context: the named field wins.
    let v1 = |user: &str| {
        Event::rest_refund().authorizer(json!({ "principalId": "user", "userId": user }))
    };
    let a = send(&mut service, v2("u-1").key("k").request()).await;
    let b = send(&mut service, v2("u-2").key("k").request()).await;
    let c = send(&mut service, v1("u-3").key("k").request()).await;
    let d = send(&mut service, v1("u-4").key("k").request()).await;
    for (response, run) in [(&a, 1), (&b, 2), (&c, 3), (&d, 4)] {
        assert!(!replayed(response));
        assert_eq!(text(response), format!(r#"{{"refundId":"r-{run}"}}"#));
    }
    for user in ["u-1", "u-2", "u-3", "u-4"] {
        let actor = format!("lambda.userId:{user}");
        assert!(record(&store, REFUND, &actor, "k").is_some(), "{actor}");
    }
    // Without the field, the v2 context still names no principal.
    let response = send(
        &mut service,
        Event::refund()
            .authorizer(json!({ "lambda": { "tenant": "t-1" } }))
            .key("k2")
            .request(),
    )
    .await;
    problem(&response, 500, "unidentified-caller");
    assert_eq!(calls.count(), 4);
}

// ---------------------------------------------------------------------------------
// 19. Routes are templates, not raw paths
// ---------------------------------------------------------------------------------

/// Spellings of `POST /orders` a router that trims slashes runs as one route.
const ORDERS_SPELLINGS: [&str; 6] = [
    "/orders",
    "/orders/",
    "//orders",
    "/orders//",
    "/%6Frders",
    "/./orders",
];

#[tokio::test]
async fn one_key_on_differently_spelled_paths_runs_the_handler_once() {
    for (name, event) in [
        ("function-url", Event::function_url("POST", "/orders")),
        ("alb", Event::alb("POST", "/orders")),
        ("http-api-$default", {
            let mut e = Event::http_api("POST", "/orders", "/orders");
            e.json["routeKey"] = json!("$default");
            e.json["requestContext"]["routeKey"] = json!("$default");
            e
        }),
    ] {
        let (clock, store) = setup();
        let calls = Calls::default();
        let mut service =
            layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
        for path in ORDERS_SPELLINGS {
            let mut event = event.clone();
            match event.source {
                Source::Alb => event.json["path"] = json!(path),
                _ => event.set_v2_method_and_path("POST", path),
            }
            let response = send(&mut service, event.key("one-order").request()).await;
            assert_eq!(text(&response), r#"{"refundId":"r-1"}"#, "{name} {path}");
        }
        assert_eq!(calls.count(), 1, "{name}");
        assert_eq!(store.len(), 1, "{name}");
        assert!(record(&store, "POST /orders", ANONYMOUS, "one-order").is_some());
    }
}

#[test]
fn route_of_normalises_the_path_where_the_event_has_no_template() {
    for path in ORDERS_SPELLINGS {
        let url = Event::function_url("POST", path).request();
        assert_eq!(route_of(&url), "POST /orders", "{path}");
    }
    // Reserved characters stay encoded: %2F is not a segment boundary.
    let url = Event::function_url("POST", "/files/a%2Fb").request();
    assert_eq!(route_of(&url), "POST /files/a%2Fb");
    assert_eq!(
        route_of(&Event::function_url("POST", "/").request()),
        "POST /"
    );
}

#[tokio::test]
async fn protect_routes_matches_the_normalised_path() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .protect(Protect::Routes(HashSet::from(["POST /orders".to_owned()])))
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    for path in ORDERS_SPELLINGS {
        let response = send(&mut service, Event::function_url("POST", path).request()).await;
        problem(&response, 400, "missing-key");
    }
    assert_eq!(calls.count(), 0);
}

#[tokio::test]
async fn route_templates_scope_requests_that_carry_no_template() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = builder(&clock, &store)
        .route_templates(["/orders", "/orders/{orderId}/refunds", "GET /files/{path+}"])
        .build()
        .unwrap()
        .layer(handler(&calls, |run, _: &Request| created(run)));
    // One key, two orders: one route, and the path (in the fingerprint) differs.
    let refund = |order: &str| {
        Event::function_url("POST", &format!("/orders/{order}/refunds/")).key("refund-1")
    };
    let first = send(&mut service, refund("o-1").request()).await;
    assert_eq!(text(&first), r#"{"refundId":"r-1"}"#);
    let other = send(&mut service, refund("o-2").request()).await;
    problem(&other, 409, "key-reused");
    assert!(record(&store, REFUND, ANONYMOUS, "refund-1").is_some());
    assert_eq!(calls.count(), 1);

    let url = |method: &str, path: &str| Event::function_url(method, path).request();
    let layer = builder(&clock, &store)
        .route_templates(["/orders", "/orders/{orderId}/refunds", "GET /files/{path+}"])
        .build()
        .unwrap();
    assert_eq!(
        layer.route_for(&url("POST", "//orders/o-9/refunds")),
        "POST /orders/{orderId}/refunds"
    );
    assert_eq!(
        layer.route_for(&url("GET", "/files/a/b/c")),
        "GET /files/{path+}"
    );
    // The method is part of a template that names one.
    assert_eq!(layer.route_for(&url("POST", "/files/a")), "POST /files/a");
    // An empty segment never matches a variable.
    assert_eq!(
        layer.route_for(&url("POST", "/orders/refunds")),
        "POST /orders/refunds"
    );
}

#[test]
fn a_route_template_that_is_not_a_path_is_a_config_error() {
    let store = MemoryStore::new();
    for bad in [
        "orders",
        "POST",
        "/orders/{",
        "/orders/{}",
        "/a/{x+}/b",
        "/a/{x}{y}",
    ] {
        let err = IdempotencyLayer::builder(store.clone())
            .route_templates([bad])
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidRouteTemplate { .. }),
            "{bad}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// 20. The lease covers the whole invocation
// ---------------------------------------------------------------------------------

/// The default margin added to a known deadline for clock skew between instances.
const LEASE_MARGIN_MS: i64 = 3_000;

/// A 15-minute invocation whose handler outlives `max_lease` and the route's expiry:
/// retries within its deadline are in flight, never a second run, and the record never
/// expires under it (so a different body cannot take the key either).
#[tokio::test]
async fn a_handler_that_outlives_the_max_lease_and_the_route_expiry_runs_once() {
    let deadline = T0 + 15 * MINUTE_MS;
    let (clock, store) = setup();
    let calls = Calls::default();
    let gate = Gate::default();
    let service = builder(&clock, &store)
        .config(
            IdempotencyConfig::builder()
                .max_lease(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .route_expiry(REFUND, MIN_EXPIRY)
        .build()
        .unwrap()
        .layer(gated_handler(&calls, &gate));
    let event = Event::refund().key("long-run");

    let first = tokio::spawn(
        service
            .clone()
            .oneshot(event.request_with_deadline(deadline)),
    );
    gate.wait_until_started().await;
    let record = record(&store, REFUND, ANONYMOUS, "long-run").unwrap();
    assert_eq!(record.lease_expires_at_ms, deadline + LEASE_MARGIN_MS);
    assert!(record.expires_at * 1000 >= deadline + 2 * LEASE_MARGIN_MS);

    let mut retry = service.clone();
    for at in [
        2 * MINUTE_MS,
        6 * MINUTE_MS,
        14 * MINUTE_MS,
        15 * MINUTE_MS + 2_000,
    ] {
        clock.set_millis(T0 + at);
        let response = send(&mut retry, event.request_with_deadline(T0 + at + 29_000)).await;
        problem(&response, 409, "request-in-progress");
        // A different request under the key is still a conflict, not a new record.
        let other = event.clone().body(r#"{"amount": 999}"#);
        let response = send(&mut retry, other.request_with_deadline(T0 + at + 29_000)).await;
        problem(&response, 409, "key-reused");
    }
    assert_eq!(calls.count(), 1);

    gate.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(text(&first), r#"{"refundId":"r-1"}"#);
    assert_eq!(
        status_of(&store, REFUND, ANONYMOUS, "long-run"),
        Some(Status::Completed)
    );
}

#[tokio::test]
async fn a_timed_out_invocation_frees_its_key_soon_after_its_deadline() {
    let deadline = T0 + 29_000;
    let (clock, store) = setup();
    let calls = Calls::default();
    let gate = Gate::default();
    let service = layer(&clock, &store).layer(gated_handler(&calls, &gate));
    let event = Event::refund().key("timed-out");
    // The first invocation never finishes (Lambda stopped it at its deadline).
    let _first = tokio::spawn(
        service
            .clone()
            .oneshot(event.request_with_deadline(deadline)),
    );
    gate.wait_until_started().await;

    let mut retry = service.clone();
    clock.set_millis(deadline + LEASE_MARGIN_MS);
    problem(
        &send(&mut retry, event.request_with_deadline(deadline + 60_000)).await,
        409,
        "request-in-progress",
    );
    clock.set_millis(deadline + LEASE_MARGIN_MS + 1);
    let response = send(&mut retry, event.request_with_deadline(deadline + 60_000)).await;
    assert_eq!(text(&response), r#"{"refundId":"r-2"}"#);
    assert_eq!(calls.count(), 2);
}

#[test]
fn the_lease_is_the_deadline_plus_the_margin_and_the_max_lease_only_without_one() {
    let config = IdempotencyConfig::builder()
        .max_lease(Duration::from_secs(60))
        .lease_margin(Duration::from_secs(5))
        .build()
        .unwrap();
    let now = T0;
    // Known deadlines, shorter and longer than the max lease.
    assert_eq!(config.lease_for(now, now + 3_000), Duration::from_secs(8));
    assert_eq!(
        config.lease_for(now, now + 15 * MINUTE_MS),
        Duration::from_secs(905)
    );
    // Unknown (unset or past): the max lease.
    assert_eq!(config.lease_for(now, 0), Duration::from_secs(60));
    assert_eq!(config.lease_for(now, now - 1), Duration::from_secs(60));
    // The default margin.
    assert_eq!(
        IdempotencyConfig::default().lease_margin(),
        Duration::from_millis(LEASE_MARGIN_MS as u64)
    );
    // A max lease longer than a short expiry is fine now: the record outlives its lease.
    assert!(
        IdempotencyConfig::builder()
            .expiry(MIN_EXPIRY)
            .max_lease(Duration::from_secs(15 * 60))
            .build()
            .is_ok()
    );
    let err = IdempotencyConfig::builder()
        .lease_margin(Duration::from_secs(61))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::LeaseMarginOutOfRange { .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------
// 21. Fingerprints that match only for the same request
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn bodies_differing_only_in_an_amount_are_different_requests() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    for (i, (first, second)) in [
        ("18446744073709551616", "18446744073709551617"),
        ("9007199254740993.0", "9007199254740992"),
        ("0.1", "0.10000000000000001"),
        ("-12345678901234567890.5", "-12345678901234567890.50001"),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("amount-{i}");
        let body = |amount: &str| format!(r#"{{"amount": {amount}, "currency": "EUR"}}"#);
        let event = |amount: &str| Event::refund().key(&key).body(&body(amount));
        let response = send(&mut service, event(first).request()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{first}");
        let response = send(&mut service, event(second).request()).await;
        problem(&response, 409, "key-reused");
        // The same value spelt another way is the same request.
        let same = send(&mut service, event(&format!("{first}e0")).request()).await;
        assert!(replayed(&same), "{first}e0");
    }
    assert_eq!(calls.count(), 4);
}

#[tokio::test]
async fn repeated_query_values_in_another_order_are_another_request() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let with_query = |key: &str, query: &str| Event::refund().key(key).raw_query(query).request();

    send(&mut service, with_query("tags", "tag=a&tag=b")).await;
    problem(
        &send(&mut service, with_query("tags", "tag=b&tag=a")).await,
        409,
        "key-reused",
    );
    send(&mut service, with_query("amounts", "amount=100&amount=5")).await;
    problem(
        &send(&mut service, with_query("amounts", "amount=5&amount=100")).await,
        409,
        "key-reused",
    );
    // Different names in another order are still the same request.
    send(&mut service, with_query("names", "a=1&b=2&a=0")).await;
    assert!(replayed(
        &send(&mut service, with_query("names", "b=2&a=1&a=0")).await
    ));
    assert_eq!(calls.count(), 3);
}

/// A record written by the first release carries a `v1` fingerprint: a retry of the
/// same request still replays it (and a different request is still a conflict), so
/// upgrading never turns a client's retry into a 409 or a second execution.
#[tokio::test]
async fn a_record_written_by_the_first_release_is_still_recognised() {
    use lambda_idempotency::fingerprint::{BodyKind, Fingerprint, FingerprintInput};

    let (clock, store) = setup();
    let calls = Calls::default();
    let mut service = layer(&clock, &store).layer(handler(&calls, |run, _: &Request| created(run)));
    let query = vec![
        ("b".to_owned(), "2".to_owned()),
        ("a".to_owned(), "1".to_owned()),
    ];
    let body = r#"{"amount": 100.50, "currency": "EUR"}"#;
    // As the first release fingerprinted this request.
    let v1 = Fingerprint::v1(&FingerprintInput {
        method: "POST",
        path: "/orders/o-1/refunds",
        query: &query,
        body: body.as_bytes(),
        body_kind: BodyKind::Json,
    });
    let stored = StoredResponse::capture(
        &Response::builder()
            .status(201)
            .body(Body::from(r#"{"refundId":"r-old"}"#))
            .unwrap(),
        |_| false,
    );
    for (key, status) in [
        ("old-done", Status::Completed),
        ("old-failed", Status::Errored),
    ] {
        store.insert_raw(Record {
            partition_key: scope(REFUND, ANONYMOUS, key).partition_key().to_owned(),
            status,
            fingerprint: v1.clone(),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms: T0 - MINUTE_MS,
            expires_at: T0 / 1000 + 3600,
            response: (status == Status::Completed).then(|| stored.encode()),
            response_omitted: None,
            created_at_ms: T0 - 2 * MINUTE_MS,
            updated_at_ms: T0 - MINUTE_MS,
            route: REFUND.into(),
            actor: ANONYMOUS.into(),
            key: key.into(),
        });
    }
    let event = |key: &str| Event::refund().key(key).raw_query("b=2&a=1").body(body);

    let replay = send(&mut service, event("old-done").request()).await;
    assert!(replayed(&replay));
    assert_eq!(text(&replay), r#"{"refundId":"r-old"}"#);
    let other = event("old-done").body(r#"{"amount": 7, "currency": "EUR"}"#);
    problem(
        &send(&mut service, other.request()).await,
        409,
        "key-reused",
    );
    assert_eq!(calls.count(), 0);

    // An ERRORED v1 record is taken over by the same request, which runs again.
    let retry = send(&mut service, event("old-failed").request()).await;
    assert_eq!(text(&retry), r#"{"refundId":"r-1"}"#);
    assert_eq!(calls.count(), 1);
    let again = send(&mut service, event("old-failed").request()).await;
    assert!(replayed(&again));
}

// ---------------------------------------------------------------------------------
// 22. CORS headers are replayed
// ---------------------------------------------------------------------------------

/// A browser retries exactly when a response was lost; without the CORS headers it
/// cannot read the replay.
#[tokio::test]
async fn cors_headers_are_replayed_so_a_browser_can_read_the_replay() {
    let (clock, store) = setup();
    let calls = Calls::default();
    let cors = [
        ("access-control-allow-origin", "https://shop.example.com"),
        ("access-control-allow-credentials", "true"),
        (
            "access-control-expose-headers",
            "idempotent-replayed, location",
        ),
    ];
    let mut service = layer(&clock, &store).layer(handler(&calls, move |run, _: &Request| {
        let mut response = created(run)?;
        for (name, value) in cors {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        Ok(response)
    }));
    let event = Event::refund()
        .key("cors")
        .header("origin", "https://shop.example.com");
    let first = send(&mut service, event.request()).await;
    let again = send(&mut service, event.request()).await;
    assert!(replayed(&again));
    for (name, value) in cors {
        assert_eq!(first.headers()[name], value);
        assert_eq!(again.headers()[name], value, "{name} replayed");
    }
    // The allow-list stays configurable: without them, they are not stored.
    let mut plain = builder(&clock, &store)
        .replay_headers([HeaderName::from_static("content-type")])
        .build()
        .unwrap()
        .layer(handler(&calls, move |run, _: &Request| {
            let mut response = created(run)?;
            response.headers_mut().insert(
                HeaderName::from_static("access-control-allow-origin"),
                HeaderValue::from_static("*"),
            );
            Ok(response)
        }));
    send(&mut plain, Event::refund().key("cors-off").request()).await;
    let again = send(&mut plain, Event::refund().key("cors-off").request()).await;
    assert!(again.headers().get("access-control-allow-origin").is_none());
}
