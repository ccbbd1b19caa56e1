//! End-to-end latency against a real redis-server: the HTTP layer over `RedisStore`
//! compared, in the same run, with the same handler unwrapped and with the raw Redis
//! round trips the store makes (its own two Lua scripts, sent with `EVALSHA` on the
//! same connection kind, with the same arguments), the Redis rows beside the
//! DynamoDB Local ones of `end_to_end`.
//!
//!     scripts/with-redis.sh cargo bench --bench end_to_end_redis
//!
//! Scenarios, interleaved round by round: `unwrapped`; `raw new key` (the begin
//! script writing a `PENDING` record, then the fenced update storing the response);
//! `raw blocked begin` (the begin script on a completed record, which returns it, as
//! a replay and a conflict cost); `layer new key` / `layer replay` / `layer conflict`.
//! Round trips per request are counted by the server (`EVALSHA` calls in `INFO
//! commandstats`, on a server no one else uses). Results: a table on stdout and `target/bench-results/end_to_end_redis.json`.
//!
//! `E2E_ITERATIONS` (default 2000) and `E2E_WARMUP` (default 200) set the rounds;
//! without `--bench` it does a few rounds as a smoke check and writes nothing.

mod support;

use std::time::{Duration, Instant};

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::__internals::{StoredResponse, fingerprint_of, redis_raw};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer, route_of};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::BeginRequest;
use lambda_idempotency::store::redis::RedisStore;
use serde_json::json;
use support::{Stats, json_of, request, us};
use tower::{Layer, Service, ServiceExt};

fn handler_response() -> Response<Body> {
    Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"orderId":"ord_1","status":"CREATED"}"#))
        .unwrap()
}

async fn handler(_req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(handler_response())
}

const SCENARIOS: [&str; 6] = [
    "unwrapped",
    "raw new key",
    "raw blocked begin",
    "layer new key",
    "layer replay",
    "layer conflict",
];

/// Round trips each scenario makes (one `EVALSHA` per script).
const EXPECTED_ROUND_TRIPS: [u64; 6] = [0, 2, 1, 2, 1, 1];

/// Scripts the server has run so far (`EVALSHA` and `EVAL` calls, from `INFO
/// commandstats`): the store's round trips. The commands a script runs inside count
/// under their own names and are left out.
async fn scripts_run(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn main() {
    let bench = support::bench_mode();
    let url = std::env::var("IDEMPOTENCY_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            eprintln!(
                "end_to_end_redis needs a redis-server: run it as `scripts/with-redis.sh cargo bench --bench end_to_end_redis` (or `make bench`)"
            );
            std::process::exit(2)
        });
    let (iterations, warmup) = if bench {
        (
            support::env_usize("E2E_ITERATIONS", 2000),
            support::env_usize("E2E_WARMUP", 200),
        )
    } else {
        (5, 2)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&url, bench, iterations, warmup));
}

async fn run(url: &str, bench: bool, iterations: usize, warmup: usize) {
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(url)
        .await
        .expect("the redis-server answers")
        .with_prefix(prefix.clone());
    let client = redis::Client::open(url).unwrap();
    let mut info = client.get_multiplexed_async_connection().await.unwrap();
    let raw = redis_raw::Raw::connect(url, &prefix).await;

    let body = json_of(1024);
    let other_body = json_of(1100);
    let probe = request("probe", &body);
    let route = route_of(&probe);
    let fingerprint = fingerprint_of(&probe);
    let response = StoredResponse::capture(&handler_response(), |_| true).encode();
    let begin_request = |key: &str| BeginRequest {
        scope: Scope::new(
            route.clone(),
            ANONYMOUS_ACTOR,
            IdempotencyKey::parse(key).unwrap(),
        ),
        fingerprint: fingerprint.clone(),
        lease: Duration::from_secs(15 * 60),
        expiry: Duration::from_secs(24 * 3600),
    };

    let mut unwrapped = service_fn(handler);
    let mut layered = IdempotencyLayer::builder(store)
        .build()
        .unwrap()
        .layer(service_fn(handler));

    // The records replay and conflict meet: completed once, before measuring; and
    // every script loaded, so EVALSHA never falls back to EVAL while measuring.
    let first = layered
        .ready()
        .await
        .unwrap()
        .call(request("replayed", &body))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let completed = begin_request("raw-completed");
    let token = raw.begin(&completed).await.expect("a fresh raw key begins");
    raw.complete(&completed, &token, &response).await;

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); SCENARIOS.len()];
    let mut commands = [0u64; SCENARIOS.len()];
    let mut seen = scripts_run(&mut info).await;
    for round in 0..warmup + iterations {
        let measured = round >= warmup;
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            let raw_new = begin_request(&format!("raw-new-{round}"));
            let req = match i {
                0 => Some(request("k", &body)),
                3 => Some(request(&format!("new-{round}"), &body)),
                4 => Some(request("replayed", &body)),
                5 => Some(request("replayed", &other_body)),
                _ => None,
            };
            let started = Instant::now();
            let answer = match (i, req) {
                (0, Some(req)) => Some(unwrapped.ready().await.unwrap().call(req).await),
                (1, _) => {
                    let token = raw.begin(&raw_new).await.expect("a new raw key begins");
                    raw.complete(&raw_new, &token, &response).await;
                    None
                }
                (2, _) => {
                    assert!(
                        raw.begin(&completed).await.is_none(),
                        "the raw begin is blocked"
                    );
                    None
                }
                (_, Some(req)) => Some(layered.ready().await.unwrap().call(req).await),
                _ => unreachable!(),
            };
            let elapsed = started.elapsed();
            if let Some(answer) = answer {
                let r = answer.unwrap();
                let (status, replayed) = match i {
                    0 | 3 => (201, false),
                    4 => (201, true),
                    _ => (409, false),
                };
                assert_eq!(r.status(), status, "{scenario}: status");
                assert_eq!(
                    r.headers().contains_key(IDEMPOTENT_REPLAYED),
                    replayed,
                    "{scenario}: {IDEMPOTENT_REPLAYED}"
                );
            }
            let now = scripts_run(&mut info).await;
            let sent = now - seen;
            seen = now;
            assert_eq!(
                sent, EXPECTED_ROUND_TRIPS[i],
                "{scenario}: Redis round trips"
            );
            if measured {
                samples[i].push(elapsed);
                commands[i] += sent;
            }
        }
    }

    let stats: Vec<Stats> = samples.iter().map(|s| Stats::of(s)).collect();
    let per_request: Vec<f64> = commands
        .iter()
        .map(|c| *c as f64 / iterations as f64)
        .collect();
    println!();
    println!(
        "end to end against redis-server: {iterations} measured rounds after {warmup} warm-up \
         rounds, 1 KB JSON request body"
    );
    println!();
    println!(
        "{:<38} {:>10} {:>10} {:>10} {:>10}  {:>9}",
        "scenario", "p50 µs", "p99 µs", "min µs", "mean µs", "trips/req"
    );
    println!("{}", "-".repeat(93));
    let label = |i: usize| match i {
        0 => "unwrapped handler",
        1 => "raw begin + fenced update (new key)",
        2 => "raw blocked begin (returns the record)",
        3 => "layer, new key",
        4 => "layer, replay",
        _ => "layer, conflict (different body)",
    };
    for (i, s) in stats.iter().enumerate() {
        println!(
            "{:<38} {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {:>9.2}",
            label(i),
            us(s.p50),
            us(s.p99),
            us(s.min),
            us(s.mean),
            per_request[i]
        );
    }
    let ratio = |layer: usize, raw: usize, pick: fn(&Stats) -> Duration| {
        let added = us(pick(&stats[layer]).saturating_sub(pick(&stats[0])));
        let raw_us = us(pick(&stats[raw]));
        (
            added,
            raw_us,
            (added / raw_us * 10_000.0).round() / 10_000.0,
        )
    };
    println!();
    println!(
        "{:<38} {:>12} {:>12} {:>8} {:>12} {:>12} {:>8}",
        "added latency vs raw round trips",
        "added p50",
        "raw p50",
        "ratio",
        "added p99",
        "raw p99",
        "ratio"
    );
    println!("{}", "-".repeat(108));
    let mut ratios = serde_json::Map::new();
    for (name, layer, raw_index) in [("new key", 3, 1), ("replay", 4, 2), ("conflict", 5, 2)] {
        let (a50, r50, q50) = ratio(layer, raw_index, |s| s.p50);
        let (a99, r99, q99) = ratio(layer, raw_index, |s| s.p99);
        println!(
            "{:<38} {:>9.1} µs {:>9.1} µs {:>8.3} {:>9.1} µs {:>9.1} µs {:>8.3}",
            name, a50, r50, q50, a99, r99, q99
        );
        ratios.insert(
            name.to_owned(),
            json!({
                "added_p50_us": a50, "raw_p50_us": r50, "ratio_p50": q50,
                "added_p99_us": a99, "raw_p99_us": r99, "ratio_p99": q99,
            }),
        );
    }
    println!();
    if bench {
        println!(
            "lookup (a blocked begin: one round trip that reads the record) p50: {:.1} µs",
            us(stats[2].p50)
        );
        let scenarios: serde_json::Map<String, serde_json::Value> = SCENARIOS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut v = stats[i].to_json_us();
                v["round_trips_per_request"] = json!(per_request[i]);
                ((*name).to_owned(), v)
            })
            .collect();
        let path = support::write_results(
            "end_to_end_redis",
            &json!({
                "bench": "end_to_end_redis",
                "date": support::utc_now(),
                "iterations": iterations,
                "warmup": warmup,
                "request_body_bytes": body.len(),
                "scenarios": scenarios,
                "added_vs_raw": ratios,
            }),
        );
        println!("results: {}", path.display());
    } else {
        println!("(smoke run: pass --bench, as `cargo bench` does, for figures and results)");
    }
}
