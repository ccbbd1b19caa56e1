//! Idempotency for `lambda_http` handlers.
//!
//! [`IdempotencyLayer`] wraps any `Service<lambda_http::Request>` (a
//! `service_fn`, a router) and answers as this table says:
//!
//! | situation | response |
//! |---|---|
//! | new key | the handler's response, stored |
//! | same key, same request, completed | the stored status, allowed headers and body, plus `Idempotent-Replayed: true` |
//! | same key, different request | `409` problem+json (`422` with [`Profile::IetfDraft`]) |
//! | same key, still in flight | `409` problem+json with `Retry-After` |
//! | key missing on a protected route | `400` problem+json (or pass through, [`MissingKey::PassThrough`]) |
//! | key malformed | `400` problem+json |
//! | an authorizer (or ALB authentication) but no principal found | `500` problem+json; handler not run (see [`UnidentifiedCaller`]) |
//! | body declared JSON (`application/json`, `*+json`) but not JSON | `400` problem+json; handler not run |
//! | body larger than [`IdempotencyLayerBuilder::max_body_bytes`] (default 6 MB) | `413` problem+json; handler not run |
//! | store unreachable before the handler | `503` problem+json with `Retry-After`; handler not run |
//! | handler error, panic, or a retryable status (5xx) | passed through; record `ERRORED`, so a retry runs again |
//!
//! ```
//! use lambda_http::{Body, Error, Request, Response, service_fn};
//! use lambda_idempotency::http::IdempotencyLayer;
//! use lambda_idempotency::store::MemoryStore;
//! use tower::{Layer, Service, ServiceExt};
//!
//! async fn create_order(_req: Request) -> Result<Response<Body>, Error> {
//!     Ok(Response::builder().status(201).body(Body::from("{\"orderId\":\"o-1\"}"))?)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let layer = IdempotencyLayer::builder(MemoryStore::new()).build()?;
//! let mut service = layer.layer(service_fn(create_order));
//! // In a function: lambda_http::run(service).await
//!
//! let request = || {
//!     lambda_http::http::Request::builder()
//!         .method("POST")
//!         .uri("/orders")
//!         .header("idempotency-key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
//!         .body(Body::from("{\"sku\":\"A1\"}"))
//!         .unwrap()
//! };
//! let first = service.ready().await?.call(request()).await?;
//! let again = service.ready().await?.call(request()).await?;
//! assert_eq!(first.status(), 201);
//! assert_eq!(again.status(), 201);
//! assert_eq!(again.headers()["idempotent-replayed"], "true");
//! # Ok::<(), Error>(())
//! # })?;
//! # Ok::<(), Error>(())
//! ```

mod actor;
mod answer;
mod layer;
mod problem;
pub(crate) mod request;
mod route;
mod service;
mod settings;
pub(crate) mod stored;

pub use crate::engine::MissingKey;
pub use actor::{DefaultActor, ExtractActor, UnidentifiedCaller};
pub use answer::{IDEMPOTENCY_KEY_EXPIRES, IDEMPOTENT_REPLAYED};
pub use layer::{IdempotencyLayer, IdempotencyLayerBuilder};
pub use problem::{PROBLEM_JSON, ProblemKind};
pub use request::{IDEMPOTENCY_KEY, route_of};
pub use route::{MatchRoute, UNMATCHED_ROUTE};
pub use service::Idempotency;
pub use settings::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_HEADERS, DefaultResponsePolicy, Profile, Protect,
    ResponsePolicy,
};

/// Wraps a plain `async fn` handler in one line:
/// `lambda_http::run(idempotent(layer, handler)).await`.
pub fn idempotent<F>(
    layer: IdempotencyLayer,
    handler: F,
) -> Idempotency<tower::util::ServiceFn<F>> {
    tower::Layer::layer(&layer, lambda_http::service_fn(handler))
}
