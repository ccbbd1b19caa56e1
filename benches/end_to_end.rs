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
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure,
};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::__internals::{StoredResponse, fingerprint_of};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer, route_of};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::ops::{
    EXPIRY_INDEX, FORMAT_VERSION, INFLIGHT_INDEX, create_table, expiry_bucket, expiry_shard,
};
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use serde_json::json;
use support::floor::{Floor, item_size};
use support::{CallCounter, Stats, json_of, request, thread_cpu, us};
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

    fn pending_item(&self, pk: &str, now: i64) -> HashMap<String, AttributeValue> {
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
            // Format 2: the readable partition key already holds route, actor, key.
            (n.format.clone(), num(i64::from(FORMAT_VERSION))),
            (n.expiry_bucket.clone(), s(&expiry_bucket(expires_at, pk))),
            (n.inflight_shard.clone(), s(&expiry_shard(pk).to_string())),
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
            .begin_put(self.pending_item(&pk, now), now)
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
        self.update_builder(pk, token)
            .send()
            .await
            .expect("UpdateItem");
    }

    /// The store's completion, fenced on the lease token.
    fn update_builder(
        &self,
        pk: &str,
        token: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let n = &self.names;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(&n.partition_key, AttributeValue::S(pk.to_owned()))
            .condition_expression("#tok = :tok AND #st = :pending")
            .update_expression("SET #st = :status, #upd = :now_ms, #resp = :resp REMOVE #enc, #ifs")
            .expression_attribute_names("#tok", &n.lease_token)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#upd", &n.updated_at)
            .expression_attribute_names("#resp", &n.response)
            .expression_attribute_names("#enc", &n.response_encoding)
            .expression_attribute_names("#ifs", &n.inflight_shard)
            .expression_attribute_values(":tok", AttributeValue::S(token.to_owned()))
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":status", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms().to_string()))
            .expression_attribute_values(
                ":resp",
                AttributeValue::B(Blob::new(self.response.clone())),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// A new key: the conditional `PutItem`, then the fenced `UpdateItem` (with the
    /// token the put wrote, as the store keeps it in memory).
    async fn new_key(&self, key: &str) {
        let n = &self.names;
        let now = now_ms();
        let pk = self.partition_key(key);
        let item = self.pending_item(&pk, now);
        let token = item[&n.lease_token].as_s().unwrap().clone();
        self.begin_put(item, now)
            .send()
            .await
            .expect("PutItem of a new key");
        self.update(&pk, &token).await;
    }
}

const SCENARIOS: [&str; 8] = [
    "unwrapped",
    "raw new key",
    "raw failing put",
    "layer new key",
    "layer replay",
    "layer conflict",
    "floor new key",
    "floor failing put",
];

const EXPECTED_CALLS: [&[&str]; 8] = [
    &[],
    &["PutItem", "UpdateItem"],
    &["PutItem"],
    &["PutItem", "UpdateItem"],
    &["PutItem"],
    &["PutItem"],
    &["PutItem", "UpdateItem"],
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
    // The floor stores the same response bytes as the layer.
    let floor = Floor::create(&client, raw.response.clone()).await;
    floor.new_key("floor-completed", now_ms()).await;
    counter.take();

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); SCENARIOS.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); SCENARIOS.len()];
    let mut calls = [0usize; SCENARIOS.len()];
    for round in 0..warmup + iterations {
        let measured = round >= warmup;
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            // Inputs are built before the clock starts: only the call is timed.
            let raw_key = format!("raw-new-{round}");
            let new_key = format!("new-{round}");
            let floor_key = format!("floor-new-{round}");
            let req = match i {
                0 => Some(request("k", &body)),
                3 => Some(request(&new_key, &body)),
                4 => Some(request("replayed", &body)),
                5 => Some(request("replayed", &other_body)),
                _ => None,
            };
            let cpu_started = thread_cpu();
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
                (6, _) => {
                    floor.new_key(&floor_key, now_ms()).await;
                    None
                }
                (7, _) => {
                    assert!(
                        floor.failing_put("floor-completed", now_ms()).await,
                        "floor put should fail with the item"
                    );
                    None
                }
                (_, Some(req)) => Some(layered.ready().await.unwrap().call(req).await),
                _ => unreachable!(),
            };
            let elapsed = started.elapsed();
            let cpu_used = thread_cpu().saturating_sub(cpu_started);
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
                cpu[i].push(cpu_used);
                calls[i] += ops.len();
            }
        }
    }

    let stats: Vec<Stats> = samples.iter().map(|s| Stats::of(s)).collect();
    let cpu_stats: Vec<Stats> = cpu.iter().map(|s| Stats::of(s)).collect();
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
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>9}",
        "scenario", "p50 µs", "p99 µs", "min µs", "mean µs", "CPU p50", "calls/req"
    );
    println!("{}", "-".repeat(100));
    let label = |i: usize| match i {
        0 => "unwrapped handler",
        1 => "raw PutItem + UpdateItem (new key)",
        2 => "raw failing PutItem (ALL_OLD)",
        3 => "layer, new key",
        4 => "layer, replay",
        5 => "layer, conflict (different body)",
        6 => "floor PutItem + UpdateItem",
        _ => "floor failing PutItem (ALL_OLD)",
    };
    for (i, s) in stats.iter().enumerate() {
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {:>9.2}",
            label(i),
            us(s.p50),
            us(s.p99),
            us(s.min),
            us(s.mean),
            us(cpu_stats[i].p50),
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
    // The layer against the floor: whole requests, wall and CPU, at p50.
    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>12} {:>12} {:>8}",
        "layer vs floor (whole request)",
        "layer p50",
        "floor p50",
        "wall",
        "layer CPU",
        "floor CPU",
        "CPU"
    );
    println!("{}", "-".repeat(104));
    let mut floor_ratios = serde_json::Map::new();
    for (name, layer, floor_index) in [("new key", 3, 6), ("replay", 4, 7), ("conflict", 5, 7)] {
        let round4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
        let (lw, fw) = (us(stats[layer].p50), us(stats[floor_index].p50));
        let (lc, fc) = (us(cpu_stats[layer].p50), us(cpu_stats[floor_index].p50));
        println!(
            "{:<34} {:>9.1} µs {:>9.1} µs {:>8.3} {:>9.1} µs {:>9.1} µs {:>8.3}",
            name,
            lw,
            fw,
            lw / fw,
            lc,
            fc,
            lc / fc
        );
        floor_ratios.insert(
            name.to_owned(),
            json!({
                "layer_p50_us": lw, "floor_p50_us": fw, "wall_ratio_p50": round4(lw / fw),
                "layer_cpu_p50_us": lc, "floor_cpu_p50_us": fc, "cpu_ratio_p50": round4(lc / fc),
            }),
        );
    }
    let capacity = if bench {
        Some(capacity_report(&client, &raw).await)
    } else {
        None
    };
    let _ = client.delete_table().table_name(&floor.table).send().await;

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
                v["cpu_p50_us"] = json!(us(cpu_stats[i].p50));
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
                "layer_vs_floor": floor_ratios,
                "capacity_1k_response": capacity,
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

/// Write units per new key with a 1 KB response body (`ReturnConsumedCapacity =
/// INDEXES`): the store's item and completion on a table with both indexes (the
/// sweeper's, `Sweeper=true`), with the expiry index only, and with none (the
/// default), and the floor's; and each
/// item's size once completed. Printed, and returned for the JSON results.
async fn capacity_report(client: &Client, raw: &Raw) -> serde_json::Value {
    let body_1k = Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::Binary(json_of(1024)))
        .unwrap();
    let response = StoredResponse::capture(&body_1k, |_| true).encode();
    let units = |c: Option<&ConsumedCapacity>| {
        let c = c.expect("DynamoDB Local reports consumed capacity");
        let table = c.table().and_then(|t| t.capacity_units()).unwrap_or(0.0);
        let indexes: f64 = c
            .global_secondary_indexes()
            .map(|m| m.values().filter_map(|i| i.capacity_units()).sum())
            .unwrap_or(0.0);
        (table, indexes)
    };
    let mut rows = Vec::new();
    for (layout, indexes) in [
        (
            "store item, both indexes (Sweeper=true)",
            &[EXPIRY_INDEX, INFLIGHT_INDEX][..],
        ),
        ("store item, expiry index only", &[EXPIRY_INDEX][..]),
        ("store item, no index (default)", &[][..]),
    ] {
        let table =
            lambda_idempotency_test_support::fresh_table_with_indexes(client, &raw.names, indexes)
                .await;
        let raw = Raw {
            client: client.clone(),
            table: table.clone(),
            names: raw.names.clone(),
            route: raw.route.clone(),
            fingerprint: raw.fingerprint.clone(),
            response: response.clone(),
        };
        let now = now_ms();
        let pk = raw.partition_key("capacity-1");
        let item = raw.pending_item(&pk, now);
        let token = item[&raw.names.lease_token].as_s().unwrap().clone();
        let put = raw
            .begin_put(item, now)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .expect("PutItem");
        let update = raw
            .update_builder(&pk, &token)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .expect("UpdateItem");
        let stored = client
            .get_item()
            .table_name(&table)
            .key(&raw.names.partition_key, AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        rows.push((
            layout,
            units(put.consumed_capacity()),
            units(update.consumed_capacity()),
            item_size(stored.item().expect("the completed item")),
        ));
        let _ = client.delete_table().table_name(&table).send().await;
    }
    let floor = Floor::create(client, response.clone()).await;
    let now = now_ms();
    let put = floor
        .put("capacity-1", now)
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .expect("floor PutItem");
    let update = floor
        .update("capacity-1")
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .expect("floor UpdateItem");
    let stored = client
        .get_item()
        .table_name(&floor.table)
        .key("pk", AttributeValue::S("capacity-1".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("floor GetItem");
    rows.push((
        "floor item (pk, status, expiration, data)",
        units(put.consumed_capacity()),
        units(update.consumed_capacity()),
        item_size(stored.item().expect("the floor's item")),
    ));
    let _ = client.delete_table().table_name(&floor.table).send().await;

    println!();
    println!(
        "write units per new key, {} B response stored (ReturnConsumedCapacity = INDEXES; a \
         replay or conflict is one failing conditional PutItem, whose capacity DynamoDB does \
         not report)",
        response.len()
    );
    println!(
        "{:<42} {:>12} {:>12} {:>14} {:>14} {:>8} {:>11}",
        "item / table",
        "put table",
        "put indexes",
        "update table",
        "update indexes",
        "total",
        "item bytes"
    );
    println!("{}", "-".repeat(120));
    let mut json_rows = Vec::new();
    for (layout, (pt, pi), (ut, ui), size) in &rows {
        let total = pt + pi + ut + ui;
        println!(
            "{:<42} {:>12.1} {:>12.1} {:>14.1} {:>14.1} {:>8.1} {:>11}",
            layout, pt, pi, ut, ui, total, size
        );
        json_rows.push(json!({
            "layout": layout,
            "put_table_units": pt, "put_index_units": pi,
            "update_table_units": ut, "update_index_units": ui,
            "total_units": total, "item_bytes": size,
        }));
    }
    json!({ "stored_response_bytes": response.len(), "rows": json_rows })
}
