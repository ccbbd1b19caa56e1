//! Responses near and past DynamoDB's 400 KB item limit, against DynamoDB Local (and
//! the same rule on the in-memory store). Needs `AWS_ENDPOINT_URL_DYNAMODB`.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use serde_json::Value;
use tower::{Layer, ServiceExt};

/// A JSON order export: realistic repetition (field names, SKUs) with random ids
/// and amounts, so it compresses like real API responses rather than a constant.
fn json_body(bytes: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let skus = ["SKU-RED-MUG", "SKU-BLUE-CUP", "SKU-TEA-POT", "SKU-SPOON-4"];
    let mut out = String::from("[");
    while out.len() < bytes - 200 {
        let r = next();
        out.push_str(&format!(
            r#"{{"orderId":"ord_{:016x}","sku":"{}","quantity":{},"unitPriceCents":{},"status":"CREATED"}},"#,
            next(),
            skus[(r % 4) as usize],
            r % 9 + 1,
            (r >> 8) % 50_000
        ));
    }
    out.push_str("{}]");
    out
}

fn same(a: &Body, b: &Body) -> bool {
    a == b
}

fn noise(bytes: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn request(key: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/reports")
        .header("idempotency-key", key)
        .body(Body::from("{}"))
        .unwrap()
}

fn pk(key: &str) -> String {
    Scope::new(
        "POST /reports",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse(key).unwrap(),
    )
    .partition_key()
    .to_owned()
}

/// Runs a handler answering `body` twice under `key`; returns (first, replay, runs).
async fn twice<S: Store + Clone>(
    store: &S,
    key: &str,
    body: Body,
) -> (Response<Body>, Response<Body>, usize) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let body = Arc::new(match body {
        Body::Text(t) => (Some(t), None),
        Body::Binary(b) => (None, Some(b)),
        _ => (None, None),
    });
    let handler = service_fn(move |_req: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = Arc::clone(&body);
        async move {
            let body = match &*body {
                (Some(t), _) => Body::Text(t.clone()),
                (_, Some(b)) => Body::Binary(b.clone()),
                _ => Body::Empty,
            };
            let content_type = match body {
                Body::Binary(_) => "application/octet-stream",
                _ => "application/json",
            };
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(200)
                    .header("content-type", content_type)
                    .body(body)?,
            )
        }
    });
    let service = IdempotencyLayer::builder(store.clone())
        .build()
        .unwrap()
        .layer(handler);
    let first = service.clone().oneshot(request(key)).await.unwrap();
    let again = service.oneshot(request(key)).await.unwrap();
    (first, again, runs.load(Ordering::SeqCst))
}

async fn dynamodb() -> (DynamoDbStore, aws_sdk_dynamodb::Client, String) {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    (
        DynamoDbStore::new(client.clone(), table.clone()),
        client,
        table,
    )
}

/// The stored `response` attribute's size and its encoding.
async fn stored(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> (usize, Option<String>) {
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk(key)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let size = match item.get("response") {
        Some(AttributeValue::B(b)) => b.as_ref().len(),
        _ => 0,
    };
    let encoding = match item.get("response_encoding") {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    (size, encoding)
}

#[tokio::test]
async fn responses_of_100_kb_390_kb_and_2_mb_json_are_kept_and_replayed_byte_for_byte() {
    let (store, client, table) = dynamodb().await;
    for (key, size, expect_encoding) in [
        ("r-100k", 100 * 1024, None),
        ("r-390k", 390 * 1024, Some("zstd")),
        ("r-2m", 2 * 1024 * 1024, Some("zstd")),
    ] {
        let body = json_body(size);
        let (first, again, runs) = twice(&store, key, Body::Text(body.clone())).await;
        assert_eq!(runs, 1, "{key}");
        assert!(same(first.body(), &Body::Text(body.clone())), "{key}");
        assert!(
            same(again.body(), &Body::Text(body.clone())),
            "{key}: replayed byte for byte"
        );
        assert_eq!(again.headers()[IDEMPOTENT_REPLAYED], "true");
        let (stored_size, encoding) = stored(&client, &table, key).await;
        assert_eq!(encoding.as_deref(), expect_encoding, "{key}");
        eprintln!(
            "{key}: body {} bytes, stored response {stored_size} bytes ({})",
            body.len(),
            encoding.as_deref().unwrap_or("plain")
        );
        assert!(stored_size < 400 * 1024);
    }
}

#[tokio::test]
async fn a_2_mb_response_that_does_not_compress_is_completed_without_it() {
    let (store, client, table) = dynamodb().await;
    let body = noise(2 * 1024 * 1024);
    let (first, again, runs) = twice(&store, "r-noise", Body::Binary(body.clone())).await;
    assert!(
        same(first.body(), &Body::Binary(body)),
        "the first caller still gets the response"
    );
    assert_eq!(runs, 1, "never a second side effect");
    assert_eq!(again.status(), 500);
    let problem: Value = serde_json::from_slice(again.body()).unwrap();
    assert_eq!(
        problem["type"],
        "urn:lambda-idempotency:problem:response-too-large"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("too large to keep")
    );
    let record = store.get(&pk("r-noise")).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.response, None);
    assert!(record.response_omitted.unwrap() > 2 * 1024 * 1024);
    assert_eq!(stored(&client, &table, "r-noise").await.0, 0);
}

#[tokio::test]
async fn the_in_memory_store_applies_the_same_rule() {
    let store = MemoryStore::new();
    let (_, again, runs) = twice(&store, "m-noise", Body::Binary(noise(2 * 1024 * 1024))).await;
    assert_eq!((again.status().as_u16(), runs), (500, 1));
    let body = json_body(2 * 1024 * 1024);
    let (_, again, runs) = twice(&store, "m-json", Body::Text(body.clone())).await;
    assert!(same(again.body(), &Body::Text(body)));
    assert_eq!(runs, 1);
}
