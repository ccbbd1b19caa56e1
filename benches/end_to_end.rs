//! End-to-end latency against DynamoDB Local: the HTTP layer over `DynamoDbStore`
//! compared, in the same run, with the same handler unwrapped and with the raw
//! DynamoDB round trips the layer needs, issued directly with the SDK.
//!
//!     scripts/with-dynamodb-local.sh cargo bench --bench end_to_end
//!
//! Scenarios, interleaved round by round so that a noisy machine affects them alike:
//!
//! - `unwrapped`: the handler alone (no store);
//! - `raw new key`: a conditional `PutItem` writing a `PENDING` item, then the fenced
//!   `UpdateItem` storing the response, with the same attributes, conditions and
//!   response size as the store's;
//! - `raw failing put`: one conditional `PutItem` that fails on a completed item and
//!   returns it (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), as a replay and a
//!   conflict cost;
//! - `layer new key` / `layer replay` / `layer conflict` (same key, different body).
//!
//! Added latency = layer - unwrapped; its ratio to the raw round trips should stay
//! within 1.1. DynamoDB calls per request are counted by an SDK interceptor.
//! Results: a table on stdout and `target/bench-results/end_to_end.json`.
//!
//! `E2E_ITERATIONS` (default 2000) and `E2E_WARMUP` (default 200) set the rounds.
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a few rounds as a
//! smoke check and writes nothing.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::__internals::{StoredResponse, fingerprint_of};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer, route_of};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::ops::{FORMAT_VERSION, create_table, expiry_bucket};
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use serde_json::json;
use support::{CallCounter, Stats, json_of, request, us};
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Issues, with the SDK directly, the calls the store makes, on items shaped like
/// the store's (same attributes, conditions, response size).
struct Raw {
    client: Client,
    table: String,
    names: AttributeNames,
    route: String,
    fingerprint: String,
    response: Vec<u8>,
}

impl Raw {
    fn partition_key(&self, key: &str) -> String {
        Scope::new(
            self.route.clone(),
            ANONYMOUS_ACTOR,
            IdempotencyKey::parse(key).unwrap(),
        )
        .partition_key()
        .to_owned()
    }

    fn pending_item(&self, key: &str, pk: &str, now: i64) -> HashMap<String, AttributeValue> {
        let n = &self.names;
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let num = |v: i64| AttributeValue::N(v.to_string());
        let expires_at = (now + 24 * 3600 * 1000) / 1000;
        HashMap::from([
            (n.partition_key.clone(), s(pk)),
            (n.status.clone(), s("PENDING")),
            (n.fingerprint.clone(), s(&self.fingerprint)),
            (
                n.lease_token.clone(),
                s(&uuid::Uuid::new_v4().simple().to_string()),
            ),
            (n.lease_expires_at.clone(), num(now + 15 * 60 * 1000)),
            (n.expires_at.clone(), num(expires_at)),
            (n.created_at.clone(), num(now)),
            (n.updated_at.clone(), num(now)),
            (n.route.clone(), s(&self.route)),
            (n.actor.clone(), s(ANONYMOUS_ACTOR)),
            (n.key.clone(), s(key)),
            (n.format.clone(), num(i64::from(FORMAT_VERSION))),
            (n.expiry_bucket.clone(), s(&expiry_bucket(expires_at, pk))),
        ])
    }

    /// The store's begin: `item` put unless a live record blocks it (the store's
    /// condition), returning the blocking item when it does.
    fn begin_put(
        &self,
        item: HashMap<String, AttributeValue>,
        now: i64,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let n = &self.names;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR #exp < :now_s \
                 OR (#st = :pending AND #lease < :now_ms AND #fp = :fp) \
                 OR (#st = :errored AND #fp = :fp)",
            )
            .expression_attribute_names("#pk", &n.partition_key)
            .expression_attribute_names("#exp", &n.expires_at)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#lease", &n.lease_expires_at)
            .expression_attribute_names("#fp", &n.fingerprint)
            .expression_attribute_values(":now_s", AttributeValue::N((now / 1000).to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":errored", AttributeValue::S("ERRORED".into()))
            .expression_attribute_values(":fp", AttributeValue::S(self.fingerprint.clone()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// The store's begin: a conditional `PutItem`. `Ok(true)` if written, `Ok(false)`
    /// if the condition failed (with the blocking item returned).
    async fn put(&self, key: &str) -> bool {
        let n = &self.names;
        let now = now_ms();
        let pk = self.partition_key(key);
        let result = self
            .begin_put(self.pending_item(key, &pk, now), now)
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    unreachable!()
                };
                assert!(
                    failed.item().is_some_and(|i| i.contains_key(&n.response)),
                    "the failed PutItem should return the completed item"
                );
                false
            }
            Err(e) => panic!("PutItem failed: {e:?}"),
        }
    }

    /// The store's completion: `UpdateItem` fenced on the lease token.
    async fn complete(&self, key: &str) {
        let n = &self.names;
        let pk = self.partition_key(key);
        let token = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(&n.partition_key, AttributeValue::S(pk.clone()))
            .send()
            .await
            .expect("GetItem")
            .item()
            .and_then(|i| i.get(&n.lease_token))
            .and_then(|t| t.as_s().ok())
            .cloned()
            .expect("a lease token");
        self.update(&pk, &token).await;
    }

    async fn update(&self, pk: &str, token: &str) {
        let n = &self.names;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(&n.partition_key, AttributeValue::S(pk.to_owned()))
            .condition_expression("#tok = :tok AND #st = :pending")
            .update_expression("SET #st = :status, #upd = :now_ms, #resp = :resp REMOVE #enc")
            .expression_attribute_names("#tok", &n.lease_token)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#upd", &n.updated_at)
            .expression_attribute_names("#resp", &n.response)
            .expression_attribute_names("#enc", &n.response_encoding)
            .expression_attribute_values(":tok", AttributeValue::S(token.to_owned()))
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":status", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms().to_string()))
            .expression_attribute_values(
                ":resp",
                AttributeValue::B(Blob::new(self.response.clone())),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .expect("UpdateItem");
    }

    /// A new key: the conditional `PutItem`, then the fenced `UpdateItem` (with the
    /// token the put wrote, as the store keeps it in memory).
    async fn new_key(&self, key: &str) {
        let n = &self.names;
        let now = now_ms();
        let pk = self.partition_key(key);
        let item = self.pending_item(key, &pk, now);
        let token = item[&n.lease_token].as_s().unwrap().clone();
        self.begin_put(item, now)
            .send()
            .await
            .expect("PutItem of a new key");
        self.update(&pk, &token).await;
    }
}

const SCENARIOS: [&str; 6] = [
    "unwrapped",
    "raw new key",
    "raw failing put",
    "layer new key",
    "layer replay",
    "layer conflict",
];

const EXPECTED_CALLS: [&[&str]; 6] = [
    &[],
    &["PutItem", "UpdateItem"],
    &["PutItem"],
    &["PutItem", "UpdateItem"],
    &["PutItem"],
    &["PutItem"],
];

fn main() {
    let bench = support::bench_mode();
    support::dynamodb_endpoint("end_to_end");
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
    runtime.block_on(run(bench, iterations, warmup));
}

async fn run(bench: bool, iterations: usize, warmup: usize) {
    let counter = CallCounter::default();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let names = AttributeNames::default();
    let table = format!("idempotency-bench-{}", uuid::Uuid::new_v4().simple());
    create_table(&client, &table, &names)
        .await
        .expect("create the bench table");

    let body = json_of(1024);
    let other_body = json_of(1100);
    let probe = request("probe", &body);
    let raw = Raw {
        client: client.clone(),
        table: table.clone(),
        names: names.clone(),
        route: route_of(&probe),
        fingerprint: fingerprint_of(&probe).as_str().to_owned(),
        response: StoredResponse::capture(&handler_response(), |_| true).encode(),
    };

    let mut unwrapped = service_fn(handler);
    let mut layered = IdempotencyLayer::builder(DynamoDbStore::new(client.clone(), table.clone()))
        .build()
        .unwrap()
        .layer(service_fn(handler));

    // The records replay and conflict meet: completed once, before measuring.
    let first = layered
        .ready()
        .await
        .unwrap()
        .call(request("replayed", &body))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(raw.put("raw-completed").await, "a fresh raw key is written");
    raw.complete("raw-completed").await;
    counter.take();

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); SCENARIOS.len()];
    let mut calls = [0usize; SCENARIOS.len()];
    for round in 0..warmup + iterations {
        let measured = round >= warmup;
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            // Inputs are built before the clock starts: only the call is timed.
            let raw_key = format!("raw-new-{round}");
            let new_key = format!("new-{round}");
            let req = match i {
                0 => Some(request("k", &body)),
                3 => Some(request(&new_key, &body)),
                4 => Some(request("replayed", &body)),
                5 => Some(request("replayed", &other_body)),
                _ => None,
            };
            let started = Instant::now();
            let response = match (i, req) {
                (0, Some(req)) => Some(unwrapped.ready().await.unwrap().call(req).await),
                (1, _) => {
                    raw.new_key(&raw_key).await;
                    None
                }
                (2, _) => {
                    assert!(!raw.put("raw-completed").await, "raw put should fail");
                    None
                }
                (_, Some(req)) => Some(layered.ready().await.unwrap().call(req).await),
                _ => unreachable!(),
            };
            let elapsed = started.elapsed();
            if let Some(response) = response {
                let r = response.unwrap();
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
            let ops = counter.take();
            assert_eq!(
                ops, EXPECTED_CALLS[i],
                "{scenario}: unexpected DynamoDB calls"
            );
            if measured {
                samples[i].push(elapsed);
                calls[i] += ops.len();
            }
        }
    }

    let stats: Vec<Stats> = samples.iter().map(|s| Stats::of(s)).collect();
    let calls_per_request: Vec<f64> = calls
        .iter()
        .map(|c| *c as f64 / iterations as f64)
        .collect();

    println!();
    println!(
        "end to end against DynamoDB Local: {iterations} measured rounds after {warmup} warm-up \
         rounds, 1 KB JSON request body"
    );
    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10}  {:>9}",
        "scenario", "p50 µs", "p99 µs", "min µs", "mean µs", "calls/req"
    );
    println!("{}", "-".repeat(89));
    let label = |i: usize| match i {
        0 => "unwrapped handler",
        1 => "raw PutItem + UpdateItem (new key)",
        2 => "raw failing PutItem (ALL_OLD)",
        3 => "layer, new key",
        4 => "layer, replay",
        _ => "layer, conflict (different body)",
    };
    for (i, s) in stats.iter().enumerate() {
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {:>9.2}",
            label(i),
            us(s.p50),
            us(s.p99),
            us(s.min),
            us(s.mean),
            calls_per_request[i]
        );
    }

    // Added latency = layer - unwrapped, against the raw round trips it needs.
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
        "{:<34} {:>12} {:>12} {:>8} {:>12} {:>12} {:>8}",
        "added latency vs raw round trips",
        "added p50",
        "raw p50",
        "ratio",
        "added p99",
        "raw p99",
        "ratio"
    );
    println!("{}", "-".repeat(104));
    let mut ratios = serde_json::Map::new();
    let mut worst_p50 = 0.0f64;
    for (name, layer, raw_index) in [("new key", 3, 1), ("replay", 4, 2), ("conflict", 5, 2)] {
        let (a50, r50, q50) = ratio(layer, raw_index, |s| s.p50);
        let (a99, r99, q99) = ratio(layer, raw_index, |s| s.p99);
        worst_p50 = worst_p50.max(q50);
        println!(
            "{:<34} {:>9.1} µs {:>9.1} µs {:>8.3} {:>9.1} µs {:>9.1} µs {:>8.3}",
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
            "target: added / raw <= 1.10 at p50: {} (worst {worst_p50:.3})",
            if worst_p50 <= 1.10 { "met" } else { "MISSED" }
        );
        let scenarios: serde_json::Map<String, serde_json::Value> = SCENARIOS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut v = stats[i].to_json_us();
                v["calls_per_request"] = json!(calls_per_request[i]);
                v["calls"] = json!(EXPECTED_CALLS[i]);
                ((*name).to_owned(), v)
            })
            .collect();
        let path = support::write_results(
            "end_to_end",
            &json!({
                "bench": "end_to_end",
                "date": support::utc_now(),
                "endpoint": std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default(),
                "iterations": iterations,
                "warmup": warmup,
                "request_body_bytes": body.len(),
                "scenarios": scenarios,
                "added_vs_raw": ratios,
                "target_ratio": 1.1,
                "target_met": worst_p50 <= 1.10,
            }),
        );
        println!("results: {}", path.display());
    } else {
        println!("(smoke run: pass --bench, as `cargo bench` does, for figures and results)");
    }

    let _ = client.delete_table().table_name(&table).send().await;
}
