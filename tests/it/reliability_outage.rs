//! DynamoDB Local killed (SIGKILL) and restarted in the middle of a load run. While it
//! is down the layer answers 503 with Retry-After and runs no handler; requests whose
//! handler already ran keep trying to store their response until it is back. The run
//! ends with every key completed and exactly one side effect per key, for plain
//! handlers and for handlers whose writes commit atomically with the completion.
//!
//! The test starts a DynamoDB Local of its own (data on disk, so a restart keeps it,
//! as the real service would), on a free random port. Needs `DYNAMODB_LOCAL_JAR` and
//! `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use crate::process;
use crate::support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use lambda_http::{Body, Error, Request, Response, service_fn};
use lambda_idempotency::atomic::AtomicWrites;
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::ops::create_table;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use process::DynamoDbProcess;
use tower::{BoxError, Layer, ServiceExt};

/// Keys in the run; each is sent by two clients at once.
pub(crate) const KEYS: usize = 60;
/// Keys worked on at the same time.
pub(crate) const WORKERS: usize = 8;
/// Longest a key may take to complete: far more than the outage, so hitting it means
/// a key was stuck, not that the machine was slow.
const KEY_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause before a client sends again after a 409 or a 503.
const CLIENT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) type Handler = tower::util::BoxCloneSyncService<Request, Response<Body>, BoxError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The side effect happens in the handler (counted in memory).
    Plain,
    /// The side effect is a DynamoDB write committed with the completion.
    Atomic,
}

struct Run {
    plain: Handler,
    atomic: Handler,
    /// Plain side effects, per key.
    effects: Arc<Mutex<HashMap<String, usize>>>,
    /// Handler runs, per key (both kinds).
    runs: Arc<Mutex<HashMap<String, usize>>>,
    orders: String,
    client: Client,
    store: DynamoDbStore,
}

pub(crate) fn key_of(request: &Request) -> String {
    request.headers()["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A request as API Gateway invokes the function: its Lambda deadline 29 s away, so
/// a request whose begin was applied but never answered (the store killed between
/// the two) holds its key for at most the deadline plus the lease margin.
pub(crate) fn request(kind: Kind, key: &str) -> Request {
    let route = match kind {
        Kind::Plain => "/plain",
        Kind::Atomic => "/atomic",
    };
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri(route)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"sku":"SKU-7","quantity":1}"#))
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    support::events::with_deadline(request, i64::try_from(now_ms).unwrap() + 29_000)
}

impl Run {
    async fn new(endpoint: &str) -> Self {
        let client = support::client_for(endpoint).await;
        let table = "idempotency";
        create_table(&client, table, &AttributeNames::default())
            .await
            .unwrap();
        let orders = support::fresh_pk_table(&client, "orders").await;
        let store = DynamoDbStore::new(client.clone(), table);
        let effects = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let runs = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let layer = IdempotencyLayer::builder(store.clone()).build().unwrap();

        let plain = {
            let (effects, runs) = (Arc::clone(&effects), Arc::clone(&runs));
            service_fn(move |request: Request| {
                let key = key_of(&request);
                *runs.lock().unwrap().entry(key.clone()).or_default() += 1;
                let n = {
                    let mut effects = effects.lock().unwrap();
                    let n = effects.entry(key.clone()).or_default();
                    *n += 1;
                    *n
                };
                async move { reply(&key, n) }
            })
        };
        let atomic = {
            let (runs, orders) = (Arc::clone(&runs), orders.clone());
            service_fn(move |request: Request| {
                let key = key_of(&request);
                let n = {
                    let mut runs = runs.lock().unwrap();
                    let n = runs.entry(key.clone()).or_default();
                    *n += 1;
                    *n
                };
                let orders = orders.clone();
                async move {
                    // A new item per run: a second commit would show as a second item.
                    let put = Put::builder()
                        .table_name(orders)
                        .item("pk", AttributeValue::S(format!("{key}#{n}")))
                        .item("key", AttributeValue::S(key.clone()))
                        .build()?;
                    AtomicWrites::current()
                        .expect("the DynamoDB store commits atomically")
                        .push(TransactWriteItem::builder().put(put).build())?;
                    reply(&key, n)
                }
            })
        };
        Self {
            plain: Handler::new(layer.clone().layer(plain).map_err(BoxError::from)),
            atomic: Handler::new(layer.layer(atomic).map_err(BoxError::from)),
            effects,
            runs,
            orders,
            client,
            store,
        }
    }

    fn service(&self, kind: Kind) -> Handler {
        match kind {
            Kind::Plain => self.plain.clone(),
            Kind::Atomic => self.atomic.clone(),
        }
    }

    /// Committed atomic side effects, per key.
    async fn committed(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.orders)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let key = item["key"].as_s().unwrap().clone();
                *counts.entry(key).or_default() += 1;
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return counts;
            }
        }
    }
}

pub(crate) fn reply(key: &str, n: usize) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"key":"{key}","run":{n}}}"#)))?)
}

/// What the clients saw over the whole run.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) originals: usize,
    pub(crate) replays: usize,
    pub(crate) in_flight: usize,
    pub(crate) unavailable: usize,
    pub(crate) unexpected: BTreeMap<String, usize>,
}

pub(crate) fn text(body: &Body) -> String {
    match body {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

/// Sends one key's request until it gets a 201 (fresh or replayed); returns its body.
pub(crate) async fn client(
    service: Handler,
    kind: Kind,
    key: String,
    seen: Arc<Mutex<Seen>>,
) -> String {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        assert!(
            started.elapsed() < KEY_TIMEOUT,
            "key {key} ({kind:?}) did not complete within {KEY_TIMEOUT:?}: it is stuck; last answer: {last}"
        );
        let answer = service.clone().oneshot(request(kind, &key)).await;
        let (status, problem, retry_after, replayed, body) = match answer {
            Ok(response) => (
                response.status().as_u16(),
                response
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json"),
                response.headers().contains_key("retry-after"),
                response.headers().contains_key(IDEMPOTENT_REPLAYED),
                text(response.body()),
            ),
            Err(e) => (0, false, false, false, format!("error: {e}")),
        };
        last = format!("{status} {body}");
        {
            let mut seen = seen.lock().unwrap();
            match status {
                201 if replayed => {
                    seen.replays += 1;
                    return body;
                }
                201 => {
                    seen.originals += 1;
                    return body;
                }
                409 if problem && retry_after && body.contains("request-in-progress") => {
                    seen.in_flight += 1;
                }
                503 if problem && retry_after && body.contains("store-unavailable") => {
                    seen.unavailable += 1;
                }
                _ => {
                    *seen
                        .unexpected
                        .entry(format!("{status} {body}"))
                        .or_default() += 1
                }
            }
        }
        tokio::time::sleep(CLIENT_BACKOFF).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_killed_and_restarted_mid_run() {
    let mut dynamodb = tokio::task::block_in_place(DynamoDbProcess::start);
    let run = Arc::new(Run::new(&dynamodb.endpoint()).await);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let queue: Arc<Mutex<VecDeque<(Kind, String)>>> = Arc::new(Mutex::new(
        (0..KEYS)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    Kind::Plain
                } else {
                    Kind::Atomic
                };
                (kind, uuid::Uuid::new_v4().to_string())
            })
            .collect(),
    ));
    let done = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (run, seen, queue, done) = (
                Arc::clone(&run),
                Arc::clone(&seen),
                Arc::clone(&queue),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let Some((kind, key)) = queue.lock().unwrap().pop_front() else {
                        return answered;
                    };
                    // Two clients send the same request at once.
                    let a = tokio::spawn(client(
                        run.service(kind),
                        kind,
                        key.clone(),
                        Arc::clone(&seen),
                    ));
                    let b = tokio::spawn(client(
                        run.service(kind),
                        kind,
                        key.clone(),
                        Arc::clone(&seen),
                    ));
                    let (a, b) = (a.await.unwrap(), b.await.unwrap());
                    assert_eq!(a, b, "both clients of key {key} got the same answer");
                    answered.push((kind, key, a));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Let a quarter of the keys complete, then kill DynamoDB Local mid-run.
    while done.load(Ordering::SeqCst) < KEYS / 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outage = Instant::now();
    tokio::task::block_in_place(|| dynamodb.kill());

    // While it is down: a new request gets a 503 with Retry-After, and no handler runs.
    // (The probe's own client gives up at once, so the outage stays short.)
    let probe_layer = IdempotencyLayer::builder(DynamoDbStore::new(
        no_retry_client(&dynamodb.endpoint()).await,
        "idempotency",
    ))
    .build()
    .unwrap();
    let probe_runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&probe_runs);
    let probe = probe_layer.layer(service_fn(move |_request: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { reply("probe", 1) }
    }));
    let answer = probe
        .oneshot(request(Kind::Plain, &uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 503, "{:?}", text(answer.body()));
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert!(answer.headers().contains_key("retry-after"));
    assert_eq!(
        probe_runs.load(Ordering::SeqCst),
        0,
        "no handler runs while the store is down"
    );

    tokio::task::block_in_place(|| dynamodb.restart());
    let outage = outage.elapsed();

    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("no worker panics"));
    }

    // Exactly one side effect per key, every record COMPLETED, every answer its own.
    let seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:?}",
        seen.unexpected
    );
    let effects = run.effects.lock().unwrap().clone();
    let committed = run.committed().await;
    for (kind, key, body) in &answers {
        let count = match kind {
            Kind::Plain => effects.get(key).copied().unwrap_or(0),
            Kind::Atomic => committed.get(key).copied().unwrap_or(0),
        };
        assert_eq!(count, 1, "key {key} ({kind:?}): {count} side effects");
        let route = match kind {
            Kind::Plain => "POST /plain",
            Kind::Atomic => "POST /atomic",
        };
        let pk = Scope::new(route, ANONYMOUS_ACTOR, IdempotencyKey::parse(key).unwrap());
        let record = run.store.get(pk.partition_key()).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Completed, "key {key}");
        assert!(
            body.contains(key.as_str()),
            "key {key} got another key's answer: {body}"
        );
    }
    assert_eq!(answers.len(), KEYS);
    let reruns: usize = run.runs.lock().unwrap().values().map(|n| n - 1).sum();
    println!(
        "outage of {:.1} s: {KEYS} keys x 2 clients: {} fresh, {} replays, {} in flight, \
         {} store unavailable; {reruns} handler runs beyond one per key",
        outage.as_secs_f64(),
        seen.originals,
        seen.replays,
        seen.in_flight,
        seen.unavailable,
    );
}

/// A client that sends each call once, so a request against a dead endpoint fails
/// at once.
async fn no_retry_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&support::sdk_config().await)
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}
