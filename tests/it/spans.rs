//! The tracing spans of an idempotent request, captured with a subscriber layer: one
//! per step (begin, handler, complete, fail, replay) under the request's
//! `idempotency` span, which nests under the invocation's span (where
//! `lambda_runtime` puts the X-Ray trace id), with the outcome, status and durations
//! as attributes, and never the raw actor or body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::event::EventIdempotencyLayer;
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::store::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::observability::request;

/// A closed span: its name, its parent's name, and its fields as text.
#[derive(Debug, Clone)]
struct Captured {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("span {} has no field {name}: {self:?}", self.name))
    }

    fn duration_ms(&self) -> f64 {
        self.field("duration_ms").parse().unwrap()
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Keeps every span's fields, and the span itself once it closes.
#[derive(Clone, Default)]
struct SpanCapture(Arc<Mutex<Vec<Captured>>>);

impl<S> tracing_subscriber::Layer<S> for SpanCapture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let fields = span
            .extensions()
            .get::<Fields>()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        self.0.lock().unwrap().push(Captured {
            name: span.name().to_owned(),
            parent: span.parent().map(|p| p.name().to_owned()),
            fields,
        });
    }
}

/// Runs `f` on a current-thread runtime inside a span like `lambda_runtime`'s
/// invocation span, and returns every span closed meanwhile.
fn spans_of<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> Vec<Captured> {
    crate::support::logs::ensure_capturable();
    let capture = SpanCapture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let invoke = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = "req-1",
            xrayTraceId = "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
        runtime.block_on(tracing::Instrument::instrument(f(), invoke));
    });
    capture.0.lock().unwrap().clone()
}

/// The spans called `name`, in the order they closed.
fn named<'a>(spans: &'a [Captured], name: &str) -> Vec<&'a Captured> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn a_new_key_and_its_replay_over_http_have_a_span_per_step() {
    let store = MemoryStore::new();
    let spans = spans_of(|| async {
        let layer = IdempotencyLayer::builder(store.clone())
            .service_name("orders-api")
            .route_templates(["/orders"])
            .build()
            .unwrap();
        let service = layer.layer(service_fn(|_req: Request| async {
            // The handler's own spans nest under the handler step.
            let _charge = tracing::info_span!("charge card").entered();
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from(r#"{"orderId":"o-1"}"#))
                    .unwrap(),
            )
        }));
        let body = r#"{"card":"4111-SECRET-BODY"}"#;
        service.clone().oneshot(request("k-1", body)).await.unwrap();
        service.oneshot(request("k-1", body)).await.unwrap();
    });

    let requests = named(&spans, "idempotency");
    assert_eq!(requests.len(), 2, "{spans:#?}");
    for request in &requests {
        assert_eq!(request.parent.as_deref(), Some("Lambda runtime invoke"));
        assert_eq!(request.field("idempotency_key"), "k-1");
        assert_eq!(request.field("route"), "POST /orders");
        assert_eq!(request.field("actor_hash").len(), 16);
        assert_eq!(request.field("http_status"), "201");
        assert!(request.duration_ms() >= 0.0);
    }
    let (new, replay) = (requests[0], requests[1]);
    assert_eq!(new.field("outcome"), "executed");
    assert_eq!(new.field("record_status"), "COMPLETED");
    assert_eq!(replay.field("outcome"), "replayed");

    let begins = named(&spans, "idempotency.begin");
    assert_eq!(begins.len(), 2);
    assert_eq!(begins[0].field("decision"), "run");
    assert_eq!(begins[0].field("record_status"), "PENDING");
    assert_eq!(begins[1].field("decision"), "replay");
    assert_eq!(begins[1].field("record_status"), "COMPLETED");
    for step in begins
        .iter()
        .chain(named(&spans, "idempotency.replay").iter())
    {
        assert_eq!(step.parent.as_deref(), Some("idempotency"));
        assert!(step.duration_ms() >= 0.0);
    }

    let [handler] = named(&spans, "idempotency.handler")[..] else {
        panic!("one handler span: {spans:#?}")
    };
    assert_eq!(handler.parent.as_deref(), Some("idempotency"));
    assert_eq!(handler.field("result"), "ok");
    assert!(handler.duration_ms() >= 0.0);
    let [charge] = named(&spans, "charge card")[..] else {
        panic!("the handler's span: {spans:#?}")
    };
    assert_eq!(charge.parent.as_deref(), Some("idempotency.handler"));

    let [complete] = named(&spans, "idempotency.complete")[..] else {
        panic!("one complete span: {spans:#?}")
    };
    assert_eq!(complete.parent.as_deref(), Some("idempotency"));
    assert_eq!(complete.field("completion"), "stored");
    assert_eq!(complete.field("atomic"), "false");
    assert!(complete.field("response_bytes").parse::<usize>().unwrap() > 17);

    let [replayed] = named(&spans, "idempotency.replay")[..] else {
        panic!("one replay span: {spans:#?}")
    };
    assert_eq!(replayed.field("http_status"), "201");
    assert_eq!(replayed.field("record_status"), "COMPLETED");
    assert!(replayed.field("stored_age_ms").parse::<i64>().unwrap() >= 0);

    // The body is never an attribute.
    for span in &spans {
        for value in span.fields.values() {
            assert!(!value.contains("4111"), "{span:?}");
        }
    }
}

#[test]
fn a_failing_event_handler_has_a_fail_span_and_no_raw_actor() {
    let store = MemoryStore::new();
    let spans = spans_of(|| async {
        let layer = EventIdempotencyLayer::builder(store.clone())
            .key_pointer("/paymentId")
            .name("payments")
            .service_name("payments-consumer")
            .actor_fn(|payload| payload["customer"].as_str().map(str::to_owned))
            .build()
            .unwrap();
        let service = layer.layer(lambda_runtime::service_fn(
            |e: LambdaEvent<Value>| async move {
                if e.payload["amount"] == 0 {
                    return Err::<Value, _>(lambda_runtime::Error::from("declined"));
                }
                Ok(e.payload["amount"].clone())
            },
        ));
        let event = |amount: i64| {
            LambdaEvent::new(
                json!({"paymentId": "p-1", "customer": "alice-RAW-ACTOR", "card": "4111-SECRET", "amount": amount}),
                Context::default(),
            )
        };
        assert!(service.clone().oneshot(event(0)).await.is_err());
        // The failed record lets the retry run; then a replay.
        service.clone().oneshot(event(0)).await.unwrap_err();
    });

    let [first_fail, second_fail] = named(&spans, "idempotency.fail")[..] else {
        panic!("two fail spans: {spans:#?}")
    };
    for fail in [first_fail, second_fail] {
        assert_eq!(fail.parent.as_deref(), Some("idempotency"));
        assert_eq!(fail.field("result"), "marked");
        assert!(fail.duration_ms() >= 0.0);
    }
    let handlers = named(&spans, "idempotency.handler");
    assert_eq!(handlers.len(), 2);
    assert!(handlers.iter().all(|h| h.field("result") == "error"));
    let requests = named(&spans, "idempotency");
    assert!(requests.iter().all(|r| r.field("outcome") == "errored"));
    assert!(
        requests
            .iter()
            .all(|r| !r.fields.contains_key("http_status"))
    );
    assert!(named(&spans, "idempotency.complete").is_empty());

    for span in &spans {
        for value in span.fields.values() {
            assert!(
                !value.contains("alice-RAW-ACTOR") && !value.contains("4111"),
                "{span:?}"
            );
        }
    }
}

#[test]
fn an_event_replay_has_its_span() {
    let store = MemoryStore::new();
    let spans = spans_of(|| async {
        let layer = EventIdempotencyLayer::builder(store.clone())
            .key_pointer("/paymentId")
            .name("payments")
            .build()
            .unwrap();
        let service = layer.layer(lambda_runtime::service_fn(
            |e: LambdaEvent<Value>| async move {
                Ok::<_, lambda_runtime::Error>(e.payload["amount"].clone())
            },
        ));
        let event =
            || LambdaEvent::new(json!({"paymentId": "p-2", "amount": 7}), Context::default());
        assert_eq!(service.clone().oneshot(event()).await.unwrap(), 7);
        assert_eq!(service.oneshot(event()).await.unwrap(), 7);
    });
    let [replay] = named(&spans, "idempotency.replay")[..] else {
        panic!("one replay span: {spans:#?}")
    };
    assert_eq!(replay.parent.as_deref(), Some("idempotency"));
    assert_eq!(replay.field("record_status"), "COMPLETED");
    assert_eq!(replay.field("response_bytes"), "1");
    assert!(!replay.fields.contains_key("http_status"));
    let outcomes: Vec<_> = named(&spans, "idempotency")
        .iter()
        .map(|s| s.field("outcome").to_owned())
        .collect();
    assert_eq!(outcomes, ["executed", "replayed"]);
}
