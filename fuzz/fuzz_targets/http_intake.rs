//! The HTTP layer's request intake (key header, body, content type, method, path),
//! through the whole layer over the in-memory store: never panics; bad input is a
//! problem+json answer and runs nothing; a request that ran is replayed, not run
//! again, when sent a second time.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer, PROBLEM_JSON};
use lambda_idempotency::store::MemoryStore;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    path: String,
    keys: Vec<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    body: Vec<u8>,
    text_body: bool,
}

thread_local! {
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    );
}

fn request(input: &Input) -> Option<Request> {
    let method = [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::GET,
    ][usize::from(input.method) % 5]
        .clone();
    let uri = format!("/{}", input.path.trim_start_matches('/'));
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri);
    for key in input.keys.iter().take(3) {
        builder = builder.header("idempotency-key", HeaderValue::from_bytes(key).ok()?);
    }
    if let Some(content_type) = &input.content_type {
        builder = builder.header("content-type", HeaderValue::from_bytes(content_type).ok()?);
    }
    let body = if input.text_body {
        Body::Text(String::from_utf8_lossy(&input.body).into_owned())
    } else {
        Body::Binary(input.body.clone())
    };
    builder.body(body).ok()
}

fuzz_target!(|input: Input| {
    let (Some(first), Some(second)) = (request(&input), request(&input)) else {
        return;
    };
    RUNTIME.with(|runtime| {
        runtime.borrow().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&runs);
            let handler = service_fn(move |request: Request| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let size = request.body().len();
                async move {
                    Ok::<_, lambda_http::Error>(
                        Response::builder()
                            .status(201)
                            .header("content-type", "application/json")
                            .body(Body::from(format!(r#"{{"run":{n},"bytes":{size}}}"#)))
                            .unwrap(),
                    )
                }
            });
            let layer = IdempotencyLayer::builder(MemoryStore::new())
                .build()
                .unwrap();
            let service = layer.layer(handler);
            let a = service
                .clone()
                .oneshot(first)
                .await
                .expect("the layer answers");
            let b = service.oneshot(second).await.expect("the layer answers");
            let problem = |r: &Response<Body>| {
                r.headers()
                    .get("content-type")
                    .is_some_and(|v| v == PROBLEM_JSON)
            };
            match a.status().as_u16() {
                201 => {
                    // Ran once; the same request again is its replay.
                    assert_eq!(b.status(), 201);
                    if runs.load(Ordering::SeqCst) == 1 {
                        assert_eq!(a.body(), b.body());
                    }
                }
                status => {
                    assert!((400..500).contains(&status), "status {status}");
                    assert!(problem(&a), "a {status} without problem+json");
                    assert_eq!(
                        b.status(),
                        a.status(),
                        "bad input is refused the same way twice"
                    );
                }
            }
            // A key that was accepted never runs the handler twice for one request.
            if b.headers().contains_key(IDEMPOTENT_REPLAYED) {
                assert_eq!(runs.load(Ordering::SeqCst), 1);
            }
        })
    });
});
