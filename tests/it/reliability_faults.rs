//! Faults at every step: the store fails at begin, complete or fail (before the
//! write lands, or after it landed with its answer lost), the handler errors, panics
//! or runs past its deadline. In every case: never two side effects (or, for effects
//! outside the transaction, exactly where the README says the guarantee ends), never
//! a key stuck beyond its lease, and always a clear answer.
//!
//! Each scenario runs over the in-memory store, over DynamoDB Local (the real SDK
//! path) and over a real redis-server; the atomic-completion scenarios need DynamoDB.
//! Time is a manual clock, so leases lapse without sleeping. Needs
//! `AWS_ENDPOINT_URL_DYNAMODB` and `IDEMPOTENCY_TEST_REDIS_URL`: run with `make test`.

use crate::faults;
use crate::support;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use faults::{Fault, FaultyStore, Step};
use futures::FutureExt;
use lambda_http::{Body, Context, Error, Request, RequestExt, Response, service_fn};
use lambda_idempotency::atomic::AtomicWrites;
use lambda_idempotency::clock::{Clock, ManualClock, SystemClock};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::{Record, Status};
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use tokio::sync::Notify;
use tower::{Layer, ServiceExt};

/// The layer's default maximum lease, the lease of a request without a deadline.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// The default lease margin added to a known deadline.
const MARGIN: Duration = Duration::from_secs(3);

/// What the handler does on one run.
#[derive(Clone)]
enum Run {
    /// Answers 201 (and, with an orders table, queues its charge atomically).
    Charge,
    /// Returns an error.
    Fail,
    /// Panics.
    Panic,
    /// Waits until notified, then charges: a run that outlives its deadline.
    ChargeAfter(Arc<Notify>),
}

struct Fixture {
    store: FaultyStore<Arc<dyn Store>>,
    clock: ManualClock,
    /// Handler runs that started.
    runs: Arc<AtomicUsize>,
    /// What the next runs do; `Charge` once empty.
    plan: Arc<Mutex<VecDeque<Run>>>,
    /// Atomic scenarios: the table the handler's charges are committed to.
    orders: Option<(aws_sdk_dynamodb::Client, String)>,
}

impl Fixture {
    async fn memory() -> Self {
        let clock = ManualClock::new(SystemClock.now_millis());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clone()));
        Self::new(store, clock, None)
    }

    async fn dynamodb() -> Self {
        let clock = ManualClock::new(SystemClock.now_millis());
        let client = support::client().await;
        let table = support::fresh_table(&client, &AttributeNames::default()).await;
        let store: Arc<dyn Store> =
            Arc::new(DynamoDbStore::new(client, table).with_clock(clock.clone()));
        Self::new(store, clock, None)
    }

    async fn redis() -> Self {
        let clock = ManualClock::new(SystemClock.now_millis());
        let store: Arc<dyn Store> = Arc::new(support::redis_store(clock.clone()).await);
        Self::new(store, clock, None)
    }

    /// DynamoDB, with the handler's charges committed in the completion's transaction.
    async fn dynamodb_atomic() -> Self {
        let mut fixture = Self::dynamodb().await;
        let client = support::client().await;
        let orders = support::fresh_pk_table(&client, "orders").await;
        fixture.orders = Some((client, orders));
        fixture
    }

    fn new(
        store: Arc<dyn Store>,
        clock: ManualClock,
        orders: Option<(aws_sdk_dynamodb::Client, String)>,
    ) -> Self {
        Self {
            store: FaultyStore::new(store),
            clock,
            runs: Arc::default(),
            plan: Arc::default(),
            orders,
        }
    }

    fn then(&self, run: Run) {
        self.plan.lock().unwrap().push_back(run);
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Charges committed to the orders table (atomic scenarios).
    async fn committed_charges(&self) -> usize {
        let (client, table) = self.orders.as_ref().expect("an atomic fixture");
        let out = client.scan().table_name(table).send().await.unwrap();
        out.items().len()
    }

    async fn record(&self, key: &str) -> Option<Record> {
        self.store.inner().get(&partition_key(key)).await.unwrap()
    }

    /// The layer over the faulty store and a handler that follows the plan.
    fn service(
        &self,
    ) -> impl tower::Service<Request, Response = Response<Body>, Error = Error, Future: Send>
    + Clone
    + use<> {
        let runs = Arc::clone(&self.runs);
        let plan = Arc::clone(&self.plan);
        let orders = self.orders.as_ref().map(|(_, table)| table.clone());
        let handler = service_fn(move |_request: Request| {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let next = plan.lock().unwrap().pop_front().unwrap_or(Run::Charge);
            let orders = orders.clone();
            async move {
                match next {
                    Run::Charge => {}
                    Run::Fail => return Err(Error::from("the payment provider timed out")),
                    Run::Panic => panic!("the handler panicked on run {run}"),
                    Run::ChargeAfter(go) => go.notified().await,
                }
                if let Some(table) = orders {
                    let put = Put::builder()
                        .table_name(table)
                        .item("pk", AttributeValue::S(format!("charge-{run}")))
                        .build()?;
                    AtomicWrites::current()
                        .expect("the DynamoDB store commits atomically")
                        .push(TransactWriteItem::builder().put(put).build())?;
                }
                Ok::<_, Error>(
                    Response::builder()
                        .status(201)
                        .header("content-type", "application/json")
                        .body(Body::from(format!(r#"{{"chargeId":"charge-{run}"}}"#)))?,
                )
            }
        });
        IdempotencyLayer::builder(self.store.clone())
            .clock(self.clock.clone())
            .build()
            .unwrap()
            .layer(handler)
    }

    /// The request, as invoked with `left` until its deadline.
    fn with_deadline(&self, request: Request, left: Duration) -> Request {
        let mut context = Context::default();
        context.deadline =
            u64::try_from(self.clock.now_millis() + left.as_millis() as i64).unwrap();
        request.with_lambda_context(context)
    }

    /// Sends one request; `deadline_in` sets the invocation's deadline from now.
    async fn send(&self, key: &str, deadline_in: Option<Duration>) -> Answer {
        let mut request = request(key);
        if let Some(left) = deadline_in {
            request = self.with_deadline(request, left);
        }
        let call = self.service().oneshot(request);
        match AssertUnwindSafe(call).catch_unwind().await {
            Ok(Ok(response)) => Answer::of(response),
            Ok(Err(e)) => Answer::Error(e.to_string()),
            Err(_) => Answer::Panicked,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Http {
        status: u16,
        content_type: String,
        retry_after: Option<u64>,
        replayed: bool,
        body: String,
    },
    Error(String),
    Panicked,
}

impl Answer {
    fn of(response: Response<Body>) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        Self::Http {
            status: response.status().as_u16(),
            content_type: header("content-type").unwrap_or_default(),
            retry_after: header("retry-after").map(|v| v.parse().unwrap()),
            replayed: header(IDEMPOTENT_REPLAYED).as_deref() == Some("true"),
            body: match response.body() {
                Body::Text(text) => text.clone(),
                Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            },
        }
    }

    /// A fresh (not replayed) 201 with this charge.
    fn assert_charged(&self, charge: usize) {
        match self {
            Self::Http {
                status: 201,
                replayed: false,
                body,
                ..
            } => {
                assert_eq!(body, &format!(r#"{{"chargeId":"charge-{charge}"}}"#));
            }
            other => panic!("expected charge-{charge} answered fresh, got {other:?}"),
        }
    }

    /// The replay of this charge.
    fn assert_replay_of(&self, charge: usize) {
        match self {
            Self::Http {
                status: 201,
                replayed: true,
                body,
                ..
            } => {
                assert_eq!(body, &format!(r#"{{"chargeId":"charge-{charge}"}}"#));
            }
            other => panic!("expected the replay of charge-{charge}, got {other:?}"),
        }
    }

    /// A problem response with this status and type suffix, and a Retry-After of at
    /// most `max_retry_after` seconds when given.
    fn assert_problem(&self, expected: u16, kind: &str, max_retry_after: Option<u64>) {
        match self {
            Self::Http {
                status,
                content_type,
                retry_after,
                body,
                ..
            } => {
                assert_eq!(*status, expected, "{self:?}");
                assert_eq!(content_type, "application/problem+json", "{self:?}");
                assert!(body.contains(kind), "problem type {kind} expected: {body}");
                if let Some(max) = max_retry_after {
                    let after = retry_after.expect("a Retry-After header");
                    assert!(
                        (1..=max).contains(&after),
                        "Retry-After {after} s, lease {max} s"
                    );
                }
            }
            other => panic!("expected a {expected} problem, got {other:?}"),
        }
    }
}

fn request(key: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/charges")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"amountCents":2500,"currency":"EUR"}"#))
        .unwrap()
}

fn partition_key(key: &str) -> String {
    Scope::new(
        "POST /charges",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

const IN_FLIGHT: &str = "request-in-progress";
const UNAVAILABLE: &str = "store-unavailable";

// --- scenarios for every store ------------------------------------------------------

/// Begin never reaches the store: 503, the handler does not run, nothing is stored;
/// the retry runs once.
async fn begin_unavailable(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Begin, Fault::Unavailable, 1);
    fx.send(&key, None)
        .await
        .assert_problem(503, UNAVAILABLE, Some(60));
    assert_eq!(fx.runs(), 0);
    assert_eq!(fx.record(&key).await, None);

    fx.send(&key, None).await.assert_charged(1);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// Begin lands but its answer is lost: 503, handler not run; the key answers "in
/// flight" until the lease lapses (never longer), then the retry runs once.
async fn begin_answer_lost(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Begin, Fault::AnswerLost, 1);
    fx.send(&key, None)
        .await
        .assert_problem(503, UNAVAILABLE, Some(60));
    assert_eq!(fx.runs(), 0);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Pending);

    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(LEASE.as_secs()));
    fx.clock.advance(LEASE - Duration::from_secs(1));
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(1));
    assert_eq!(fx.runs(), 0);

    fx.clock.advance(Duration::from_secs(2));
    fx.send(&key, None).await.assert_charged(1);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// Storing the response fails three times, then the store is back: the layer retries
/// within the lease, so the key completes and the run is never repeated.
async fn complete_unavailable_then_back(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Complete, Fault::Unavailable, 3);
    fx.send(&key, None).await.assert_charged(1);
    assert_eq!(fx.store.injected(Step::Complete), 3);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Completed);

    fx.clock.advance(LEASE * 2);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// The completion lands but its answer is lost: the retried write recognises its own
/// record, and the key replays.
async fn complete_answer_lost(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Complete, Fault::AnswerLost, 1);
    fx.send(&key, None).await.assert_charged(1);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Completed);
    fx.clock.advance(LEASE * 2);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// The store stays down after a non-atomic handler ran: the client still gets the
/// handler's answer, and duplicates are held off ("in flight") for the whole lease.
/// After the lease a duplicate runs again: a side effect made outside the store
/// cannot be protected once the store is gone for longer than the lease. That is the
/// limit the README states, and what atomic completion removes (see the atomic
/// scenarios below, where the same fault commits exactly one charge).
async fn complete_down_for_the_whole_lease(fx: Fixture) {
    let key = new_key();
    let deadline = Duration::from_millis(1_500); // leaves 0.5 s of retries
    fx.store.inject(Step::Complete, Fault::Unavailable, 1_000);
    fx.send(&key, Some(deadline)).await.assert_charged(1);
    assert!(fx.store.injected(Step::Complete) > 1, "storing was retried");
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Pending);

    // The lease is the deadline plus the margin: 4.5 s.
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(5));
    assert_eq!(fx.runs(), 1, "no second run while the lease holds");

    // The store is back, and the lease lapses.
    fx.store.clear(Step::Complete);
    fx.clock
        .advance(deadline + MARGIN + Duration::from_millis(1));
    fx.send(&key, None).await.assert_charged(2);
    assert_eq!(fx.runs(), 2);
}

/// The handler fails and marking the record ERRORED fails too: the error goes back to
/// the caller, the key is held only until its lease lapses, and then runs again.
async fn fail_unavailable_after_a_handler_error(fx: Fixture) {
    let key = new_key();
    fx.then(Run::Fail);
    fx.store.inject(Step::Fail, Fault::Unavailable, 1);
    assert_eq!(
        fx.send(&key, None).await,
        Answer::Error("the payment provider timed out".into())
    );
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Pending);
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(LEASE.as_secs()));

    fx.clock.advance(LEASE + Duration::from_secs(1));
    fx.send(&key, None).await.assert_charged(2);
    fx.send(&key, None).await.assert_replay_of(2);
    assert_eq!(fx.runs(), 2);
}

/// The handler panics: the panic reaches the runtime, the record is ERRORED and the
/// retry runs at once; with marking ERRORED failing as well, only after the lease.
async fn handler_panics(fx: Fixture) {
    let key = new_key();
    fx.then(Run::Panic);
    assert_eq!(fx.send(&key, None).await, Answer::Panicked);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Errored);
    fx.send(&key, None).await.assert_charged(2);
    fx.send(&key, None).await.assert_replay_of(2);

    let key = new_key();
    fx.then(Run::Panic);
    fx.store.inject(Step::Fail, Fault::Unavailable, 1);
    assert_eq!(fx.send(&key, None).await, Answer::Panicked);
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(LEASE.as_secs()));
    fx.clock.advance(LEASE + Duration::from_secs(1));
    fx.send(&key, None).await.assert_charged(4);
    assert_eq!(fx.runs(), 4);
}

/// A run outlives its deadline (its lease ends the margin later); a retry after that
/// takes the key over and completes. The late run's completion is fenced off: the record keeps the
/// retry's answer, and every later duplicate replays that one answer.
async fn run_past_its_deadline(fx: Fixture) {
    let key = new_key();
    let go = Arc::new(Notify::new());
    fx.then(Run::ChargeAfter(Arc::clone(&go)));
    let deadline = Duration::from_secs(3);
    let late = {
        let service = fx.service();
        let request = fx.with_deadline(request(&key), deadline);
        tokio::spawn(service.oneshot(request))
    };
    while fx.runs() == 0 {
        tokio::task::yield_now().await;
    }
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(6));

    // The lease (deadline plus margin) lapses.
    fx.clock
        .advance(deadline + MARGIN + Duration::from_millis(1));
    fx.send(&key, None).await.assert_charged(2);
    go.notify_one();
    let late = Answer::of(late.await.unwrap().unwrap());
    if fx.orders.is_some() {
        // Its charge was never committed, so it must not answer as if it had been.
        late.assert_problem(409, IN_FLIGHT, Some(1));
        assert_eq!(fx.committed_charges().await, 1);
    } else {
        // Outside a transaction its effect happened (Lambda would have stopped it at
        // the deadline); the layer still keeps one answer for the key.
        late.assert_charged(1);
    }
    let record = fx.record(&key).await.unwrap();
    assert_eq!(record.status, Status::Completed);
    fx.send(&key, None).await.assert_replay_of(2);
    assert_eq!(fx.runs(), 2);
}

// --- atomic completion (DynamoDB only) ------------------------------------------------

/// The transaction fails to reach the store three times, then the store is back:
/// the layer commits on a later attempt, once.
async fn atomic_complete_unavailable_then_back(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Complete, Fault::Unavailable, 3);
    fx.send(&key, None).await.assert_charged(1);
    assert_eq!(fx.store.injected(Step::Complete), 3);
    assert_eq!(fx.committed_charges().await, 1);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// The transaction commits but its answer is lost: the layer finds its own
/// completion and answers with the committed result; exactly one charge.
async fn atomic_complete_answer_lost(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Complete, Fault::AnswerLost, 1);
    fx.send(&key, None).await.assert_charged(1);
    assert_eq!(fx.committed_charges().await, 1);
    fx.clock.advance(LEASE * 2);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.committed_charges().await, 1);
    assert_eq!(fx.runs(), 1);
}

/// The transaction commits but its answer is lost, and the store then stays down
/// past the retry budget: the fenced fail finds the record COMPLETED under this
/// lease, so the client gets the committed answer, not a 503.
async fn atomic_commit_lost_then_store_down(fx: Fixture) {
    let key = new_key();
    fx.store.inject(Step::Complete, Fault::AnswerLost, 1);
    fx.store.inject(Step::Complete, Fault::Unavailable, 1_000);
    fx.send(&key, Some(Duration::from_millis(1_500)))
        .await
        .assert_charged(1);
    assert_eq!(fx.committed_charges().await, 1);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Completed);
    fx.store.clear(Step::Complete);
    fx.send(&key, None).await.assert_replay_of(1);
    assert_eq!(fx.runs(), 1);
}

/// The store goes down after the handler ran and stays down for the whole lease:
/// nothing was committed, so the client gets a 503 (not the handler's answer), the
/// key is held until the lease lapses, and then the retry commits the one charge.
async fn atomic_store_down_for_the_whole_lease(fx: Fixture) {
    let key = new_key();
    let deadline = Duration::from_millis(1_500); // leaves 0.5 s of retries
    fx.store.inject(Step::Complete, Fault::Unavailable, 1_000);
    fx.store.inject(Step::Fail, Fault::Unavailable, 1);
    fx.send(&key, Some(deadline))
        .await
        .assert_problem(503, UNAVAILABLE, Some(60));
    assert!(
        fx.store.injected(Step::Complete) > 1,
        "committing was retried"
    );
    assert_eq!(fx.committed_charges().await, 0);
    assert_eq!(fx.record(&key).await.unwrap().status, Status::Pending);
    fx.send(&key, None)
        .await
        .assert_problem(409, IN_FLIGHT, Some(5));

    fx.store.clear(Step::Complete);
    fx.clock
        .advance(deadline + MARGIN + Duration::from_millis(1));
    fx.send(&key, None).await.assert_charged(2);
    fx.send(&key, None).await.assert_replay_of(2);
    assert_eq!(fx.committed_charges().await, 1);
}

macro_rules! scenarios {
    ($fixture:ident: $($scenario:ident),* $(,)?) => {
        mod $fixture {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Fixture::$fixture().await).await;
                }
            )*
        }
    };
}

scenarios!(memory:
    begin_unavailable,
    begin_answer_lost,
    complete_unavailable_then_back,
    complete_answer_lost,
    complete_down_for_the_whole_lease,
    fail_unavailable_after_a_handler_error,
    handler_panics,
    run_past_its_deadline,
);

scenarios!(dynamodb:
    begin_unavailable,
    begin_answer_lost,
    complete_unavailable_then_back,
    complete_answer_lost,
    complete_down_for_the_whole_lease,
    fail_unavailable_after_a_handler_error,
    handler_panics,
    run_past_its_deadline,
);

scenarios!(redis:
    begin_unavailable,
    begin_answer_lost,
    complete_unavailable_then_back,
    complete_answer_lost,
    complete_down_for_the_whole_lease,
    fail_unavailable_after_a_handler_error,
    handler_panics,
    run_past_its_deadline,
);

scenarios!(dynamodb_atomic:
    begin_unavailable,
    begin_answer_lost,
    complete_answer_lost,
    handler_panics,
    run_past_its_deadline,
    atomic_complete_unavailable_then_back,
    atomic_complete_answer_lost,
    atomic_commit_lost_then_store_down,
    atomic_store_down_for_the_whole_lease,
);
