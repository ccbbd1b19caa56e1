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
pub mod store;

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lambda_idempotency::http::IdempotencyLayer;
    use lambda_idempotency::store::MemoryStore;
    use tower::ServiceExt;

    use crate::fixtures::{event, seed};
    use crate::gateway::SimulatedGateway;
    use crate::repo::{MemoryRepo, OrdersRepo};
    use crate::{OrdersApi, ROUTE_TEMPLATES, service};

    /// The API in-process on the in-memory store, driven by the events in `events/`.
    #[tokio::test]
    async fn every_write_runs_once_and_its_retry_is_replayed() {
        let repo = Arc::new(MemoryRepo::new());
        seed(&*repo).await.unwrap();
        let layer = IdempotencyLayer::builder(MemoryStore::new())
            .route_templates(ROUTE_TEMPLATES)
            .build()
            .unwrap();
        let api = OrdersApi::new(repo.clone(), Arc::new(SimulatedGateway::new()));
        for operation in [
            "create-order",
            "payment-attempt",
            "refund",
            "reserve-inventory",
        ] {
            let call = |scenario: &str| {
                let request = event(&format!("{operation}.{scenario}")).unwrap();
                service(api.clone(), &layer).oneshot(request)
            };
            let first = call("new").await.unwrap();
            let retry = call("duplicate").await.unwrap();
            assert_eq!(first.status(), 201, "{operation}");
            assert_eq!(
                retry.headers()["idempotent-replayed"],
                "true",
                "{operation}"
            );
            assert_eq!(retry.body(), first.body(), "{operation}");
            assert_eq!(call("conflict").await.unwrap().status(), 409, "{operation}");
        }
        let effects = repo.side_effects().await.unwrap();
        // One of each, beside the seeded order.
        assert_eq!(
            (
                effects.orders,
                effects.payment_attempts,
                effects.refunds,
                effects.reservations
            ),
            (2, 1, 1, 1)
        );
    }
}
