//! EMF metrics and structured logs, captured from the HTTP and event layers.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::event::EventIdempotencyLayer;
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::metrics::EmfRecorder;
use lambda_idempotency::store::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn take_lines(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

const EMF_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks a document against the EMF specification and returns its metric names.
fn check_emf(doc: &Value) -> Vec<String> {
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000,
        "{doc}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1);
    let directive = &directives[0];
    assert!(!directive["Namespace"].as_str().unwrap().is_empty());
    for set in directive["Dimensions"].as_array().unwrap() {
        let set = set.as_array().unwrap();
        assert!(set.len() <= 30);
        for dim in set {
            let name = dim.as_str().unwrap();
            assert!(
                doc[name].is_string(),
                "dimension {name} must be a string member: {doc}"
            );
        }
    }
    let mut names = Vec::new();
    for metric in directive["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        let unit = metric["Unit"].as_str().unwrap();
        assert!(EMF_UNITS.contains(&unit), "{unit}");
        let value = &doc[name];
        assert!(
            value.is_number()
                || value
                    .as_array()
                    .is_some_and(|a| a.len() <= 100 && a.iter().all(Value::is_number)),
            "{name} must be a number or up to 100 numbers: {doc}"
        );
        names.push(name.to_owned());
    }
    names
}

/// `POST /orders` with an idempotency key and a JSON body (also used by `spans.rs`).
pub(crate) fn request(key: &str, body: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// Runs `f` on a current-thread runtime with the recorder and a JSON log subscriber
/// installed for this thread; returns (EMF documents, log lines).
fn capture<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> (Vec<Value>, Vec<Value>) {
    crate::support::logs::ensure_capturable();
    let emf = Buf::default();
    let logs = Buf::default();
    let recorder = EmfRecorder::builder()
        .namespace("Test/Idempotency")
        .writer(emf.clone())
        .build();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || runtime.block_on(f()));
    });
    recorder.flush();
    (emf.take_lines(), logs.take_lines())
}

fn http_layer(store: &MemoryStore) -> IdempotencyLayer {
    IdempotencyLayer::builder(store.clone())
        .service_name("orders-api")
        .route_templates(["/orders"])
        .build()
        .unwrap()
}

async fn created(_req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(Response::builder()
        .status(201)
        .body(Body::from(r#"{"orderId":"o-1"}"#))?)
}

#[test]
fn execution_replay_and_conflict_emit_emf_and_log_lines() {
    let store = MemoryStore::new();
    let (emf, logs) = capture(|| async {
        let service = http_layer(&store).layer(service_fn(created));
        let body = r#"{"card":"4111-SECRET-BODY"}"#;
        service.clone().oneshot(request("k-1", body)).await.unwrap();
        service.clone().oneshot(request("k-1", body)).await.unwrap();
        service
            .oneshot(request("k-1", r#"{"card":"other"}"#))
            .await
            .unwrap();
    });

    // One document for the single (service, route) label set, accumulated over the
    // three requests because nothing flushed in between (no recorder was installed),
    // counted per route and, in the same document, per service.
    assert_eq!(emf.len(), 1, "{emf:?}");
    let doc = &emf[0];
    let names = check_emf(doc);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Test/Idempotency"
    );
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service", "route"], ["service"]])
    );
    assert_eq!(doc["service"], "orders-api");
    assert_eq!(doc["route"], "POST /orders");
    assert_eq!(doc["idempotency.execution.count"], 1);
    assert_eq!(doc["idempotency.replay.count"], 1);
    assert_eq!(doc["idempotency.conflict.count"], 1);
    // Not a per-request figure any more: the sweeper measures requests in flight.
    assert!(doc.get("idempotency.inflight.gauge").is_none());
    assert!(doc.get("idempotency.duplicate_in_flight.count").is_none());
    assert_eq!(
        doc["idempotency.lookup.latency"].as_array().unwrap().len(),
        3
    );
    assert!(doc["idempotency.record.size"].as_f64().unwrap() > 17.0);
    for (name, unit) in [
        ("idempotency.execution.count", "Count"),
        ("idempotency.lookup.latency", "Milliseconds"),
        ("idempotency.record.size", "Bytes"),
    ] {
        assert!(names.contains(&name.to_owned()));
        let def = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Name"] == name)
            .unwrap();
        assert_eq!(def["Unit"], unit);
    }

    let requests: Vec<&Value> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "idempotent request")
        .collect();
    let outcomes: Vec<&str> = requests
        .iter()
        .map(|l| l["fields"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["executed", "replayed", "conflict"]);
    for line in &requests {
        let f = &line["fields"];
        assert_eq!(f["idempotency_key"], "k-1");
        assert_eq!(f["route"], "POST /orders");
        assert_eq!(f["actor_hash"].as_str().unwrap().len(), 16);
        assert!(f["duration_ms"].as_f64().is_some());
        assert!(f["lookup_ms"].as_f64().is_some());
    }
    assert_eq!(requests[0]["level"], "INFO");
    assert_eq!(requests[0]["fields"]["record_status"], "COMPLETED");
    assert_eq!(requests[2]["level"], "WARN", "conflicts are always WARN");
    assert_eq!(requests[2]["fields"]["http_status"], 409);
    let all_logs = serde_json::to_string(&logs).unwrap();
    assert!(!all_logs.contains("SECRET-BODY"), "bodies are never logged");
    assert!(
        !all_logs.contains("\"anonymous\""),
        "the actor is only logged as a hash"
    );
}

#[test]
fn an_in_flight_duplicate_sets_the_gauge() {
    let store = MemoryStore::new();
    let (emf, logs) = capture(|| async {
        let release = Arc::new(tokio::sync::Notify::new());
        let r = Arc::clone(&release);
        let slow = service_fn(move |_req: Request| {
            let r = Arc::clone(&r);
            async move {
                r.notified().await;
                Ok::<_, lambda_http::Error>(Response::new(Body::from("done")))
            }
        });
        let service = http_layer(&store).layer(slow);
        let first = tokio::spawn(service.clone().oneshot(request("k-2", "{}")));
        tokio::task::yield_now().await;
        let dup = service.oneshot(request("k-2", "{}")).await.unwrap();
        assert_eq!(dup.status(), 409);
        release.notify_one();
        first.await.unwrap().unwrap();
    });
    let doc = &emf[0];
    check_emf(doc);
    // The gauge holds the last value set: the first request (0) finished after the
    // duplicate (1) here, so check the log for the in-flight answer and the gauge
    // semantics separately below.
    assert_eq!(doc["idempotency.execution.count"], 1);
    assert!(doc.get("idempotency.replay.count").is_none());
    let in_flight: Vec<&Value> = logs
        .iter()
        .filter(|l| l["fields"]["outcome"] == "in_flight")
        .collect();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(in_flight[0]["fields"]["record_status"], "PENDING");
    assert_eq!(in_flight[0]["fields"]["http_status"], 409);
}

#[test]
fn the_in_flight_gauge_is_1_on_an_in_flight_answer() {
    let store = MemoryStore::new();
    let (emf, _) = capture(|| async {
        let never = service_fn(|_req: Request| async {
            std::future::pending::<()>().await;
            Ok::<_, lambda_http::Error>(Response::new(Body::Empty))
        });
        let service = http_layer(&store).layer(never);
        let _holder = tokio::spawn(service.clone().oneshot(request("k-3", "{}")));
        tokio::task::yield_now().await;
        assert_eq!(
            service
                .oneshot(request("k-3", "{}"))
                .await
                .unwrap()
                .status(),
            409
        );
    });
    let doc = &emf[0];
    check_emf(doc);
    assert_eq!(doc["idempotency.duplicate_in_flight.count"], 1);
    assert!(doc.get("idempotency.inflight.gauge").is_none());
    assert!(doc.get("idempotency.execution.count").is_none());
}

#[test]
fn event_handlers_report_with_their_scope_name_as_route() {
    let store = MemoryStore::with_clock(ManualClock::starting_now());
    let (emf, logs) = capture(|| async {
        let layer = EventIdempotencyLayer::builder(store.clone())
            .key_pointer("/paymentId")
            .name("payments")
            .service_name("payments-consumer")
            .build()
            .unwrap();
        let service = layer.layer(lambda_runtime::service_fn(
            |e: LambdaEvent<Value>| async move {
                Ok::<_, lambda_runtime::Error>(e.payload["amount"].clone())
            },
        ));
        let event = |amount: i64| {
            LambdaEvent::new(
                json!({"paymentId": "p-1", "amount": amount}),
                Context::default(),
            )
        };
        service.clone().oneshot(event(5)).await.unwrap();
        service.clone().oneshot(event(5)).await.unwrap();
        assert!(service.oneshot(event(6)).await.is_err());
    });
    let doc = &emf[0];
    check_emf(doc);
    assert_eq!(doc["service"], "payments-consumer");
    assert_eq!(doc["route"], "payments");
    assert_eq!(doc["idempotency.execution.count"], 1);
    assert_eq!(doc["idempotency.replay.count"], 1);
    assert_eq!(doc["idempotency.conflict.count"], 1);
    let outcomes: Vec<&str> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "idempotent request")
        .map(|l| l["fields"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["executed", "replayed", "conflict"]);
}

#[test]
fn emf_documents_follow_the_dimension_sets_and_split_long_histograms() {
    let out = Buf::default();
    let recorder = EmfRecorder::builder()
        .namespace("N")
        .dimensions([vec!["service", "route"], vec!["service"]])
        .writer(out.clone())
        .build();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..250 {
            metrics::histogram!("idempotency.lookup.latency", "service" => "s", "route" => "r", "tenant" => "t").record(f64::from(i));
        }
        metrics::counter!("idempotency.replay.count", "service" => "s").increment(2);
    });
    recorder.flush();
    let docs = out.take_lines();
    // (service, route, tenant) -> 3 documents of at most 100 values; (service) -> 1.
    assert_eq!(docs.len(), 4);
    let mut values = 0;
    for doc in &docs {
        check_emf(doc);
        if doc["route"] == "r" {
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["service", "route"], ["service"]])
            );
            assert_eq!(
                doc["tenant"], "t",
                "labels outside the dimension sets are properties"
            );
            values += doc["idempotency.lookup.latency"]
                .as_array()
                .map_or(1, Vec::len);
        } else {
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["service"]])
            );
            assert_eq!(doc["idempotency.replay.count"], 2);
        }
    }
    assert_eq!(values, 250);
    recorder.flush();
    assert!(out.take_lines().is_empty(), "a flush starts over");
}

#[test]
fn random_paths_give_a_bounded_number_of_route_dimensions() {
    let store = MemoryStore::new();
    let (emf, _logs) = capture(|| async {
        let service = IdempotencyLayer::builder(store.clone())
            .service_name("orders-api")
            .route_templates(["/orders/{orderId}"])
            .build()
            .unwrap()
            .layer(service_fn(created));
        for i in 0..1_000u32 {
            // A scanner's random paths, and some that match the template.
            let path = match i % 4 {
                0 => format!("/orders/o-{i}"),
                1 => format!("/{:08x}/{i}", i.wrapping_mul(2_654_435_761)),
                2 => format!("//wp-admin//{i}.php/"),
                _ => format!("/orders/o-{i}/x/%{:02X}", i % 256),
            };
            let request = lambda_http::http::Request::builder()
                .method("POST")
                .uri(path)
                .header("idempotency-key", format!("k-{i}"))
                .body(Body::Empty)
                .unwrap();
            service.clone().oneshot(request).await.unwrap();
        }
    });
    let routes: std::collections::BTreeSet<String> = emf
        .iter()
        .map(|doc| doc["route"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        routes,
        ["(unmatched)", "POST /orders/{orderId}"]
            .map(str::to_owned)
            .into(),
        "{} documents",
        emf.len()
    );
}

use crate::faults;

/// The principal every request below is made by: it must never appear in a log line.
const SECRET_PRINCIPAL: &str = "alice-SECRET-PRINCIPAL";

/// A request by the JWT principal [`SECRET_PRINCIPAL`] (an HTTP API v2 event).
fn authorized(key: &str, body: &str) -> Request {
    let mut event = crate::support::events::json("refund.via-http-api");
    event["routeKey"] = json!("POST /orders");
    event["rawPath"] = json!("/orders");
    event["pathParameters"] = Value::Null;
    event["headers"]["idempotency-key"] = json!(key);
    let ctx = &mut event["requestContext"];
    ctx["routeKey"] = json!("POST /orders");
    ctx["http"]["path"] = json!("/orders");
    ctx["authorizer"] = json!({"jwt": {"claims": {"sub": SECRET_PRINCIPAL}, "scopes": null}});
    event["body"] = json!(body);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// Drives every path that logs at WARN or ERROR (conflict, in flight, the store down
/// before and after the handler, a lost answer, a failed fail, a lost lease, an
/// unreadable stored response, a response too large to keep, an event handler's
/// error and conflict), with the handler's own logging inside the request's span, and
/// scans every line written: the raw actor never appears, nor the partition key that
/// holds it; the key, the route and the actor's hash do.
#[test]
fn no_log_line_holds_the_raw_actor_or_the_partition_key() {
    use faults::{Fault, FaultyStore, Step};
    use lambda_idempotency::record::{LeaseToken, Record, Status};
    use lambda_idempotency::scope::Scope;
    use lambda_idempotency::store::{BeginRequest, Store};
    use std::time::Duration;

    let clock = ManualClock::starting_now();
    let memory = MemoryStore::with_clock(clock.clone());
    let store = FaultyStore::new(memory.clone());
    let (_emf, logs) = capture(|| async {
        let (thief_store, thief_clock) = (memory.clone(), clock.clone());
        let handler = service_fn(move |req: Request| {
            let (store, clock) = (thief_store.clone(), thief_clock.clone());
            async move {
                tracing::info!("the handler logs inside the request's span");
                let body = std::str::from_utf8(req.body())
                    .unwrap_or_default()
                    .to_owned();
                match body.as_str() {
                    r#"{"fail":true}"# => return Err("payment provider timed out".into()),
                    r#"{"big":true}"# => {
                        let noise: String = (0..2_500_000u32)
                            .map(|i| {
                                char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26)
                            })
                            .collect();
                        return Ok(Response::builder().status(201).body(Body::from(noise))?);
                    }
                    r#"{"steal":true}"# => {
                        // Another instance takes the key over once the lease lapsed.
                        clock.advance(Duration::from_secs(20 * 60));
                        let key = req.headers()["idempotency-key"].to_str()?;
                        let scope = Scope::new(
                            "POST /orders",
                            format!("jwt:{SECRET_PRINCIPAL}"),
                            lambda_idempotency::key::IdempotencyKey::parse(key)?,
                        );
                        store
                            .begin(&BeginRequest {
                                scope,
                                fingerprint: lambda_idempotency::__internals::fingerprint_of(&req),
                                lease: Duration::from_secs(60),
                                expiry: Duration::from_secs(3600),
                            })
                            .await?;
                    }
                    _ => {}
                }
                Ok::<_, lambda_http::Error>(Response::builder().status(201).body(Body::from("ok"))?)
            }
        });
        let service = IdempotencyLayer::builder(store.clone())
            .clock(clock.clone())
            .build()
            .unwrap()
            .layer(handler);
        let send = |key: &str, body: &str| service.clone().oneshot(authorized(key, body));

        send("k-ok", "{}").await.unwrap();
        send("k-ok", "{}").await.unwrap(); // replay
        send("k-ok", r#"{"other":1}"#).await.unwrap(); // conflict
        store.inject(Step::Begin, Fault::Unavailable, 1);
        assert_eq!(send("k-down", "{}").await.unwrap().status(), 503);
        store.inject(Step::Complete, Fault::Unavailable, 2);
        send("k-retried", "{}").await.unwrap();
        store.inject(Step::Complete, Fault::AnswerLost, 1);
        send("k-lost-answer", "{}").await.unwrap();
        store.inject(Step::Fail, Fault::Unavailable, 1);
        assert!(send("k-fail-down", r#"{"fail":true}"#).await.is_err());
        send("k-stolen", r#"{"steal":true}"#).await.unwrap(); // lease lost
        send("k-big", r#"{"big":true}"#).await.unwrap(); // too large to keep
        send("k-big", r#"{"big":true}"#).await.unwrap(); // its replay
        // A stored response this version cannot read.
        let scope = Scope::new(
            "POST /orders",
            format!("jwt:{SECRET_PRINCIPAL}"),
            lambda_idempotency::key::IdempotencyKey::parse("k-corrupt").unwrap(),
        );
        let request = authorized("k-corrupt", "{}");
        memory.insert_raw(Record {
            partition_key: scope.partition_key().to_owned(),
            status: Status::Completed,
            fingerprint: lambda_idempotency::__internals::fingerprint_of(&request),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms: 0,
            expires_at: lambda_idempotency::clock::Clock::now_secs(&clock) + 3600,
            response: Some(b"not a stored response".to_vec()),
            response_omitted: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            route: "POST /orders".into(),
            actor: format!("jwt:{SECRET_PRINCIPAL}"),
            key: "k-corrupt".into(),
        });
        assert_eq!(
            service.clone().oneshot(request).await.unwrap().status(),
            500
        );

        // The event layer, with an actor taken from the payload.
        let events = EventIdempotencyLayer::builder(memory.clone())
            .key_pointer("/paymentId")
            .payload_pointers(["/paymentId", "/amount"])
            .actor_fn(|payload: &Value| payload["tenant"].as_str().map(str::to_owned))
            .clock(clock.clone())
            .build()
            .unwrap()
            .layer(lambda_runtime::service_fn(
                |e: LambdaEvent<Value>| async move {
                    if e.payload["fail"] == true {
                        return Err(lambda_runtime::Error::from("declined"));
                    }
                    Ok(e.payload["amount"].clone())
                },
            ));
        let event = |amount: i64, fail: bool| {
            LambdaEvent::new(
                json!({"paymentId": "p-1", "tenant": SECRET_PRINCIPAL, "amount": amount, "fail": fail}),
                Context::default(),
            )
        };
        events.clone().oneshot(event(1, true)).await.unwrap_err();
        events.clone().oneshot(event(1, false)).await.unwrap();
        events.clone().oneshot(event(2, false)).await.unwrap_err(); // conflict
    });

    let warnings = logs
        .iter()
        .filter(|l| matches!(l["level"].as_str(), Some("WARN" | "ERROR")))
        .count();
    assert!(warnings >= 10, "{warnings} WARN/ERROR lines: {logs:#?}");
    for line in &logs {
        let text = line.to_string();
        assert!(
            !text.contains("SECRET-PRINCIPAL"),
            "the raw actor is logged: {text}"
        );
        assert!(
            !text.contains("k1|") && !text.contains("h1|"),
            "a partition key is logged: {text}"
        );
    }
    // The handler's line carries the request's context through the spans: its
    // current span is the handler step, inside the request's `idempotency` span.
    let handler_line = logs
        .iter()
        .find(|l| l["fields"]["message"] == "the handler logs inside the request's span")
        .expect("the handler's line");
    assert_eq!(handler_line["span"]["name"], "idempotency.handler");
    let request = handler_line["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "idempotency")
        .expect("the request's span in the line's span list");
    assert_eq!(request["idempotency_key"], "k-ok");
    assert_eq!(request["route"], "POST /orders");
    assert_eq!(request["actor_hash"].as_str().map(str::len), Some(16));
}

/// Every conflict (a key reused with another request) writes its WARN line, whatever
/// the entry point: the HTTP layer, the event layer, an idempotent function and a
/// batch record. The seed's rule: conflicts are 100 % logged.
#[test]
fn every_conflict_writes_one_warn_line_through_every_entry_point() {
    use lambda_idempotency::batch::BatchProcessor;
    use lambda_idempotency::batch::aws_lambda_events::event::sqs::SqsEvent;
    use lambda_idempotency::function::IdempotentFunction;

    const ROUNDS: usize = 3;
    let (_, logs) = capture(|| async {
        let store = MemoryStore::new();
        let http = http_layer(&store).layer(service_fn(created));
        let event = EventIdempotencyLayer::builder(store.clone())
            .name("charge")
            .key_pointer("/paymentId")
            .build()
            .unwrap()
            .layer(tower::service_fn(|e: LambdaEvent<Value>| async move {
                Ok::<_, lambda_runtime::Error>(e.payload)
            }));
        let function = IdempotentFunction::builder("reserve", store.clone())
            .key_pointer("/order")
            .build()
            .unwrap();
        let batch = BatchProcessor::sqs(store.clone())
            .name("ledger")
            .key_pointer("/body|json/paymentId")
            .payload_pointers(["/body|json"])
            .build()
            .unwrap();
        let sqs = |amount: u32| -> SqsEvent {
            serde_json::from_value(json!({"Records": [{
                "messageId": format!("m-{amount}"),
                "body": json!({"paymentId": "p-batch", "amount": amount}).to_string(),
            }]}))
            .unwrap()
        };
        let apply = |_m| async { Ok::<_, String>(()) };
        // The first of each completes; every later one reuses its key with another
        // request: a conflict.
        for round in 0..=ROUNDS {
            let body = format!(r#"{{"sku":"A{round}"}}"#);
            let answer = http
                .clone()
                .oneshot(request("conflict-1", &body))
                .await
                .unwrap();
            assert_eq!(answer.status(), if round == 0 { 201 } else { 409 });
            let payload = json!({"paymentId": "p-event", "amount": round});
            let answer = event
                .clone()
                .oneshot(LambdaEvent::new(payload, Context::default()))
                .await;
            assert_eq!(answer.is_ok(), round == 0);
            let input = json!({"order": "o-1", "quantity": round});
            let answer: Result<u32, _> =
                function.call(&input, || async { Ok::<_, String>(1) }).await;
            assert_eq!(answer.is_ok(), round == 0);
            let response = batch
                .process(
                    LambdaEvent::new(sqs(round as u32), Context::default()),
                    apply,
                )
                .await;
            assert_eq!(response.batch_item_failures.is_empty(), round == 0);
        }
    });
    let conflicts: Vec<&Value> = logs
        .iter()
        .filter(|l| l["fields"]["outcome"] == "conflict")
        .collect();
    assert_eq!(conflicts.len(), 4 * ROUNDS, "{logs:#?}");
    for line in &conflicts {
        assert_eq!(line["level"], "WARN", "{line}");
    }
    let mut routes: Vec<&str> = conflicts
        .iter()
        .map(|l| l["fields"]["route"].as_str().unwrap())
        .collect();
    routes.sort_unstable();
    routes.dedup();
    assert_eq!(routes, ["POST /orders", "charge", "ledger", "reserve"]);
}
