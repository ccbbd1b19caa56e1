//! Criterion benchmarks: fingerprint throughput, record codecs, and the HTTP layer's
//! overhead per request over the same handler unwrapped (in-memory store).
//!
//!     cargo bench --bench overhead
//!
//! Figures are compared within one run (layer vs. unwrapped handler), never against
//! a wall-clock bound. After criterion's own report, a summary table (fingerprint
//! throughput, codec times, added latency per request) is printed and written to
//! `target/bench-results/overhead.json`, from the estimates this run wrote.
//!
//! The record's DynamoDB item codec (`store::dynamodb::codec`) is private to the
//! crate, so it is not benched here on its own: it runs inside the end-to-end
//! figures (`benches/end_to_end.rs`). What is public and benched here is the codec
//! of the response kept in the record (`StoredResponse`).

mod support;

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::__internals::StoredResponse;
use lambda_idempotency::fingerprint::{BodyKind, Fingerprint, FingerprintInput};
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::store::MemoryStore;
use support::{json_of, request};
use tower::{Layer, Service, ServiceExt};

fn fingerprint(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    for size in [1024, 64 * 1024, 1024 * 1024] {
        let body = json_of(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (kind, name) in [(BodyKind::Json, "json"), (BodyKind::Raw, "raw")] {
            group.bench_with_input(BenchmarkId::new(name, size), &body, |b, body| {
                b.iter(|| {
                    Fingerprint::v2(black_box(&FingerprintInput {
                        method: "POST",
                        path: "/orders",
                        query: &[],
                        body,
                        body_kind: kind,
                    }))
                })
            });
        }
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let response = Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .header("location", "/orders/ord_1")
        .body(Body::Text(String::from_utf8(json_of(1024)).unwrap()))
        .unwrap();
    let stored = StoredResponse::capture(&response, |_| true);
    let encoded = stored.encode();
    let mut group = c.benchmark_group("stored_response_1k");
    group.bench_function("capture_and_encode", |b| {
        b.iter(|| StoredResponse::capture(black_box(&response), |_| true).encode())
    });
    group.bench_function("decode", |b| {
        b.iter(|| StoredResponse::decode(black_box(&encoded)))
    });
    group.finish();
}

async fn handler(_req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"orderId":"ord_1","status":"CREATED"}"#))?)
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = json_of(1024);
    let mut group = c.benchmark_group("layer_1k");
    group.bench_function("unwrapped", |b| {
        let mut service = service_fn(handler);
        b.iter(|| {
            runtime.block_on(async {
                service
                    .ready()
                    .await
                    .unwrap()
                    .call(request("k", &body))
                    .await
                    .unwrap()
            })
        })
    });
    // A fresh store per request (built outside the timing): one that grows through
    // the measurement would time the map's rehashing, which a DynamoDB-backed layer
    // never does.
    group.bench_function("new_key", |b| {
        let fresh = || {
            IdempotencyLayer::builder(MemoryStore::new())
                .build()
                .unwrap()
                .layer(service_fn(handler))
        };
        b.iter_batched(
            fresh,
            |mut service| {
                let response = runtime.block_on(async {
                    service
                        .ready()
                        .await
                        .unwrap()
                        .call(request("key", &body))
                        .await
                        .unwrap()
                });
                // Dropped after the timing, with the store.
                (service, response)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("replay", |b| {
        let store = MemoryStore::new();
        let mut service = IdempotencyLayer::builder(store)
            .build()
            .unwrap()
            .layer(service_fn(handler));
        runtime.block_on(async {
            service
                .ready()
                .await
                .unwrap()
                .call(request("same", &body))
                .await
                .unwrap()
        });
        b.iter(|| {
            runtime.block_on(async {
                service
                    .ready()
                    .await
                    .unwrap()
                    .call(request("same", &body))
                    .await
                    .unwrap()
            })
        })
    });
    group.finish();
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    fingerprint(&mut c);
    codecs(&mut c);
    layer(&mut c);
    c.final_summary();
    if support::bench_mode() {
        summary(started);
    }
}

/// Criterion's median and mean estimate (ns) of one benchmark, if this run wrote it.
fn estimate(id: &str, since: SystemTime) -> Option<(f64, f64)> {
    let path = support::target_dir()
        .join("criterion")
        .join(id)
        .join("new")
        .join("estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    Some((
        json["median"]["point_estimate"].as_f64()?,
        json["mean"]["point_estimate"].as_f64()?,
    ))
}

/// A compact table of this run's figures against the targets, also as JSON.
fn summary(since: SystemTime) {
    if estimate("layer_1k/unwrapped", since).is_none()
        && estimate("fingerprint/json/1048576", since).is_none()
    {
        // A filtered or --profile-time run: keep the last full results.
        return;
    }
    let mut results = serde_json::Map::new();
    println!();
    println!("summary (criterion medians of this run)");
    println!();
    println!(
        "{:<36} {:>12} {:>12} {:>12}",
        "fingerprint", "median", "mean", "MB/s"
    );
    println!("{}", "-".repeat(75));
    let mut json_1m = None;
    for size in [1024, 64 * 1024, 1024 * 1024] {
        let bytes = json_of(size).len() as f64;
        for name in ["json", "raw"] {
            let id = format!("fingerprint/{name}/{size}");
            let Some((median, mean)) = estimate(&id, since) else {
                continue;
            };
            let mb_s = bytes / median * 1e9 / 1e6;
            if name == "json" && size == 1024 * 1024 {
                json_1m = Some(mb_s);
            }
            println!(
                "{:<36} {:>12} {:>12} {:>12.0}",
                format!("{name}, {} bytes", bytes as u64),
                human(median),
                human(mean),
                mb_s
            );
            results.insert(
                id,
                serde_json::json!({
                    "median_ns": median,
                    "mean_ns": mean,
                    "bytes": bytes,
                    "mb_per_s": mb_s,
                }),
            );
        }
    }
    if let Some(mb_s) = json_1m {
        println!(
            "target >= 500 MB/s at 1 MB (JSON, canonicalised): {} ({mb_s:.0} MB/s)",
            if mb_s >= 500.0 { "met" } else { "MISSED" }
        );
    }

    println!();
    println!(
        "{:<36} {:>12} {:>12}",
        "stored response (1 KB body)", "median", "mean"
    );
    println!("{}", "-".repeat(62));
    for name in ["capture_and_encode", "decode"] {
        let id = format!("stored_response_1k/{name}");
        if let Some((median, mean)) = estimate(&id, since) {
            println!("{:<36} {:>12} {:>12}", name, human(median), human(mean));
            results.insert(
                id,
                serde_json::json!({"median_ns": median, "mean_ns": mean}),
            );
        }
    }

    println!();
    println!(
        "{:<36} {:>12} {:>12} {:>14}",
        "layer, in-memory store (1 KB body)", "median", "mean", "added (median)"
    );
    println!("{}", "-".repeat(77));
    let unwrapped = estimate("layer_1k/unwrapped", since);
    let mut worst_added = None::<f64>;
    for name in ["unwrapped", "new_key", "replay"] {
        let id = format!("layer_1k/{name}");
        let Some((median, mean)) = estimate(&id, since) else {
            continue;
        };
        let added = unwrapped.map(|(u, _)| median - u);
        if name != "unwrapped" {
            worst_added = match (worst_added, added) {
                (Some(w), Some(a)) => Some(w.max(a)),
                (None, a) => a,
                (w, None) => w,
            };
        }
        println!(
            "{:<36} {:>12} {:>12} {:>14}",
            name,
            human(median),
            human(mean),
            match added {
                Some(a) if name != "unwrapped" => format!("+{}", human(a)),
                _ => "-".to_owned(),
            }
        );
        results.insert(
            id,
            serde_json::json!({
                "median_ns": median,
                "mean_ns": mean,
                "added_ns": added.filter(|_| name != "unwrapped"),
            }),
        );
    }
    if let Some(worst) = worst_added {
        println!(
            "target < 10 µs added per request at 1 KB: {} (worst {})",
            if worst < 10_000.0 { "met" } else { "MISSED" },
            human(worst)
        );
    }

    let path = support::write_results(
        "overhead",
        &serde_json::json!({
            "bench": "overhead",
            "date": support::utc_now(),
            "estimates": results,
            "fingerprint_json_1m_mb_per_s": json_1m,
            "layer_worst_added_ns": worst_added,
        }),
    );
    println!("results: {}", path.display());
}

/// Nanoseconds, in a readable unit.
fn human(ns: f64) -> String {
    if ns.abs() >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns.abs() >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
