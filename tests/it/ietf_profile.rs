//! The IETF draft profile against DynamoDB Local: 400 missing, 422 reused, 409
//! concurrent, and the expiry advertised. Needs `AWS_ENDPOINT_URL_DYNAMODB`.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::config::IdempotencyConfig;
use lambda_idempotency::http::{IDEMPOTENCY_KEY_EXPIRES, IdempotencyLayer, Profile};
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::scope::{ANONYMOUS_ACTOR, Scope};
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use tower::{Layer, ServiceExt};

fn request(key: Option<&str>, body: &str) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

async fn layer(profile: Profile) -> (IdempotencyLayer, DynamoDbStore) {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    // 2026-11-28 08:00:00 UTC, so the advertised expiry is a known date.
    let clock = ManualClock::new(1_795_852_800_000);
    let store = DynamoDbStore::new(client, table).with_clock(clock.clone());
    let layer = IdempotencyLayer::builder(store.clone())
        .clock(clock)
        .config(
            IdempotencyConfig::builder()
                .expiry(Duration::from_secs(6 * 3600))
                .build()
                .unwrap(),
        )
        .profile(profile)
        .build()
        .unwrap();
    (layer, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ietf_profile_answers_400_422_409_and_advertises_the_expiry() {
    let release = Arc::new(tokio::sync::Notify::new());
    let r = Arc::clone(&release);
    let handler = service_fn(move |req: Request| {
        let r = Arc::clone(&r);
        async move {
            if req.body().as_ref() == b"slow" {
                r.notified().await;
            }
            Ok::<_, lambda_http::Error>(
                Response::builder()
                    .status(201)
                    .body(Body::from("created"))?,
            )
        }
    });
    let (layer, store) = layer(Profile::IetfDraft).await;
    let service = layer.layer(handler);

    let missing = service.clone().oneshot(request(None, "{}")).await.unwrap();
    assert_eq!(missing.status(), 400);

    let first = service
        .clone()
        .oneshot(request(Some("ietf-1"), "{}"))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    // 08:00 + 6 h.
    assert_eq!(
        first.headers()[IDEMPOTENCY_KEY_EXPIRES],
        "Sat, 28 Nov 2026 14:00:00 GMT"
    );
    let replay = service
        .clone()
        .oneshot(request(Some("ietf-1"), "{}"))
        .await
        .unwrap();
    assert_eq!(
        replay.headers()[IDEMPOTENCY_KEY_EXPIRES],
        "Sat, 28 Nov 2026 14:00:00 GMT"
    );

    let reused = service
        .clone()
        .oneshot(request(Some("ietf-1"), r#"{"other":1}"#))
        .await
        .unwrap();
    assert_eq!(reused.status(), 422);
    assert!(reused.headers().contains_key(IDEMPOTENCY_KEY_EXPIRES));

    let slow = tokio::spawn(service.clone().oneshot(request(Some("ietf-2"), "slow")));
    // Once the first holds the key, an identical request is concurrent.
    let pk = Scope::new(
        "POST /orders",
        ANONYMOUS_ACTOR,
        IdempotencyKey::parse("ietf-2").unwrap(),
    );
    while store.get(pk.partition_key()).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let concurrent = service
        .clone()
        .oneshot(request(Some("ietf-2"), "slow"))
        .await
        .unwrap();
    assert_eq!(concurrent.status(), 409);
    release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap().status(), 201);
}

#[tokio::test]
async fn the_default_profile_keeps_409_and_no_expiry_header() {
    let handler = service_fn(|_req: Request| async {
        Ok::<_, lambda_http::Error>(
            Response::builder()
                .status(201)
                .body(Body::from("created"))?,
        )
    });
    let service = layer(Profile::Default).await.0.layer(handler);
    let first = service
        .clone()
        .oneshot(request(Some("d-1"), "{}"))
        .await
        .unwrap();
    assert!(!first.headers().contains_key(IDEMPOTENCY_KEY_EXPIRES));
    let reused = service
        .oneshot(request(Some("d-1"), r#"{"other":1}"#))
        .await
        .unwrap();
    assert_eq!(reused.status(), 409);
}

/// The draft defines `Idempotency-Key` as a Structured Field string: its own examples
/// are quoted. Under both profiles the quoted form is accepted and the key is its
/// content, so `"k"` and `k` are one key (one record, one execution).
#[tokio::test]
async fn the_drafts_quoted_keys_are_accepted_and_are_their_content() {
    let examples = [
        "8e03978e-40d5-43e8-bc93-6894a57f9324",
        "clkyoesmbgybucifusbbtdsbohtyuuwz",
    ];
    for profile in [Profile::Default, Profile::IetfDraft] {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let handler = service_fn(move |_req: Request| {
            let run = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                Ok::<_, lambda_http::Error>(
                    Response::builder()
                        .status(201)
                        .body(Body::from(format!("run {run}")))?,
                )
            }
        });
        let (layer, store) = layer(profile).await;
        let service = layer.layer(handler);
        for (i, example) in examples.iter().enumerate() {
            let quoted = format!("\"{example}\"");
            let first = service
                .clone()
                .oneshot(request(Some(&quoted), "{}"))
                .await
                .unwrap();
            assert_eq!(first.status(), 201, "{profile:?} {quoted}");
            assert_eq!(first.body().as_ref(), format!("run {}", i + 1).as_bytes());
            // The same key unquoted, and quoted with the spaces a header may carry.
            for again in [example.to_string(), format!("  {quoted} ")] {
                let replay = service
                    .clone()
                    .oneshot(request(Some(&again), "{}"))
                    .await
                    .unwrap();
                assert_eq!(replay.headers()["idempotent-replayed"], "true", "{again}");
            }
            let pk = Scope::new(
                "POST /orders",
                ANONYMOUS_ACTOR,
                IdempotencyKey::parse(example).unwrap(),
            );
            let record = store.get(pk.partition_key()).await.unwrap().unwrap();
            assert_eq!(record.key, *example);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);

        // Malformed Structured Field strings are a 400 naming the reason.
        for bad in [
            "\"unterminated",
            "\"a\"b\"",
            "\"a\";p=1",
            "\"\"",
            "\"has space\"",
        ] {
            let response = service
                .clone()
                .oneshot(request(Some(bad), "{}"))
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{bad}");
        }
    }
}
