//! An e-commerce API on Lambda whose four write endpoints are idempotent:
//!
//! - `POST /orders`: create an order
//! - `POST /orders/{orderId}/payment-attempts`: authorise a payment
//! - `POST /orders/{orderId}/refunds`: refund part of an order
//! - `POST /inventory/reservations`: reserve stock (never below zero)
//!
//! and `GET /orders/{orderId}`. [`service`] wraps the API in the idempotency layer;
//! `main.rs` runs it on Lambda with DynamoDB, `examples/demo.rs` in-process.

use std::sync::Arc;

use lambda_http::{Body, Error, Request, Response, Service};
use lambda_idempotency::http::{Idempotency, IdempotencyLayer};

pub mod api;
pub mod fixtures;
pub mod gateway;
pub mod repo;

pub use api::{OrdersApi, ROUTE_TEMPLATES};

/// Environment variable naming the orders table.
pub const ENV_ORDERS_TABLE: &str = "ORDERS_TABLE";

/// The API as a service, wrapped in `layer`.
pub fn service(
    api: OrdersApi,
    layer: &IdempotencyLayer,
) -> Idempotency<
    impl Service<Request, Response = Response<Body>, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + 'static,
> {
    let api = Arc::new(api);
    let inner = lambda_http::service_fn(move |request: Request| {
        let api = Arc::clone(&api);
        async move { api.handle(request).await }
    });
    tower::Layer::layer(layer, inner)
}
