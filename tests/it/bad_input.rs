//! Malformed keys, headers and bodies sent through the HTTP layer.
//!
//! One table of named cases ([`corpus`]) runs twice: over the in-memory store and
//! over DynamoDB Local through `DynamoDbStore` (needs `AWS_ENDPOINT_URL_DYNAMODB`:
//! `scripts/with-dynamodb-local.sh cargo test --test it bad_input::`). Every case must be
//! answered with a 4xx `application/problem+json` carrying the crate's problem
//! fields, without a panic, without running the handler, and without storing
//! anything (and, on DynamoDB, without a single call to the table).

use crate::support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::events;
use aws_sdk_dynamodb::types::Select;
use futures::FutureExt;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use lambda_idempotency::http::{
    DEFAULT_MAX_BODY_BYTES, IdempotencyLayer, IdempotencyLayerBuilder, PROBLEM_JSON, ProblemKind,
};
use lambda_idempotency::store::MemoryStore;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt};

/// The key of every case that is about the body (it is valid, so the body decides).
const BODY_KEY: &str = "8e03978e-40d5-43e8-bc93-6894a57f9324";
/// 6 MiB, larger than the default maximum of 6 MB.
const SIX_MIB: usize = 6 * 1024 * 1024;
const VALID_JSON: &str = r#"{"sku":"A1","qty":1}"#;

// ---------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------

/// One malformed request and the refusal it must get.
struct Case {
    name: String,
    request: Request,
    status: StatusCode,
    kind: ProblemKind,
}

impl Case {
    fn new(name: impl Into<String>, request: Request, status: u16, kind: ProblemKind) -> Self {
        Self {
            name: name.into(),
            request,
            status: StatusCode::from_u16(status).expect("a status code"),
            kind,
        }
    }
}

/// `POST /orders` with the given key header bytes (none for `None`), content type
/// and body.
fn post(key: Option<&[u8]>, content_type: Option<&str>, body: Body) -> Request {
    let mut request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .body(body)
        .expect("a request");
    if let Some(key) = key {
        request.headers_mut().insert(
            "idempotency-key",
            HeaderValue::from_bytes(key).expect("bytes an HTTP header value may hold"),
        );
    }
    if let Some(content_type) = content_type {
        request.headers_mut().insert(
            "content-type",
            HeaderValue::from_str(content_type).expect("a content type"),
        );
    }
    request
}

/// A request whose key header is `key` and whose JSON body is fine.
fn with_key(key: &[u8]) -> Request {
    post(Some(key), Some("application/json"), Body::from(VALID_JSON))
}

/// A request with a valid key whose body is `body`, declared as `content_type`.
fn with_body(content_type: Option<&str>, body: Body) -> Request {
    post(Some(BODY_KEY.as_bytes()), content_type, body)
}

/// `POST /orders` through an HTTP API (v2), from `events/`, with these headers and
/// body.
fn http_api_event(headers: Value, body: &str, base64: bool) -> Request {
    let mut event = events::json("refund.via-http-api");
    event["routeKey"] = json!("POST /orders");
    event["rawPath"] = json!("/orders");
    event["requestContext"]["routeKey"] = json!("POST /orders");
    event["requestContext"]["http"]["path"] = json!("/orders");
    event["pathParameters"] = Value::Null;
    event["headers"] = headers;
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event")
}

/// `POST /orders` through a REST API (v1), from `events/`, with these header maps.
fn rest_event(headers: Value, multi_value_headers: Value) -> Request {
    let mut event = events::json("refund.via-rest-api");
    event["resource"] = json!("/orders");
    event["path"] = json!("/orders");
    event["pathParameters"] = Value::Null;
    event["requestContext"]["path"] = json!("/prod/orders");
    event["requestContext"]["resourcePath"] = json!("/orders");
    event["headers"] = headers;
    event["multiValueHeaders"] = multi_value_headers;
    event["body"] = json!(VALID_JSON);
    lambda_http::request::from_str(&event.to_string()).expect("a valid REST API event")
}

/// `POST /orders` through an ALB with multi-value headers on, from `events/`.
fn alb_multi_value_event(multi_value_headers: Value) -> Request {
    let mut event = events::json("refund.via-alb-two-keys");
    event["path"] = json!("/orders");
    event["multiValueHeaders"] = multi_value_headers;
    event["body"] = json!(VALID_JSON);
    lambda_http::request::from_str(&event.to_string()).expect("a valid ALB event")
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every malformed input, each named; built afresh for each store.
fn corpus() -> Vec<Case> {
    use ProblemKind::{BodyTooLarge, InvalidJsonBody, MalformedKey, MissingKey};
    let mut cases = Vec::new();

    // Keys that are empty, too long, or hold a character outside [A-Za-z0-9_-].
    let uuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let text_keys: Vec<(&str, String)> = vec![
        ("empty key", String::new()),
        ("whitespace-only key", " ".into()),
        ("256-character key", "k".repeat(256)),
        ("1000-character key", "a".repeat(1000)),
        ("255 valid characters and a '#'", "a".repeat(255) + "#"),
        ("UUIDs repeated past 255 characters", [uuid; 8].join("")),
        ("tab inside the key (control character)", "ab\tcd".into()),
        ("leading tab (control character)", "\tabcd".into()),
        ("trailing space", "abcd ".into()),
        ("Cyrillic key", "ключ".into()),
        ("accented Latin key", "café".into()),
        ("emoji in the key", "order-🔑".into()),
        ("U+2028 line separator", "a\u{2028}b".into()),
        ("zero-width space", "a\u{200b}b".into()),
        ("fullwidth digits", "１２３".into()),
        ("non-ASCII look-alike hyphen", "order\u{2010}1".into()),
        ("separator '#'", "order#1".into()),
        ("separator '|'", "order|1".into()),
        ("separator ':'", "order:1".into()),
        ("separator '/'", "orders/1".into()),
        ("separator '%'", "order%1".into()),
        ("URL-encoded '#' (%23)", "order%231".into()),
        ("URL-encoded '|' (%7C)", "order%7C1".into()),
        ("URL-encoded ':' (%3A)", "order%3A1".into()),
        ("URL-encoded '/' (%2F)", "orders%2F1".into()),
        ("URL-encoded newline (%0A)", "order%0A1".into()),
        ("URL-encoded CRLF (%0D%0A)", "order%0D%0A1".into()),
        ("escaped newline (backslash n)", r"order\n1".into()),
        (
            "a whole partition key as the key",
            "k1|12:POST /orders|9:anonymous|k".into(),
        ),
        ("comma-joined keys", "key-one,key-two".into()),
        ("semicolon", "key;one".into()),
        ("'='", "key=one".into()),
        ("'.'", "key.one".into()),
        ("'+'", "key+one".into()),
        ("'*' wildcard", "key*".into()),
        ("path traversal", "../key".into()),
        ("'?'", "key?one".into()),
        ("'&'", "key&one".into()),
        ("'@'", "key@one".into()),
        ("braced UUID", format!("{{{uuid}}}")),
        ("URN UUID", format!("urn:uuid:{uuid}")),
        // A quoted key is the IETF draft's own form and is accepted; these are not.
        ("unterminated quoted key", "\"key-1".into()),
        ("quoted key with a parameter", "\"key-1\";a=1".into()),
        ("quoted key with an escape", "\"key\\\"1\"".into()),
        ("quoted key then text", "\"key-1\"x".into()),
        ("empty quoted key", "\"\"".into()),
        ("angle brackets", "<key>".into()),
        ("'$default'", "$default".into()),
        ("backslash", r"key\one".into()),
    ];
    for (name, key) in text_keys {
        cases.push(Case::new(
            format!("key: {name}"),
            with_key(key.as_bytes()),
            400,
            MalformedKey,
        ));
    }

    // Keys that are not UTF-8.
    let byte_keys: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8 byte 0xff", b"ab\xffcd".to_vec()),
        ("lone continuation byte", b"\x80abc".to_vec()),
        ("truncated two-byte sequence", b"ab\xc3".to_vec()),
        ("overlong encoding of '/'", b"a\xc0\xafb".to_vec()),
        ("UTF-8-encoded surrogate", b"a\xed\xa0\x80b".to_vec()),
        ("Latin-1 e-acute", b"caf\xe9".to_vec()),
        ("five-byte sequence", b"\xf8\x88\x80\x80\x80".to_vec()),
        ("300 bytes of 0xff", vec![0xff; 300]),
    ];
    for (name, key) in byte_keys {
        cases.push(Case::new(
            format!("key bytes: {name}"),
            with_key(&key),
            400,
            MalformedKey,
        ));
    }

    // Missing and repeated key headers.
    cases.push(Case::new(
        "header: no Idempotency-Key",
        post(None, Some("application/json"), Body::from(VALID_JSON)),
        400,
        MissingKey,
    ));
    let mut append = |name: &str, first: &'static str, second: &'static str| {
        let mut request = with_key(first.as_bytes());
        request
            .headers_mut()
            .append("Idempotency-Key", HeaderValue::from_static(second));
        cases.push(Case::new(
            format!("header: {name}"),
            request,
            400,
            MalformedKey,
        ));
    };
    append("two different keys", "key-one", "key-two");
    append("the same key twice", "key-one", "key-one");
    append("a valid key and an empty one", "key-one", "");
    cases.push(Case::new(
        "header: REST v1 multiValueHeaders with two keys",
        rest_event(
            json!({ "Content-Type": "application/json" }),
            json!({
                "Content-Type": ["application/json"],
                "Idempotency-Key": ["key-one", "key-two"]
            }),
        ),
        400,
        MalformedKey,
    ));
    cases.push(Case::new(
        "header: ALB multiValueHeaders with two keys",
        alb_multi_value_event(json!({
            "content-type": ["application/json"],
            "idempotency-key": ["key-one", "key-two"]
        })),
        400,
        MalformedKey,
    ));
    cases.push(Case::new(
        "header: HTTP API v2 joins two keys with a comma",
        http_api_event(
            json!({ "content-type": "application/json", "idempotency-key": "key-one,key-two" }),
            VALID_JSON,
            false,
        ),
        400,
        MalformedKey,
    ));
    cases.push(Case::new(
        "header: HTTP API v2 key with a separator",
        http_api_event(
            json!({ "content-type": "application/json", "idempotency-key": "k|anonymous" }),
            VALID_JSON,
            false,
        ),
        400,
        MalformedKey,
    ));

    // Bodies declared JSON that are not JSON.
    let text_bodies: Vec<(&str, String)> = vec![
        ("unterminated object", r#"{"sku":"A1""#.into()),
        ("trailing comma in an object", r#"{"sku":"A1",}"#.into()),
        ("trailing comma in an array", "[1,]".into()),
        ("trailing garbage", r#"{"sku":"A1"} x"#.into()),
        ("two documents", "{} {}".into()),
        ("single quotes", "{'sku':'A1'}".into()),
        ("unquoted member name", "{sku:1}".into()),
        ("NaN", "NaN".into()),
        ("leading zero", "01".into()),
        ("exponent out of range", "1e1000000000".into()),
        ("lone surrogate escape", r#""\ud800""#.into()),
        ("duplicate member name", r#"{"qty":1,"qty":2}"#.into()),
        (
            "duplicate member name after unescaping",
            r#"{"a":1,"\u0061":2}"#.into(),
        ),
        ("byte order mark", "\u{feff}{}".into()),
        (
            "raw control character in a string",
            "{\"a\":\"\u{1}\"}".into(),
        ),
        ("whitespace only", "   ".into()),
        ("invalid escape", r#"["\x41"]"#.into()),
        ("form-encoded text", "sku=A1&qty=1".into()),
        (
            "10,000 nested arrays",
            "[".repeat(10_000) + &"]".repeat(10_000),
        ),
        (
            "10,000 nested objects",
            r#"{"a":"#.repeat(10_000) + "1" + &"}".repeat(10_000),
        ),
        (
            "128 nested arrays (one past the limit)",
            "[".repeat(128) + &"]".repeat(128),
        ),
        ("10,000 unclosed arrays", "[".repeat(10_000)),
    ];
    for (name, body) in text_bodies {
        cases.push(Case::new(
            format!("body: {name}"),
            with_body(Some("application/json"), Body::from(body)),
            400,
            InvalidJsonBody,
        ));
    }
    let byte_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8 in a string", b"{\"sku\":\"\xff\"}".to_vec()),
        ("UTF-16LE JSON", b"{\0}\0".to_vec()),
        ("UTF-16 byte order mark", b"\xff\xfe{\0}\0".to_vec()),
        ("Latin-1 string", b"{\"name\":\"caf\xe9\"}".to_vec()),
        ("overlong UTF-8 quote", b"{\"a\":\"\xc0\xa2\"}".to_vec()),
    ];
    for (name, body) in byte_bodies {
        cases.push(Case::new(
            format!("body bytes: {name}"),
            with_body(Some("application/json"), Body::Binary(body)),
            400,
            InvalidJsonBody,
        ));
    }
    for content_type in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.api+json",
        "application/merge-patch+json",
    ] {
        cases.push(Case::new(
            format!("body: invalid JSON declared {content_type:?}"),
            with_body(Some(content_type), Body::from(r#"{"sku":"A1""#)),
            400,
            InvalidJsonBody,
        ));
    }
    cases.push(Case::new(
        "body: HTTP API v2 event with invalid JSON",
        http_api_event(
            json!({ "content-type": "application/json", "idempotency-key": BODY_KEY }),
            r#"{"sku": "A1", }"#,
            false,
        ),
        400,
        InvalidJsonBody,
    ));
    cases.push(Case::new(
        "body: HTTP API v2 event, base64 body that is not UTF-8",
        http_api_event(
            json!({ "content-type": "application/json", "idempotency-key": BODY_KEY }),
            &base64(b"{\"sku\":\"\xfe\xff\"}"),
            true,
        ),
        400,
        InvalidJsonBody,
    ));

    // Bodies over the 6 MB default.
    let big_json = format!("\"{}\"", "a".repeat(SIX_MIB - 2));
    assert_eq!(big_json.len(), SIX_MIB);
    let sizes: Vec<(&str, Option<&str>, Body)> = vec![
        (
            "6 MiB of valid JSON",
            Some("application/json"),
            Body::from(big_json),
        ),
        (
            "6 MiB of invalid JSON",
            Some("application/json"),
            Body::from("[".repeat(SIX_MIB)),
        ),
        (
            "6 MiB binary",
            Some("application/octet-stream"),
            Body::Binary(vec![0xAB; SIX_MIB]),
        ),
        (
            "6 MiB without a content type",
            None,
            Body::Binary(vec![b' '; SIX_MIB]),
        ),
        (
            "one byte over 6 MB",
            Some("text/plain"),
            Body::from("x".repeat(DEFAULT_MAX_BODY_BYTES + 1)),
        ),
    ];
    for (name, content_type, body) in sizes {
        cases.push(Case::new(
            format!("size: {name}"),
            with_body(content_type, body),
            413,
            BodyTooLarge,
        ));
    }
    cases
}

// ---------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------

/// How many times the handler ran.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

type Handled = Result<Response<Body>, lambda_http::Error>;

fn counting_handler(
    calls: &Calls,
) -> impl Service<
    Request,
    Response = Response<Body>,
    Error = lambda_http::Error,
    Future = Pin<Box<dyn Future<Output = Handled> + Send>>,
> + Clone
+ Send
+ 'static {
    let calls = calls.clone();
    tower::service_fn(move |_request: Request| {
        calls.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            Ok(Response::builder()
                .status(201)
                .body(Body::from("created"))?)
        }) as Pin<Box<dyn Future<Output = Handled> + Send>>
    })
}

/// Where records would land, and how to count them.
enum Backend {
    Memory(MemoryStore),
    /// A real redis-server; records are counted by the store's key prefix.
    Redis(lambda_idempotency::store::redis::RedisStore),
    Dynamo {
        store: DynamoDbStore,
        calls: support::CallCounter,
    },
}

impl Backend {
    /// Another handle on the same Redis store (the corpus consumes its backend).
    fn clone_redis(&self) -> Self {
        match self {
            Self::Redis(store) => Self::Redis(store.clone()),
            _ => unreachable!("a Redis backend"),
        }
    }

    fn builder(&self) -> IdempotencyLayerBuilder {
        match self {
            Self::Memory(store) => IdempotencyLayer::builder(store.clone()),
            Self::Redis(store) => IdempotencyLayer::builder(store.clone()),
            Self::Dynamo { store, .. } => IdempotencyLayer::builder(store.clone()),
        }
    }

    /// Operations sent to DynamoDB since the last look (not counted for the memory
    /// and Redis stores, whose refusals are checked by what they hold).
    fn store_calls(&self) -> Vec<&'static str> {
        match self {
            Self::Memory(_) | Self::Redis(_) => Vec::new(),
            Self::Dynamo { calls, .. } => calls.take(),
        }
    }

    /// How many records the store holds.
    async fn records(&self) -> usize {
        match self {
            Self::Memory(store) => store.len(),
            Self::Redis(store) => {
                let mut conn = redis::Client::open(support::redis_url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("*}}{}*", store.prefix()))
                    .query_async(&mut conn)
                    .await
                    .expect("KEYS on the test server");
                keys.len()
            }
            Self::Dynamo { store, calls } => {
                let out = store
                    .client()
                    .scan()
                    .table_name(store.table_name())
                    .select(Select::Count)
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("a scan of the test table");
                // The scan is the test's own call, not the layer's.
                calls.take();
                usize::try_from(out.count()).expect("a count")
            }
        }
    }
}

async fn dynamo_backend() -> Backend {
    let (client, calls) = support::counting_client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    calls.take();
    Backend::Dynamo {
        store: DynamoDbStore::new(client, table),
        calls,
    }
}

/// Checks one refusal; panics with the case's name.
fn assert_refused(
    case: &str,
    response: &Response<Body>,
    status: StatusCode,
    kind: ProblemKind,
    key: Option<&str>,
) {
    let text = String::from_utf8_lossy(response.body());
    assert_eq!(response.status(), status, "{case}: {text}");
    assert!(response.status().is_client_error(), "{case}");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(HeaderValue::as_bytes),
        Some(PROBLEM_JSON.as_bytes()),
        "{case}"
    );
    assert!(
        response.headers().get("idempotent-replayed").is_none(),
        "{case}"
    );
    assert!(response.headers().get("retry-after").is_none(), "{case}");
    let json: Value = serde_json::from_slice(response.body())
        .unwrap_or_else(|e| panic!("{case}: the problem is not JSON ({e}): {text}"));
    assert_eq!(json["type"], kind.type_uri(), "{case}");
    assert_eq!(json["title"], kind.title(), "{case}");
    assert_eq!(json["status"], status.as_u16(), "{case}");
    let detail = json["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "{case}: no detail in {json}");
    // Details explain; they never quote a body back (the 6 MiB ones included).
    assert!(detail.len() < 400, "{case}: detail too long: {detail}");
    // A refused key is not echoed back; a valid one is.
    match key {
        None => assert!(json.get("idempotencyKey").is_none(), "{case}: {json}"),
        Some(key) => assert_eq!(json["idempotencyKey"], key, "{case}"),
    }
    let members: Vec<&str> = json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert!(
        members
            .iter()
            .all(|m| ["type", "title", "status", "detail", "idempotencyKey"].contains(m)),
        "{case}: unexpected members in {json}"
    );
}

/// Sends every case through a default layer over `backend`.
async fn refuse_every_case(backend: Backend) {
    let calls = Calls::default();
    let layer = backend.builder().build().expect("a valid layer");
    let service = layer.layer(counting_handler(&calls));
    let cases = corpus();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    assert_eq!(backend.records().await, 0, "the table starts empty");

    for Case {
        name,
        request,
        status,
        kind,
    } in cases
    {
        let outcome = AssertUnwindSafe(service.clone().oneshot(request))
            .catch_unwind()
            .await;
        let response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => panic!("{name}: the layer answered with an error: {e}"),
            Err(_) => panic!("{name}: the layer panicked"),
        };
        let key = match kind {
            ProblemKind::MissingKey | ProblemKind::MalformedKey => None,
            _ => Some(BODY_KEY),
        };
        assert_refused(&name, &response, status, kind, key);
        assert_eq!(calls.0.load(Ordering::SeqCst), 0, "{name}: the handler ran");
        assert_eq!(
            backend.store_calls(),
            Vec::<&str>::new(),
            "{name}: the store was called"
        );
        assert_eq!(backend.records().await, 0, "{name}: something was stored");
    }
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn the_corpus_has_at_least_50_uniquely_named_cases() {
    let cases = corpus();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "case names must be unique");
    println!("bad_input corpus: {} cases", cases.len());
}

#[tokio::test]
async fn every_malformed_input_is_refused_over_the_memory_store() {
    refuse_every_case(Backend::Memory(MemoryStore::new())).await;
}

#[tokio::test]
async fn every_malformed_input_is_refused_over_dynamodb_local() {
    refuse_every_case(dynamo_backend().await).await;
}

#[tokio::test]
async fn every_malformed_input_is_refused_over_redis() {
    let store = support::redis_store(lambda_idempotency::clock::SystemClock).await;
    let backend = Backend::Redis(store);
    refuse_every_case(backend.clone_redis()).await;
    // The count by key prefix does see what the layer stores.
    let service = backend
        .builder()
        .build()
        .unwrap()
        .layer(counting_handler(&Calls::default()));
    let request = http_api_event(
        json!({ "content-type": "application/json", "idempotency-key": BODY_KEY }),
        r#"{"sku":"A1"}"#,
        false,
    );
    let accepted = service.oneshot(request).await.unwrap();
    assert!(accepted.status().is_success(), "{}", accepted.status());
    assert_eq!(backend.records().await, 1);
}

/// The refusals stop exactly at their limits: the accepted neighbours of the
/// corpus still run the handler once and are stored.
#[tokio::test]
async fn inputs_just_inside_the_limits_are_accepted() {
    let store = MemoryStore::new();
    let calls = Calls::default();
    let service = IdempotencyLayer::builder(store.clone())
        .build()
        .unwrap()
        .layer(counting_handler(&calls));
    let nested_127 = "[".repeat(127) + &"]".repeat(127);
    let cases: Vec<(&str, Request)> = vec![
        ("a 255-character key", with_key("k".repeat(255).as_bytes())),
        (
            "an upper-case UUID key",
            with_key(b"3F2504E0-4F89-41D3-9A0C-0305E82C3301"),
        ),
        (
            "a body of exactly 6,000,000 bytes",
            post(
                Some(b"exactly-6mb"),
                Some("text/plain"),
                Body::from("x".repeat(DEFAULT_MAX_BODY_BYTES)),
            ),
        ),
        (
            "JSON nested 127 deep (the deepest accepted)",
            post(
                Some(b"nested-127"),
                Some("application/json"),
                Body::from(nested_127),
            ),
        ),
        (
            "an empty body declared JSON",
            post(Some(b"empty-json"), Some("application/json"), Body::Empty),
        ),
        (
            "invalid JSON without a content type (opaque bytes)",
            post(Some(b"untyped"), None, Body::from(r#"{"sku":"#)),
        ),
        (
            "invalid JSON declared text/plain",
            post(Some(b"plain"), Some("text/plain"), Body::from(r#"{"sku":"#)),
        ),
        (
            "invalid UTF-8 declared application/octet-stream",
            post(
                Some(b"octets"),
                Some("application/octet-stream"),
                Body::Binary(vec![0xff, 0xfe, 0x00]),
            ),
        ),
    ];
    let count = cases.len();
    for (i, (name, request)) in cases.into_iter().enumerate() {
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 201, "{name}");
        assert_eq!(calls.0.load(Ordering::SeqCst), i + 1, "{name}");
        assert_eq!(store.len(), i + 1, "{name}");
    }
    assert_eq!(store.len(), count);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let store = MemoryStore::new();
    let calls = Calls::default();
    let service = IdempotencyLayer::builder(store.clone())
        .max_body_bytes(1024)
        .build()
        .unwrap()
        .layer(counting_handler(&calls));

    let at_limit = post(Some(b"at-limit"), None, Body::Binary(vec![7; 1024]));
    assert_eq!(
        service.clone().oneshot(at_limit).await.unwrap().status(),
        201
    );

    let over = post(Some(b"over-limit"), None, Body::Binary(vec![7; 1025]));
    let response = service.clone().oneshot(over).await.unwrap();
    assert_refused(
        "1025 bytes over a 1024-byte limit",
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        ProblemKind::BodyTooLarge,
        Some("over-limit"),
    );
    // The detail names both sizes, so a client knows what to send instead.
    let json: Value = serde_json::from_slice(response.body()).unwrap();
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.contains("1025") && detail.contains("1024"),
        "{detail}"
    );
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    assert_eq!(store.len(), 1);
}

/// A known limit, kept visible: API Gateway REST sends a repeated header in both
/// maps, `headers` holding only the last value, and lambda_http lets `headers` win,
/// so the layer sees one key (the last). The README lists this under "Known limits".
#[tokio::test]
async fn a_rest_v1_event_with_both_header_maps_keeps_only_the_last_key() {
    let request = rest_event(
        json!({ "Content-Type": "application/json", "Idempotency-Key": "key-two" }),
        json!({
            "Content-Type": ["application/json"],
            "Idempotency-Key": ["key-one", "key-two"]
        }),
    );
    let keys: Vec<_> = request
        .headers()
        .get_all("idempotency-key")
        .iter()
        .collect();
    assert_eq!(keys, ["key-two"]);
}
