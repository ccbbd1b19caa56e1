//! redis-server killed (SIGKILL) and restarted in the middle of a load run, as the
//! DynamoDB Local run in `reliability_outage.rs`: while it is down the layer answers
//! 503 with Retry-After and runs no handler; requests whose handler already ran keep
//! trying to store their response until it is back. The run ends with every key
//! completed and exactly one side effect per key.
//!
//! The test starts a redis-server of its own (an append-only file synced on every
//! write, so a restart keeps the records, as a durable deployment would) on a free
//! random port. Needs `redis-server`: run with `make test`.

use crate::reliability_outage::{
    Handler, KEYS, Kind, Seen, WORKERS, client, key_of, reply, request, text,
};
use crate::support::redis_process::RedisProcess;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_http::{Request, service_fn};
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::Store;
use lambda_idempotency::store::redis::RedisStore;
use tower::{BoxError, Layer, ServiceExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_mid_run() {
    let mut redis = tokio::task::block_in_place(RedisProcess::start);
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let effects = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = IdempotencyLayer::builder(store.clone()).build().unwrap();
    let service = {
        let (effects, runs) = (Arc::clone(&effects), Arc::clone(&runs));
        Handler::new(
            layer
                .layer(service_fn(move |request: Request| {
                    let key = key_of(&request);
                    runs.fetch_add(1, Ordering::SeqCst);
                    let n = {
                        let mut effects = effects.lock().unwrap();
                        let n = effects.entry(key.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    async move { reply(&key, n) }
                }))
                .map_err(BoxError::from),
        )
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let queue: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(
        (0..KEYS)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect(),
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (service, seen, queue, done) = (
                service.clone(),
                Arc::clone(&seen),
                Arc::clone(&queue),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let Some(key) = queue.lock().unwrap().pop_front() else {
                        return answered;
                    };
                    // Two clients send the same request at once.
                    let a = tokio::spawn(client(
                        service.clone(),
                        Kind::Plain,
                        key.clone(),
                        Arc::clone(&seen),
                    ));
                    let b = tokio::spawn(client(
                        service.clone(),
                        Kind::Plain,
                        key.clone(),
                        Arc::clone(&seen),
                    ));
                    let (a, b) = (a.await.unwrap(), b.await.unwrap());
                    assert_eq!(a, b, "both clients of key {key} got the same answer");
                    answered.push((key, a));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Let a quarter of the keys complete, then kill the server mid-run.
    while done.load(Ordering::SeqCst) < KEYS / 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outage = Instant::now();
    tokio::task::block_in_place(|| redis.kill());

    // While it is down: a new request gets a 503 with Retry-After, and no handler runs.
    let before = runs.load(Ordering::SeqCst);
    let probe_runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&probe_runs);
    let probe = layer.layer(service_fn(move |_request: Request| {
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

    tokio::task::block_in_place(|| redis.restart());
    let outage = outage.elapsed();

    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("no worker panics"));
    }

    let seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:?}",
        seen.unexpected
    );
    let effects = effects.lock().unwrap().clone();
    for (key, body) in &answers {
        let count = effects.get(key).copied().unwrap_or(0);
        assert_eq!(count, 1, "key {key}: {count} side effects");
        let scope = Scope::new(
            "POST /plain",
            ANONYMOUS_ACTOR,
            IdempotencyKey::parse(key).unwrap(),
        );
        let record = store.get(scope.partition_key()).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Completed, "key {key}");
        assert!(
            body.contains(key.as_str()),
            "key {key} got another key's answer: {body}"
        );
    }
    assert_eq!(answers.len(), KEYS);
    println!(
        "redis outage of {:.1} s: {KEYS} keys x 2 clients: {} fresh, {} replays, {} in flight, \
         {} store unavailable; {} handler runs when it went down, {} in all",
        outage.as_secs_f64(),
        seen.originals,
        seen.replays,
        seen.in_flight,
        seen.unavailable,
        before,
        runs.load(Ordering::SeqCst),
    );
}
