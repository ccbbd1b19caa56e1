//! An HTTP handler on the in-memory store, with `mut` on its argument.

use lambda_http::{Body, Error, Request, Response};
use lambda_idempotency::idempotent;

#[idempotent(store = "memory", expiry = "5m")]
async fn create_order(mut request: Request) -> Result<Response<Body>, Error> {
    let body = std::mem::take(request.body_mut());
    Ok(Response::builder().status(201).body(body)?)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let request = || {
            lambda_http::http::Request::builder()
                .method("POST")
                .uri("/orders")
                .header("idempotency-key", "k-ui-http")
                .body(Body::from("{\"sku\":\"A1\"}"))
                .unwrap()
        };
        let first: Response<Body> = create_order(request()).await.unwrap();
        let again = create_order(request()).await.unwrap();
        assert_eq!(first.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
    });
}
