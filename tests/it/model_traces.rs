//! Counterexamples the model checker found in planted defects (`make verify`;
//! VERIFICATION.md), replayed step by step against DynamoDB Local with the real
//! store, where the protocol must hold.

use std::time::Duration;

use crate::support;
use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::ops::{DeleteOutcome, delete_expired};
use lambda_idempotency::record::Status;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{BeginOutcome, Store, WriteOutcome};
use lambda_idempotency::testing::{request, start, with_body};

/// `DEFECT_UNFENCED` (the completion conditional on `PENDING` only): spin's
/// counterexample, in the model's words, is
///
/// 1. request 1 (fingerprint 2) begins; its handler finishes and its completion goes
///    out, but the network holds it; Lambda stops request 1 at its deadline;
/// 2. request 0 (fingerprint 1, same key) is refused as a mismatch;
/// 3. time passes: the record expires and the sweeper deletes it;
/// 4. request 2 (fingerprint 1) begins over the empty key and runs;
/// 5. request 1's delayed completion arrives and, unfenced, completes request 2's
///    record with request 1's response: a replay of request 2 would return the
///    answer to another request.
///
/// With fencing, step 5 is refused (lease lost) and the record keeps request 2's
/// own completion.
#[tokio::test]
async fn a_delayed_completion_from_an_earlier_lifetime_is_fenced_off() {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    let clock = ManualClock::starting_now();
    let store = DynamoDbStore::new(client, table).with_clock(clock.clone());
    let first = request(r#"{"amount":2}"#);
    let other = with_body(&first, r#"{"amount":1}"#);
    let pk = first.scope.partition_key().to_owned();

    // 1. Request 1 begins; its completion is held back (not sent yet).
    let held_back = start(&store, &first).await;
    // 2. Request 0: another request under the same key, refused.
    let refused = store.begin(&other).await.unwrap();
    assert!(matches!(refused, BeginOutcome::Mismatch(_)), "{refused:?}");
    // 3. The record expires; the sweeper's conditional delete removes it.
    clock.advance(first.expiry + Duration::from_secs(60));
    let deleted = delete_expired(&store, &pk, clock.now_secs()).await.unwrap();
    assert!(
        matches!(
            deleted,
            DeleteOutcome::Deleted {
                status: Some(Status::Pending),
                ..
            }
        ),
        "{deleted:?}"
    );
    // 4. Request 2 begins over the empty key.
    let running = start(&store, &other).await;
    assert_ne!(running.token, held_back.token);
    // 5. Request 1's completion arrives now: fenced off.
    let late = store
        .complete(&held_back, b"answer to request 1")
        .await
        .unwrap();
    assert!(matches!(late, WriteOutcome::LeaseLost { .. }), "{late:?}");
    let record = store.get(&pk).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(record.lease_token, running.token);
    // Request 2 completes; its replay is its own answer.
    let done = store
        .complete(&running, b"answer to request 2")
        .await
        .unwrap();
    assert_eq!(done, WriteOutcome::Written);
    match store.begin(&other).await.unwrap() {
        BeginOutcome::Replay(record) => {
            assert_eq!(
                record.response.as_deref(),
                Some(&b"answer to request 2"[..])
            );
            assert_eq!(record.fingerprint, other.fingerprint);
        }
        outcome => panic!("expected a replay, got {outcome:?}"),
    }
    // The delayed completion sent again (an SDK retry) is still refused.
    let again = store
        .complete(&held_back, b"answer to request 1")
        .await
        .unwrap();
    assert!(matches!(again, WriteOutcome::LeaseLost { .. }), "{again:?}");
}
