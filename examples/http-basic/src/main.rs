//! The smallest idempotent HTTP function: a client that retries `POST /orders` (a
//! timeout, a lost response) gets the first answer back instead of a second order.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_http::{Body, Error, Request, Response, service_fn};
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::DynamoDbStore;
use tower::Layer;

static ORDERS: AtomicU64 = AtomicU64::new(0);

/// Creates an order: runs at most once per `Idempotency-Key`.
async fn create_order(_request: Request) -> Result<Response<Body>, Error> {
    let order = ORDERS.fetch_add(1, Ordering::SeqCst) + 1;
    let body = serde_json::json!({ "orderId": format!("ord-{order}") });
    Ok(Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?)
}

/// The idempotency layer over any store (DynamoDB in the function, memory in tests).
fn layer(store: impl Store) -> Result<IdempotencyLayer, Error> {
    Ok(IdempotencyLayer::builder(store).build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = DynamoDbStore::from_env().await?; // IDEMPOTENCY_TABLE
    store.check_table().await?;
    lambda_http::run(layer(store)?.layer(service_fn(create_order))).await
}

#[cfg(test)]
mod tests {
    use lambda_http::{Context, service_fn};
    use lambda_idempotency::store::MemoryStore;
    use tower::{Layer, ServiceExt};

    /// An API Gateway event from `events/`, with a Lambda context 29 s from its end.
    fn order() -> lambda_http::Request {
        let event = include_str!("../../../events/create-order.new.json");
        let mut request = lambda_http::request::from_str(event).unwrap();
        let mut context = Context::default();
        context.deadline = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
            + 29_000;
        request.extensions_mut().insert(context);
        request
    }

    #[tokio::test]
    async fn a_retried_order_is_replayed_not_created_twice() {
        let layer = super::layer(MemoryStore::new()).unwrap();
        let service = layer.layer(service_fn(super::create_order));
        let first = service.clone().oneshot(order()).await.unwrap();
        let retry = service.oneshot(order()).await.unwrap();
        assert_eq!(first.status(), 201);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.body(), first.body());
    }
}
