//! Criterion benchmarks: fingerprint throughput, record codecs, and the HTTP layer's
//! overhead per request over the same handler unwrapped (in-memory store).
//!
//!     cargo bench --bench overhead
//!
//! Figures are compared within one run (layer vs. unwrapped handler), never against
//! a wall-clock bound.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::fingerprint::{BodyKind, Fingerprint, FingerprintInput};
use lambda_idempotency::http::{IdempotencyLayer, StoredResponse};
use lambda_idempotency::store::MemoryStore;
use tower::{Layer, Service, ServiceExt};

fn json_of(bytes: usize) -> Vec<u8> {
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < bytes.saturating_sub(80) {
        out.push_str(&format!(
            r#"{{"orderId":"ord_{:08x}","sku":"SKU-{}","quantity":{},"unitPriceCents":{}}},"#,
            i.wrapping_mul(2_654_435_761),
            i % 7,
            i % 9 + 1,
            i * 37 % 10_000
        ));
        i += 1;
    }
    out.push_str("{}]");
    out.into_bytes()
}

fn fingerprint(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    for size in [1024, 64 * 1024, 1024 * 1024] {
        let body = json_of(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (kind, name) in [(BodyKind::Json, "json"), (BodyKind::Raw, "raw")] {
            group.bench_with_input(BenchmarkId::new(name, size), &body, |b, body| {
                b.iter(|| {
                    Fingerprint::v1(black_box(&FingerprintInput {
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

fn request(key: &str, body: &[u8]) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::Binary(body.to_vec()))
        .unwrap()
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
    group.bench_function("new_key", |b| {
        let store = MemoryStore::new();
        let mut service = IdempotencyLayer::builder(store)
            .build()
            .unwrap()
            .layer(service_fn(handler));
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let key = format!("key-{n}");
            runtime.block_on(async {
                service
                    .ready()
                    .await
                    .unwrap()
                    .call(request(&key, &body))
                    .await
                    .unwrap()
            })
        })
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

criterion_group!(benches, fingerprint, codecs, layer);
criterion_main!(benches);
