//! The generic (lambda_runtime) layer on the in-memory store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::config::{ConfigError, IdempotencyConfig};
use lambda_idempotency::event::{
    EventIdempotencyLayer, EventIdempotencyLayerBuilder, IdempotencyError,
};
use lambda_idempotency::http::MissingKey;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::{MemoryStore, Store};
use lambda_runtime::{Context, Diagnostic, Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt};

const T0: i64 = 1_700_000_000_000;

fn setup() -> (ManualClock, MemoryStore) {
    let clock = ManualClock::new(T0);
    (clock.clone(), MemoryStore::with_clock(clock))
}

fn builder(clock: &ManualClock, store: &MemoryStore) -> EventIdempotencyLayerBuilder {
    EventIdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .name("payments")
        .key_pointer("/paymentId")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn event_with_deadline(payload: Value, deadline_ms: i64) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.deadline = deadline_ms as u64;
    LambdaEvent::new(payload, context)
}

/// A handler that counts its runs and answers `{"run": n, "amount": ...}`.
fn counting(
    runs: &Arc<AtomicUsize>,
) -> impl Service<LambdaEvent<Value>, Response = Value, Error = Error, Future: Send>
+ Clone
+ Send
+ 'static {
    let runs = Arc::clone(runs);
    service_fn(move |e: LambdaEvent<Value>| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, Error>(json!({"run": run, "amount": e.payload["amount"]})) }
    })
}

fn pk(key: &str) -> String {
    Scope::new(
        "payments",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

#[tokio::test]
async fn same_event_twice_runs_once_and_replays_the_output() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .build()
        .unwrap()
        .layer(counting(&runs));
    let payload = json!({"paymentId": "p-1", "amount": 250});
    let first = service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap();
    let again = service.oneshot(event(payload)).await.unwrap();
    assert_eq!(first, json!({"run": 1, "amount": 250}));
    assert_eq!(again, first);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let record = store.get(&pk("p-1")).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(
        record.response.as_deref(),
        Some(&br#"{"amount":250,"run":1}"#[..])
    );
}

#[tokio::test]
async fn a_different_payload_under_the_same_key_is_a_mismatch() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .build()
        .unwrap()
        .layer(counting(&runs));
    service
        .clone()
        .oneshot(event(json!({"paymentId": "p-2", "amount": 1})))
        .await
        .unwrap();
    let err = service
        .oneshot(event(json!({"paymentId": "p-2", "amount": 1000})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IdempotencyError::KeyMismatch { key } if key == "p-2"),
        "{err}"
    );
    let diagnostic: Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "Idempotency.KeyMismatch");
    assert!(diagnostic.error_message.contains("different payload"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn payload_pointers_ignore_fields_that_differ_between_deliveries() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .payload_pointers(["/paymentId", "/amount"])
        .build()
        .unwrap()
        .layer(counting(&runs));
    let a = json!({"paymentId": "p-3", "amount": 5, "sentAt": "2026-11-28T08:00:00Z"});
    let b = json!({"paymentId": "p-3", "amount": 5, "sentAt": "2026-11-28T08:00:07Z"});
    let first = service.clone().oneshot(event(a)).await.unwrap();
    assert_eq!(service.clone().oneshot(event(b)).await.unwrap(), first);
    let c = json!({"paymentId": "p-3", "amount": 6, "sentAt": "2026-11-28T08:00:00Z"});
    assert!(matches!(
        service.oneshot(event(c)).await,
        Err(IdempotencyError::KeyMismatch { .. })
    ));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_is_already_in_progress_until_its_deadline() {
    let (clock, store) = setup();
    let release = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let (r, s) = (Arc::clone(&release), Arc::clone(&started));
    let slow = service_fn(move |_e: LambdaEvent<Value>| {
        let (r, s) = (Arc::clone(&r), Arc::clone(&s));
        async move {
            s.notify_one();
            r.notified().await;
            Ok::<_, Error>(json!("done"))
        }
    });
    let service = builder(&clock, &store).build().unwrap().layer(slow);
    let payload = json!({"paymentId": "p-4", "amount": 1});
    let first = tokio::spawn(
        service
            .clone()
            .oneshot(event_with_deadline(payload.clone(), T0 + 7_500)),
    );
    started.notified().await;

    let err = service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IdempotencyError::AlreadyInProgress {
                retry_after_secs: 11,
                ..
            }
        ),
        "{err}"
    );
    let diagnostic: Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "Idempotency.AlreadyInProgress");

    // The lease is the first invocation's deadline plus the 3 s margin, not the 15
    // minute maximum.
    let record = store.get(&pk("p-4")).await.unwrap().unwrap();
    assert_eq!(record.lease_expires_at_ms, T0 + 10_500);
    clock.advance(Duration::from_millis(10_000));
    assert!(matches!(
        service.clone().oneshot(event(payload.clone())).await,
        Err(IdempotencyError::AlreadyInProgress {
            retry_after_secs: 1,
            ..
        })
    ));

    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), json!("done"));
    assert_eq!(
        service.oneshot(event(payload)).await.unwrap(),
        json!("done")
    );
}

#[tokio::test]
async fn an_unknown_or_past_deadline_gives_the_max_lease() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let config = IdempotencyConfig::builder()
        .max_lease(Duration::from_secs(40))
        .build()
        .unwrap();
    let service = builder(&clock, &store)
        .config(config)
        .build()
        .unwrap()
        .layer(counting(&runs));
    service
        .clone()
        .oneshot(event(json!({"paymentId": "p-5"})))
        .await
        .unwrap();
    service
        .oneshot(event_with_deadline(json!({"paymentId": "p-6"}), T0 - 1))
        .await
        .unwrap();
    for key in ["p-5", "p-6"] {
        assert_eq!(
            store
                .get(&pk(key))
                .await
                .unwrap()
                .unwrap()
                .lease_expires_at_ms,
            T0 + 40_000
        );
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Empty {}

async fn falsy_output_replays<O>(output: O, key: &str)
where
    O: Serialize
        + serde::de::DeserializeOwned
        + Clone
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let out = output.clone();
    let handler = service_fn(move |_e: LambdaEvent<Value>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let out = out.clone();
        async move { Ok::<_, Error>(out) }
    });
    let service = builder(&clock, &store).build().unwrap().layer(handler);
    let payload = json!({"paymentId": key});
    assert_eq!(
        service
            .clone()
            .oneshot(event(payload.clone()))
            .await
            .unwrap(),
        output
    );
    assert_eq!(service.oneshot(event(payload)).await.unwrap(), output);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "{key}: the falsy output was replayed, not re-run"
    );
}

#[tokio::test]
async fn falsy_outputs_are_stored_and_replayed() {
    falsy_output_replays(0_u32, "zero").await;
    falsy_output_replays(false, "false").await;
    falsy_output_replays(Empty {}, "empty-object").await;
    falsy_output_replays(json!({}), "empty-json-object").await;
    falsy_output_replays(Value::Null, "null").await;
    falsy_output_replays(Option::<u8>::None, "none").await;
    falsy_output_replays((), "unit").await;
    falsy_output_replays(String::new(), "empty-string").await;
    falsy_output_replays(Vec::<u8>::new(), "empty-list").await;
}

#[tokio::test]
async fn a_missing_key_is_an_error_or_passes_through() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let strict = builder(&clock, &store)
        .build()
        .unwrap()
        .layer(counting(&runs));
    for payload in [
        json!({"amount": 1}),
        json!({"paymentId": null}),
        json!({"paymentId": ""}),
    ] {
        let err = strict.clone().oneshot(event(payload)).await.unwrap_err();
        assert!(matches!(err, IdempotencyError::MissingKey { .. }), "{err}");
        let diagnostic: Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "Idempotency.MissingKey");
        assert!(diagnostic.error_message.contains("/paymentId"));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let lenient = builder(&clock, &store)
        .missing_key(MissingKey::PassThrough)
        .build()
        .unwrap()
        .layer(counting(&runs));
    lenient
        .clone()
        .oneshot(event(json!({"amount": 1})))
        .await
        .unwrap();
    lenient.oneshot(event(json!({"amount": 1}))).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_handler_error_passes_through_and_a_retry_runs_again() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let handler = service_fn(move |_e: LambdaEvent<Value>| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if run == 1 {
                Err::<Value, Error>("ledger unavailable".into())
            } else {
                Ok(json!({"applied": true}))
            }
        }
    });
    let service = builder(&clock, &store).build().unwrap().layer(handler);
    let payload = json!({"paymentId": "p-7"});
    let err = service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), None);
    let diagnostic: Diagnostic = err.into();
    assert_eq!(
        diagnostic.error_message, "ledger unavailable",
        "the handler's own error"
    );
    assert_eq!(
        store.get(&pk("p-7")).await.unwrap().unwrap().status,
        Status::Errored
    );
    assert_eq!(
        service
            .clone()
            .oneshot(event(payload.clone()))
            .await
            .unwrap(),
        json!({"applied": true})
    );
    assert_eq!(
        service.oneshot(event(payload)).await.unwrap(),
        json!({"applied": true})
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_handler_panic_propagates_and_a_retry_runs_again() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let handler = service_fn(move |_e: LambdaEvent<Value>| {
        let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            assert!(run > 1, "first attempt panics");
            Ok::<_, Error>(json!(run))
        }
    });
    let service = builder(&clock, &store).build().unwrap().layer(handler);
    let payload = json!({"paymentId": "p-8"});
    let caught = std::panic::AssertUnwindSafe(service.clone().oneshot(event(payload.clone())))
        .catch_unwind()
        .await;
    assert!(caught.is_err());
    assert_eq!(
        store.get(&pk("p-8")).await.unwrap().unwrap().status,
        Status::Errored
    );
    assert_eq!(service.oneshot(event(payload)).await.unwrap(), json!(2));
}

#[tokio::test]
async fn an_expired_record_runs_the_handler_again() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .build()
        .unwrap()
        .layer(counting(&runs));
    let payload = json!({"paymentId": "p-9", "amount": 3});
    service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(service.oneshot(event(payload)).await.unwrap()["run"], 2);
}

#[tokio::test]
async fn keys_from_several_pointers_or_a_function() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let by_two = builder(&clock, &store)
        .key_pointers(["/detail/orderId", "/detail/attempt"])
        .build()
        .unwrap()
        .layer(counting(&runs));
    let first = json!({"detail": {"orderId": "o-1", "attempt": 1}});
    let second = json!({"detail": {"orderId": "o-1", "attempt": 2}});
    by_two.clone().oneshot(event(first.clone())).await.unwrap();
    by_two.clone().oneshot(event(second)).await.unwrap();
    by_two.oneshot(event(first)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "two keys, one replay");

    let by_fn = builder(&clock, &store)
        .key_fn(|p: &Value| p["id"].as_str().map(|id| format!("custom-{id}")))
        .build()
        .unwrap()
        .layer(counting(&runs));
    by_fn
        .clone()
        .oneshot(event(json!({"id": "x"})))
        .await
        .unwrap();
    by_fn.oneshot(event(json!({"id": "x"}))).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(store.get(&pk("custom-x")).await.unwrap().is_some());
}

#[tokio::test]
async fn actors_scope_keys() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .actor_fn(|p: &Value| p["tenant"].as_str().map(str::to_owned))
        .build()
        .unwrap()
        .layer(counting(&runs));
    let a = service
        .clone()
        .oneshot(event(json!({"paymentId": "same", "tenant": "acme"})))
        .await
        .unwrap();
    let b = service
        .oneshot(event(json!({"paymentId": "same", "tenant": "globex"})))
        .await
        .unwrap();
    assert_ne!(a, b, "each tenant has its own record");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreadable_stored_output_is_a_typed_error_and_nothing_reruns() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let typed = {
        let runs = Arc::clone(&runs);
        service_fn(move |_e: LambdaEvent<Value>| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<u64, Error>(7) }
        })
    };
    let service = builder(&clock, &store).build().unwrap().layer(typed);
    let payload = json!({"paymentId": "p-10"});
    service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap();
    let mut record = store.get_raw(&pk("p-10")).unwrap();
    record.response = Some(b"\"seven\"".to_vec());
    store.insert_raw(record);
    let err = service.oneshot(event(payload)).await.unwrap_err();
    assert!(
        matches!(err, IdempotencyError::StoredResponseUnreadable { .. }),
        "{err}"
    );
    assert_eq!(
        Diagnostic::from(err).error_type,
        "Idempotency.StoredResponseUnreadable"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn building_needs_a_key_source_and_valid_pointers() {
    let store = MemoryStore::new();
    assert_eq!(
        EventIdempotencyLayer::builder(store.clone())
            .build()
            .unwrap_err(),
        ConfigError::MissingKeySource
    );
    assert_eq!(
        EventIdempotencyLayer::builder(store.clone())
            .key_pointer("orderId")
            .build()
            .unwrap_err(),
        ConfigError::InvalidJsonPointer {
            pointer: "orderId".into(),
            reason:
                "\"orderId\" is not a JSON pointer (RFC 6901), which must be empty or start with '/'"
                    .into()
        }
    );
    assert!(matches!(
        EventIdempotencyLayer::builder(store)
            .key_pointer("/orderId")
            .payload_pointers(["amount"])
            .build()
            .unwrap_err(),
        ConfigError::InvalidJsonPointer { .. }
    ));
}

#[tokio::test]
async fn the_clock_is_the_one_given() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .build()
        .unwrap()
        .layer(counting(&runs));
    service
        .oneshot(event(json!({"paymentId": "p-11"})))
        .await
        .unwrap();
    let record = store.get(&pk("p-11")).await.unwrap().unwrap();
    assert_eq!(record.created_at_ms, clock.now_millis());
    assert_eq!(record.expires_at, (T0 + 24 * 3600 * 1000) / 1000);
}

#[tokio::test]
async fn an_output_that_cannot_be_serialised_never_runs_the_handler_again() {
    use std::collections::HashMap;
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    // serde_json cannot write a map whose keys are tuples.
    let handler = service_fn(move |_e: LambdaEvent<Value>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Error>(HashMap::from([((1u8, 2u8), 3u8)])) }
    });
    let service = builder(&clock, &store).build().unwrap().layer(handler);
    let payload = json!({"paymentId": "p-unserialisable"});
    // The first delivery returns (and the runtime then fails to send it).
    assert!(
        service
            .clone()
            .oneshot(event(payload.clone()))
            .await
            .is_ok()
    );
    // The redelivery must not charge again.
    let err = service.oneshot(event(payload)).await.unwrap_err();
    assert!(
        matches!(err, IdempotencyError::StoredResponseUnreadable { .. }),
        "{err}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        store
            .get(&pk("p-unserialisable"))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Completed
    );
}

#[tokio::test]
async fn keys_and_payloads_are_selected_inside_json_strings() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = EventIdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .name("payments")
        .key_pointer("/Message|json/detail/paymentId")
        .payload_pointers(["/Message|json/detail"])
        .build()
        .unwrap()
        .layer(counting(&runs));
    // An SNS notification wrapping an EventBridge event, as a string.
    let sns = |message_id: &str, detail: Value| json!({"MessageId": message_id, "Message": json!({"detail-type": "PaymentRequested", "detail": detail}).to_string()});
    let first = service
        .clone()
        .oneshot(event(sns("n-1", json!({"paymentId": "p-9", "amount": 40}))))
        .await
        .unwrap();
    // Redelivered under another notification id, its detail spelled differently.
    let again = service
        .clone()
        .oneshot(event(sns("n-2", json!({"amount": 40, "paymentId": "p-9"}))))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(store.get(&pk("p-9")).await.unwrap().is_some());
    let reused = service
        .clone()
        .oneshot(event(sns("n-3", json!({"paymentId": "p-9", "amount": 41}))))
        .await;
    assert!(matches!(reused, Err(IdempotencyError::KeyMismatch { .. })));
    let not_json = service
        .oneshot(event(json!({"MessageId": "n-4", "Message": "plain text"})))
        .await;
    match not_json {
        Err(IdempotencyError::MissingKey { detail }) => {
            assert_eq!(detail, "/Message is not a string of JSON")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_selector_with_an_unknown_step_is_refused_at_build() {
    let err = EventIdempotencyLayer::builder(MemoryStore::new())
        .key_pointer("/body|yaml/orderId")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("unknown step \"yaml\""), "{err}");
}

#[tokio::test]
async fn the_replay_hook_sees_every_replay_and_may_change_the_output() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook_seen = Arc::clone(&seen);
    let service = builder(&clock, &store)
        .on_replay(move |output: &mut Value, record| {
            hook_seen
                .lock()
                .unwrap()
                .push((record.key.clone(), record.created_at_ms));
            output["replayed"] = Value::Bool(true);
        })
        .build()
        .unwrap()
        .layer(counting(&runs));
    let payload = json!({"paymentId": "p-h", "amount": 7});
    let first = service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap();
    assert_eq!(
        first,
        json!({"run": 1, "amount": 7}),
        "not a replay: no hook"
    );
    assert!(seen.lock().unwrap().is_empty());
    clock.advance(Duration::from_secs(5));
    let again = service.clone().oneshot(event(payload)).await.unwrap();
    assert_eq!(again, json!({"run": 1, "amount": 7, "replayed": true}));
    assert_eq!(*seen.lock().unwrap(), [("p-h".to_owned(), T0)]);
    // A mismatch is not a replay.
    let _ = service
        .oneshot(event(json!({"paymentId": "p-h", "amount": 8})))
        .await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn idempotency_disabled_by_the_environment_passes_every_event_through() {
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = builder(&clock, &store)
        .env_lookup(|name| (name == "IDEMPOTENCY_DISABLED").then(|| "true".to_owned()))
        .build()
        .unwrap()
        .layer(counting(&runs));
    let payload = json!({"paymentId": "p-off", "amount": 1});
    for _ in 0..3 {
        service
            .clone()
            .oneshot(event(payload.clone()))
            .await
            .unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3, "every event ran");
    assert!(
        store.get(&pk("p-off")).await.unwrap().is_none(),
        "nothing stored"
    );
    // Even an event without a key runs.
    service.oneshot(event(json!({"amount": 1}))).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[test]
fn idempotency_disabled_on_lambda_is_refused_unless_allowed() {
    let env = |allow: bool| {
        move |name: &str| match name {
            "IDEMPOTENCY_DISABLED" => Some("true".to_owned()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("payments".to_owned()),
            "IDEMPOTENCY_DISABLED_ON_LAMBDA" if allow => Some("true".to_owned()),
            _ => None,
        }
    };
    let refused = EventIdempotencyLayer::builder(MemoryStore::new())
        .key_pointer("/paymentId")
        .env_lookup(env(false))
        .build()
        .unwrap_err();
    assert_eq!(refused, ConfigError::DisabledOnLambda);
    assert!(
        refused
            .to_string()
            .contains("IDEMPOTENCY_DISABLED_ON_LAMBDA=true")
    );
    assert!(
        EventIdempotencyLayer::builder(MemoryStore::new())
            .key_pointer("/paymentId")
            .env_lookup(env(true))
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn an_event_layer_may_remember_keys_for_weeks_within_its_own_bounds() {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let (clock, store) = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let config = IdempotencyConfig::builder()
        .expiry_bounds(Duration::from_secs(5 * 60), 15 * DAY)
        .expiry(14 * DAY)
        .build()
        .unwrap();
    let service = builder(&clock, &store)
        .config(config)
        .build()
        .unwrap()
        .layer(counting(&runs));
    let payload = json!({"paymentId": "p-sqs", "amount": 3});
    service
        .clone()
        .oneshot(event(payload.clone()))
        .await
        .unwrap();
    let record = store.get(&pk("p-sqs")).await.unwrap().unwrap();
    assert_eq!(record.expires_at, (T0 / 1000) + 14 * 24 * 60 * 60);
    // SQS redelivers 13 days later: still a replay.
    clock.advance(13 * DAY);
    service.oneshot(event(payload)).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handler_that_panics_before_its_future_starts_still_frees_its_key() {
    let (clock, store) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // `call` panics on the first event, before it returns a future.
    let handler = service_fn(move |e: LambdaEvent<Value>| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the handler panicked while building its future");
        }
        async move { Ok::<_, Error>(json!({"amount": e.payload["amount"]})) }
    });
    let service = builder(&clock, &store).build().unwrap().layer(handler);
    let payload = json!({"paymentId": "p-early-panic", "amount": 3});
    let panicked = std::panic::AssertUnwindSafe(service.clone().oneshot(event(payload.clone())))
        .catch_unwind()
        .await;
    assert!(panicked.is_err(), "the panic is re-raised");
    let record = store.get(&pk("p-early-panic")).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Errored, "not left PENDING");
    let retried = service.oneshot(event(payload)).await.unwrap();
    assert_eq!(retried, json!({"amount": 3}));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
