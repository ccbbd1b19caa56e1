//! Idempotent functions (`lambda_idempotency::function`): any async function, keyed
//! by its input, on the in-memory store and on DynamoDB Local (`make test`).

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::event::{EventIdempotencyLayer, IdempotencyError};
use lambda_idempotency::function::IdempotentFunction;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use lambda_runtime::{Context, Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

const T0: i64 = 1_700_000_000_000;

#[derive(Serialize)]
struct Reserve<'a> {
    order_id: &'a str,
    sku: &'a str,
    quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reservation {
    reservation_id: String,
    quantity: u32,
}

fn pk(name: &str, key: &str) -> String {
    Scope::new(name, ANONYMOUS_ACTOR, IdempotencyKey::parse(key).unwrap())
        .partition_key()
        .to_owned()
}

/// Takes stock: counts its runs, fails while `fail` is set.
async fn take_stock(
    runs: &AtomicUsize,
    input: &Reserve<'_>,
    fail: bool,
) -> Result<Reservation, String> {
    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
    if fail {
        return Err("the warehouse timed out".to_owned());
    }
    Ok(Reservation {
        reservation_id: format!("res-{n}"),
        quantity: input.quantity,
    })
}

async fn once_per_key(store: impl Store + Clone) {
    let reserve = IdempotentFunction::builder("reserve-stock", store.clone())
        .key_pointer("/order_id")
        .build()
        .unwrap();
    let runs = AtomicUsize::new(0);
    let input = Reserve {
        order_id: "ord-1",
        sku: "A1",
        quantity: 2,
    };

    // An error is passed through and leaves the key free.
    let failed = reserve
        .call(&input, || take_stock(&runs, &input, true))
        .await;
    assert!(
        matches!(failed, Err(IdempotencyError::Handler(ref e)) if e == "the warehouse timed out")
    );
    let record = store
        .get(&pk("reserve-stock", "ord-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Errored);

    let first = reserve
        .call(&input, || take_stock(&runs, &input, false))
        .await
        .unwrap();
    let again = reserve
        .call(&input, || take_stock(&runs, &input, false))
        .await
        .unwrap();
    assert_eq!(
        first,
        Reservation {
            reservation_id: "res-2".into(),
            quantity: 2
        }
    );
    assert_eq!(again, first, "the stored output");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let record = store
        .get(&pk("reserve-stock", "ord-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Completed);

    // The same key with another input is refused; the function does not run.
    let more = Reserve {
        quantity: 3,
        ..input
    };
    let reused = reserve
        .call(&more, || take_stock(&runs, &more, false))
        .await;
    assert!(matches!(reused, Err(IdempotencyError::KeyMismatch { .. })));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // Another function with the same key is another record.
    let release = IdempotentFunction::builder("release-stock", store)
        .key_pointer("/order_id")
        .build()
        .unwrap();
    let released: Reservation = release
        .call(&input, || take_stock(&runs, &input, false))
        .await
        .unwrap();
    assert_eq!(released.reservation_id, "res-3");
}

#[tokio::test]
async fn a_function_runs_once_per_key_in_memory() {
    once_per_key(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_function_runs_once_per_key_on_dynamodb() {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    once_per_key(DynamoDbStore::new(client, table)).await;
}

#[tokio::test]
async fn a_repeat_while_the_first_call_runs_is_in_progress() {
    let reserve = IdempotentFunction::builder("reserve-stock", MemoryStore::new())
        .key_pointer("/order_id")
        .build()
        .unwrap();
    let input = Reserve {
        order_id: "ord-2",
        sku: "A1",
        quantity: 1,
    };
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let reserve = reserve.clone();
        tokio::spawn(async move {
            let input = Reserve {
                order_id: "ord-2",
                sku: "A1",
                quantity: 1,
            };
            reserve
                .call(&input, || async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    Ok::<_, String>(1)
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let second = reserve.call(&input, || async { Ok::<_, String>(2) }).await;
    assert!(
        matches!(second, Err(IdempotencyError::AlreadyInProgress { .. })),
        "{second:?}"
    );
    finish_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(
        reserve
            .call(&input, || async { Ok::<_, String>(3) })
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_function_called_by_an_idempotent_handler_inherits_its_deadline() {
    let clock = ManualClock::new(T0);
    let store = MemoryStore::with_clock(clock.clone());
    let charge = IdempotentFunction::builder("charge-card", store.clone())
        .clock(clock.clone())
        .key_pointer("/paymentId")
        .build()
        .unwrap();
    let layer = EventIdempotencyLayer::builder(store.clone())
        .clock(clock.clone())
        .name("payments")
        .key_pointer("/paymentId")
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = {
        let runs = Arc::clone(&runs);
        service_fn(move |event: LambdaEvent<Value>| {
            let (charge, runs) = (charge.clone(), Arc::clone(&runs));
            async move {
                // The same key as the handler's own: a separate record, no conflict.
                let receipt: Value = charge
                    .call(&event.payload, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Error>(json!({"chargeId": "ch-1"}))
                    })
                    .await?;
                Ok::<_, Error>(receipt)
            }
        })
    };
    let mut context = Context::default();
    let deadline = T0 + 30_000;
    context.deadline = deadline as u64;
    let service = layer.layer(handler);
    let payload = json!({"paymentId": "p-1", "amount": 5});
    let out = service
        .clone()
        .oneshot(LambdaEvent::new(payload.clone(), context.clone()))
        .await
        .unwrap();
    assert_eq!(out, json!({"chargeId": "ch-1"}));
    let inner = store.get(&pk("charge-card", "p-1")).await.unwrap().unwrap();
    assert_eq!(inner.status, Status::Completed);
    assert_eq!(
        inner.lease_expires_at_ms,
        deadline + 3_000,
        "the invocation's deadline plus the margin, not the 15-minute maximum lease"
    );
    // An explicit deadline outside any layer.
    let direct = IdempotentFunction::builder("refund", store.clone())
        .clock(clock.clone())
        .key_pointer("/paymentId")
        .build()
        .unwrap();
    let _: Value = direct
        .call_before(deadline as u64, &payload, || async {
            Ok::<_, Error>(json!(1))
        })
        .await
        .unwrap();
    let record = store.get(&pk("refund", "p-1")).await.unwrap().unwrap();
    assert_eq!(record.lease_expires_at_ms, deadline + 3_000);
    let _: Value = direct
        .call(&json!({"paymentId": "p-2"}), || async {
            Ok::<_, Error>(json!(2))
        })
        .await
        .unwrap();
    let record = store.get(&pk("refund", "p-2")).await.unwrap().unwrap();
    assert_eq!(
        record.lease_expires_at_ms,
        clock.now_millis() + Duration::from_secs(15 * 60).as_millis() as i64,
        "no deadline known: the maximum lease"
    );
    // The handler's own retry replays; neither the handler nor the step runs again.
    let again = service
        .oneshot(LambdaEvent::new(payload, context))
        .await
        .unwrap();
    assert_eq!(again, out);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_input_that_is_not_json_is_a_typed_error_and_nothing_runs() {
    let f = IdempotentFunction::builder("f", MemoryStore::new())
        .key_pointer("/k")
        .build()
        .unwrap();
    // A map with non-string keys cannot be JSON.
    let input: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let ran = AtomicUsize::new(0);
    let result = f
        .call(&input, || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        })
        .await;
    assert!(
        matches!(result, Err(IdempotencyError::InvalidPayload(_))),
        "{result:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_function_on_another_store_never_queues_the_writes_of_the_request_around_it() {
    use lambda_idempotency::atomic::AtomicWrites;
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    // The handler's layer commits atomically (DynamoDB); the step inside it keeps
    // its records in memory, where nothing can join that transaction.
    let layer = EventIdempotencyLayer::builder(DynamoDbStore::new(client, table))
        .name("outer")
        .key_pointer("/paymentId")
        .build()
        .unwrap();
    let step = IdempotentFunction::builder("inner-step", MemoryStore::new())
        .key_pointer("/paymentId")
        .build()
        .unwrap();
    let service = layer.layer(service_fn(move |event: LambdaEvent<Value>| {
        let step = step.clone();
        async move {
            let outer_sees_writes = AtomicWrites::current().is_some();
            let inner_sees_writes: bool = step
                .call(&event.payload, || async {
                    Ok::<_, Error>(AtomicWrites::current().is_some())
                })
                .await?;
            Ok::<_, Error>(json!([outer_sees_writes, inner_sees_writes]))
        }
    }));
    let out = service
        .oneshot(LambdaEvent::new(
            json!({"paymentId": "p-nested"}),
            Context::default(),
        ))
        .await
        .unwrap();
    assert_eq!(out, json!([true, false]));
}
