//! The store behaviour suite (the `testing` feature): the rules every [`Store`] must
//! keep, as functions any backend's tests can call, the way `object_store` ships its
//! integration suite. The in-memory, cached and DynamoDB stores of this crate run it;
//! a third-party store (Redis, Postgres, a wrapper) runs the same checks.
//!
//! Each function takes the store and the [`ManualClock`] it reads, and checks one
//! rule; keys are random, so suites can share a table. [`behaviour_suite!`] makes one
//! `#[tokio::test]` of each (the concurrency races on a multi-thread runtime):
//!
//! ```no_run
//! // tests/my_store.rs, in the crate of a store, with this crate's `testing` feature
//! // and tokio among its dev-dependencies.
//! use std::sync::Arc;
//!
//! use lambda_idempotency::clock::ManualClock;
//! use lambda_idempotency::store::{MemoryStore, Store};
//!
//! async fn make() -> (Arc<dyn Store>, ManualClock) {
//!     let clock = ManualClock::starting_now();
//!     (Arc::new(MemoryStore::with_clock(clock.clone())), clock) // your store here
//! }
//!
//! lambda_idempotency::behaviour_suite!(make());
//! # fn main() {}
//! ```
//!
//! Or call the checks yourself:
//!
//! ```
//! use lambda_idempotency::clock::ManualClock;
//! use lambda_idempotency::store::MemoryStore;
//! use lambda_idempotency::testing;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let clock = ManualClock::starting_now();
//! let store = MemoryStore::with_clock(clock.clone());
//! testing::new_key_begins(&store, &clock).await;
//! testing::taken_over_holder_loses_its_lease(&store, &clock).await;
//! # });
//! ```
//!
//! [`Store`]: crate::store::Store
//! [`behaviour_suite!`]: crate::behaviour_suite

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ManualClock};
use crate::fingerprint::{BodyKind, Fingerprint, FingerprintInput};
use crate::key::IdempotencyKey;
use crate::record::Status;
use crate::scope::Scope;
use crate::store::{BeginOutcome, BeginRequest, Lease, Store, WriteOutcome};

/// The lease every request of the suite asks for.
pub const LEASE: Duration = Duration::from_secs(30);
/// The expiry every request of the suite asks for.
pub const EXPIRY: Duration = Duration::from_secs(60 * 60);

/// The fingerprint of a `POST /orders` with this JSON body.
pub fn fingerprint(body: &str) -> Fingerprint {
    Fingerprint::v2(&FingerprintInput {
        method: "POST",
        path: "/orders",
        query: &[],
        body: body.as_bytes(),
        body_kind: BodyKind::Json,
    })
}

/// A request on a fresh random key, so suites can share a table.
pub fn request(body: &str) -> BeginRequest {
    let key = IdempotencyKey::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    BeginRequest {
        scope: Scope::new("POST /orders", "alice", key),
        fingerprint: fingerprint(body),
        lease: LEASE,
        expiry: EXPIRY,
    }
}

/// The same scope and key as `r`, with another body.
pub fn with_body(r: &BeginRequest, body: &str) -> BeginRequest {
    BeginRequest {
        fingerprint: fingerprint(body),
        ..r.clone()
    }
}

/// Begins `r`, which must start; its lease.
pub async fn start(store: &dyn Store, r: &BeginRequest) -> Lease {
    match store.begin(r).await.unwrap() {
        BeginOutcome::Started { lease, .. } => lease,
        other => panic!("expected Started, got {other:?}"),
    }
}

/// A new key begins: a `PENDING` record with the request's fingerprint, a fresh
/// lease of [`LEASE`], an expiry of [`EXPIRY`], and the raw route, actor and key.
pub async fn new_key_begins(store: &dyn Store, clock: &ManualClock) {
    let r = request(r#"{"sku":"A1","qty":1}"#);
    let now = clock.now_millis();
    let BeginOutcome::Started { lease, replaced } = store.begin(&r).await.unwrap() else {
        panic!("a new key must begin");
    };
    assert!(replaced.is_none());
    assert_eq!(lease.partition_key, r.scope.partition_key());
    assert_eq!(lease.expires_at_ms, now + 30_000);
    let record = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(record.fingerprint, r.fingerprint);
    assert_eq!(record.lease_token, lease.token);
    assert_eq!(record.lease_expires_at_ms, now + 30_000);
    assert_eq!(record.expires_at, (now + 3_600_000) / 1000);
    assert_eq!(record.created_at_ms, now);
    assert_eq!(record.response, None);
    assert_eq!(record.route, "POST /orders");
    assert_eq!(record.actor, "alice");
    assert_eq!(record.key, r.scope.key().as_str());
}

/// A completed request replays its response byte for byte (text, binary, empty),
/// and replaying changes nothing.
pub async fn completed_replays_exact_response(store: &dyn Store, clock: &ManualClock) {
    for response in [
        b"{\"orderId\":\"o-1\",\"total\":12.50}".to_vec(),
        vec![0, 0xff, 0xfe, b'\n', 0x80],
        vec![],
    ] {
        let r = request(r#"{"sku":"A1"}"#);
        let lease = start(store, &r).await;
        clock.advance(Duration::from_millis(250));
        assert_eq!(
            store.complete(&lease, &response).await.unwrap(),
            WriteOutcome::Written
        );
        let BeginOutcome::Replay(record) = store.begin(&r).await.unwrap() else {
            panic!("a completed request must replay");
        };
        assert_eq!(record.status, Status::Completed);
        assert_eq!(record.response.as_deref(), Some(&response[..]));
        assert_eq!(record.updated_at_ms, record.created_at_ms + 250);
        // Replaying changes nothing.
        assert_eq!(
            store.get(r.scope.partition_key()).await.unwrap(),
            Some(*record)
        );
    }
}

/// A different request under the key is a mismatch, pending or completed, and the
/// record keeps the first request.
pub async fn different_fingerprint_is_a_mismatch(store: &dyn Store, _clock: &ManualClock) {
    let r = request(r#"{"amount":100}"#);
    let other = with_body(&r, r#"{"amount":1000}"#);
    let lease = start(store, &r).await;
    // While pending...
    let BeginOutcome::Mismatch(record) = store.begin(&other).await.unwrap() else {
        panic!("a different request on a pending key is a mismatch");
    };
    assert_eq!(record.fingerprint, r.fingerprint);
    // ...and once completed.
    store.complete(&lease, b"ok").await.unwrap();
    let BeginOutcome::Mismatch(record) = store.begin(&other).await.unwrap() else {
        panic!("a different request on a completed key is a mismatch");
    };
    assert_eq!(record.status, Status::Completed);
    let stored = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(stored.fingerprint, r.fingerprint);
    assert_eq!(stored.response.as_deref(), Some(&b"ok"[..]));
}

/// A `PENDING` record whose lease is live (up to and including its last
/// millisecond) answers "in flight".
pub async fn pending_with_live_lease_is_in_flight(store: &dyn Store, clock: &ManualClock) {
    let r = request("{}");
    let lease = start(store, &r).await;
    clock.advance(LEASE); // lapses strictly after its expiry instant
    let BeginOutcome::InFlight(record) = store.begin(&r).await.unwrap() else {
        panic!("a live lease means in flight");
    };
    assert_eq!(record.lease_token, lease.token);
    assert_eq!(record.lease_expires_at_ms, lease.expires_at_ms);
}

/// Once its lease lapses, the same request takes the key over with a new lease.
pub async fn lapsed_lease_is_taken_over(store: &dyn Store, clock: &ManualClock) {
    let r = request(r#"{"n":1}"#);
    let first = start(store, &r).await;
    clock.advance(LEASE + Duration::from_millis(1));
    // A different request still may not take the key.
    assert!(matches!(
        store.begin(&with_body(&r, r#"{"n":2}"#)).await.unwrap(),
        BeginOutcome::Mismatch(_)
    ));
    let BeginOutcome::Started { lease, replaced } = store.begin(&r).await.unwrap() else {
        panic!("a lapsed lease must be taken over");
    };
    assert_ne!(lease.token, first.token);
    let replaced = replaced.expect("the lapsed record is returned");
    assert_eq!(replaced.status, Status::Pending);
    assert_eq!(replaced.lease_token, first.token);
}

/// An expired record behaves as absent: any request begins, and a read finds
/// nothing, even before the backend deletes it.
pub async fn expired_record_behaves_as_absent(store: &dyn Store, clock: &ManualClock) {
    let r = request(r#"{"n":1}"#);
    let lease = start(store, &r).await;
    store.complete(&lease, b"first").await.unwrap();
    clock.advance(EXPIRY);
    assert!(
        matches!(store.begin(&r).await.unwrap(), BeginOutcome::Replay(_)),
        "not yet expired"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.get(r.scope.partition_key()).await.unwrap(), None);
    // Even a different request may now use the key: it is new.
    let BeginOutcome::Started { replaced, .. } =
        store.begin(&with_body(&r, r#"{"n":2}"#)).await.unwrap()
    else {
        panic!("an expired record must behave as absent");
    };
    assert_eq!(
        replaced
            .expect("the expired record was still stored")
            .status,
        Status::Completed
    );
}

/// An `ERRORED` record may begin again, but only for the same request.
pub async fn errored_may_begin_again_with_same_request_only(
    store: &dyn Store,
    _clock: &ManualClock,
) {
    let r = request(r#"{"n":1}"#);
    let lease = start(store, &r).await;
    assert_eq!(store.fail(&lease).await.unwrap(), WriteOutcome::Written);
    let record = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Errored);
    assert!(matches!(
        store.begin(&with_body(&r, r#"{"n":2}"#)).await.unwrap(),
        BeginOutcome::Mismatch(_)
    ));
    let BeginOutcome::Started {
        lease: second,
        replaced,
    } = store.begin(&r).await.unwrap()
    else {
        panic!("an errored request may run again");
    };
    assert_eq!(replaced.unwrap().status, Status::Errored);
    assert_ne!(second.token, lease.token);
}

/// A holder whose lease was taken over can neither complete nor fail: fenced on
/// the lease token, it writes nothing.
pub async fn taken_over_holder_loses_its_lease(store: &dyn Store, clock: &ManualClock) {
    let r = request(r#"{"n":1}"#);
    let first = start(store, &r).await;
    clock.advance(LEASE + Duration::from_secs(1));
    let second = start(store, &r).await;

    for outcome in [
        store.complete(&first, b"late").await.unwrap(),
        store.fail(&first).await.unwrap(),
    ] {
        let WriteOutcome::LeaseLost { current } = outcome else {
            panic!("the first holder must lose its lease");
        };
        let current = current.expect("the record still exists");
        assert_eq!(current.lease_token, second.token);
        assert_eq!(current.status, Status::Pending);
    }
    let untouched = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(untouched.status, Status::Pending);
    assert_eq!(untouched.lease_token, second.token);
    assert_eq!(untouched.response, None);

    assert_eq!(
        store.complete(&second, b"winner").await.unwrap(),
        WriteOutcome::Written
    );
    let done = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(done.response.as_deref(), Some(&b"winner"[..]));
}

/// A lease completes once; a second, different completion is refused.
pub async fn a_lease_completes_once(store: &dyn Store, _clock: &ManualClock) {
    let r = request("{}");
    let lease = start(store, &r).await;
    assert_eq!(
        store.complete(&lease, b"one").await.unwrap(),
        WriteOutcome::Written
    );
    for outcome in [
        store.complete(&lease, b"two").await.unwrap(),
        store.fail(&lease).await.unwrap(),
    ] {
        assert!(
            matches!(outcome, WriteOutcome::LeaseLost { current: Some(ref c) } if c.status == Status::Completed)
        );
    }
    let record = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.response.as_deref(), Some(&b"one"[..]));
}

/// A completion or failure repeated with the same contents (the SDK retrying a
/// request whose first attempt was applied) is a success, not a lost lease.
pub async fn a_repeated_identical_update_is_written(store: &dyn Store, _clock: &ManualClock) {
    let r = request("{}");
    let lease = start(store, &r).await;
    assert_eq!(
        store.complete(&lease, b"same").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        store.complete(&lease, b"same").await.unwrap(),
        WriteOutcome::Written
    );
    let record = store.get(r.scope.partition_key()).await.unwrap().unwrap();
    assert_eq!(record.response.as_deref(), Some(&b"same"[..]));

    let r = request(r#"{"n":2}"#);
    let lease = start(store, &r).await;
    assert_eq!(store.fail(&lease).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.fail(&lease).await.unwrap(), WriteOutcome::Written);
    assert!(matches!(
        store.complete(&lease, b"late").await.unwrap(),
        WriteOutcome::LeaseLost { .. }
    ));
}

/// Completing a record that was deleted (purged, swept) is a lost lease.
pub async fn completing_a_deleted_record_is_lease_lost(store: &dyn Store, _clock: &ManualClock) {
    let r = request("{}");
    let lease = start(store, &r).await;
    assert!(store.delete(r.scope.partition_key()).await.unwrap());
    assert!(!store.delete(r.scope.partition_key()).await.unwrap());
    assert_eq!(
        store.complete(&lease, b"x").await.unwrap(),
        WriteOutcome::LeaseLost { current: None }
    );
    assert_eq!(
        store.get(r.scope.partition_key()).await.unwrap(),
        None,
        "nothing was created"
    );
}

/// Another actor, another route, or a route and actor that concatenate alike
/// never share a record.
pub async fn actors_and_routes_never_share_a_record(store: &dyn Store, _clock: &ManualClock) {
    let r = request("{}");
    let key = r.scope.key().clone();
    let lease = start(store, &r).await;
    store.complete(&lease, b"alice's").await.unwrap();
    for scope in [
        Scope::new("POST /orders", "bob", key.clone()),
        Scope::new("POST /refunds", "alice", key.clone()),
        Scope::new("POST /orders#alice", "", key.clone()),
    ] {
        let other = BeginRequest { scope, ..r.clone() };
        assert!(matches!(
            store.begin(&other).await.unwrap(),
            BeginOutcome::Started { replaced: None, .. }
        ));
    }
}

/// Counts per round of a concurrent begin race.
#[derive(Debug, Default, Clone, Copy)]
pub struct RaceRound {
    /// Begins that started.
    pub started: usize,
    /// Begins answered "in flight".
    pub in_flight: usize,
    /// Anything else (a bug).
    pub other: usize,
}

async fn race(store: &Arc<dyn Store>, r: &BeginRequest, writers: usize) -> RaceRound {
    let barrier = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let store = Arc::clone(store);
            let r = r.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.begin(&r).await
            })
        })
        .collect();
    let mut round = RaceRound::default();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            BeginOutcome::Started { .. } => round.started += 1,
            BeginOutcome::InFlight(_) => round.in_flight += 1,
            _ => round.other += 1,
        }
    }
    round
}

/// `writers` concurrent begins on one new key, `rounds` times: exactly one winner
/// every round, and every loser sees the winner in flight.
pub async fn concurrent_begins_on_a_new_key(store: Arc<dyn Store>, rounds: usize, writers: usize) {
    let mut bad = 0;
    for _ in 0..rounds {
        let round = race(&store, &request(r#"{"race":true}"#), writers).await;
        if round.started != 1 || round.in_flight != writers - 1 {
            eprintln!("bad round: {round:?}");
            bad += 1;
        }
    }
    eprintln!("race on new keys: {rounds} rounds x {writers} writers, {bad} bad rounds");
    assert_eq!(bad, 0);
}

/// The same race on a key whose completed record has expired but is still stored.
pub async fn concurrent_begins_on_an_expired_key(
    store: Arc<dyn Store>,
    clock: &ManualClock,
    rounds: usize,
    writers: usize,
) {
    let mut bad = 0;
    for _ in 0..rounds {
        let r = request(r#"{"race":"expired"}"#);
        let lease = start(&*store, &r).await;
        store.complete(&lease, b"old").await.unwrap();
        clock.advance(EXPIRY + Duration::from_secs(1));
        let round = race(&store, &r, writers).await;
        if round.started != 1 || round.in_flight != writers - 1 {
            eprintln!("bad round: {round:?}");
            bad += 1;
        }
    }
    eprintln!("race on expired keys: {rounds} rounds x {writers} writers, {bad} bad rounds");
    assert_eq!(bad, 0);
}

/// One `#[tokio::test]` per behaviour of [`testing`](crate::testing), for a backend
/// built by `$make`, an async expression giving `(Arc<dyn Store>, ManualClock)` (the
/// store reading that clock). The calling crate needs `tokio` (with `macros` and
/// `rt-multi-thread`) among its dev-dependencies. The tests are named after the
/// checks, so invoke it once per module (one module per store), and do not import
/// the checks by name beside it.
#[macro_export]
macro_rules! behaviour_suite {
    ($make:expr) => {
        $crate::behaviour_suite!(@tests $make;
            new_key_begins,
            completed_replays_exact_response,
            different_fingerprint_is_a_mismatch,
            pending_with_live_lease_is_in_flight,
            lapsed_lease_is_taken_over,
            expired_record_behaves_as_absent,
            errored_may_begin_again_with_same_request_only,
            taken_over_holder_loses_its_lease,
            a_lease_completes_once,
            a_repeated_identical_update_is_written,
            completing_a_deleted_record_is_lease_lost,
            actors_and_routes_never_share_a_record,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn fifty_concurrent_begins_on_a_new_key_have_one_winner() {
            let (store, _clock) = $make.await;
            $crate::testing::concurrent_begins_on_a_new_key(store, 20, 50).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn fifty_concurrent_begins_on_an_expired_key_have_one_winner() {
            let (store, clock) = $make.await;
            $crate::testing::concurrent_begins_on_an_expired_key(store, &clock, 20, 50).await;
        }
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, clock) = $make.await;
                $crate::testing::$name(&*store, &clock).await;
            }
        )*
    };
}
