//! The orders API with its idempotency records in Redis and its orders in DynamoDB
//! Local, from the events in `events/`: what `IDEMPOTENCY_REDIS_URL` selects in the
//! function. Redis commits no handler writes, so the orders are written directly
//! (`AtomicWrites::current()` is `None`). Needs `AWS_ENDPOINT_URL_DYNAMODB` and
//! `IDEMPOTENCY_TEST_REDIS_URL`: run with `make test`.

use lambda_idempotency_test_support as support;

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use orders_api::fixtures::{event, seed};
use orders_api::gateway::SimulatedGateway;
use orders_api::repo::OrdersRepo;
use orders_api::repo::dynamodb::{DynamoDbRepo, create_orders_table};
use orders_api::{OrdersApi, ROUTE_TEMPLATES, service};
use tower::ServiceExt;

fn replayed(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(IDEMPOTENT_REPLAYED)
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn orders_are_created_once_with_records_in_redis() {
    let clock = ManualClock::starting_now();
    let client = support::client().await;
    let orders = format!("orders-test-{}", uuid::Uuid::new_v4());
    create_orders_table(&client, &orders).await.unwrap();
    let repo: Arc<dyn OrdersRepo> = Arc::new(DynamoDbRepo::new(client, orders));
    seed(&*repo).await.unwrap();
    let store = support::redis_store(clock.clone()).await;
    let layer = IdempotencyLayer::builder(store)
        .clock(clock.clone())
        .route_templates(ROUTE_TEMPLATES)
        .build()
        .unwrap();
    let api = OrdersApi::new(Arc::clone(&repo), Arc::new(SimulatedGateway::new()))
        .with_clock(clock.clone());
    let svc = service(api, &layer);
    let request = |name: &str| -> Request {
        let mut request = event(name).unwrap();
        let mut context = lambda_http::Context::default();
        context.deadline = (clock.now_millis() + 29_000) as u64;
        request.extensions_mut().insert(context);
        request
    };

    let first = svc
        .clone()
        .oneshot(request("create-order.new"))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let again = svc
        .clone()
        .oneshot(request("create-order.duplicate"))
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(again.body(), first.body());
    let conflict = svc
        .clone()
        .oneshot(request("create-order.conflict"))
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);

    // Ten identical requests at once: one order.
    let before = repo.side_effects().await.unwrap().orders;
    let concurrent: Vec<_> = (0..10)
        .map(|_| tokio::spawn(svc.clone().oneshot(request("create-order.concurrent"))))
        .collect();
    let mut created = 0;
    for task in concurrent {
        let response = task.await.unwrap().unwrap();
        assert!(
            matches!(response.status().as_u16(), 201 | 409),
            "{}",
            response.status()
        );
        created += usize::from(response.status() == 201 && !replayed(&response));
    }
    assert_eq!(created, 1);
    assert_eq!(repo.side_effects().await.unwrap().orders, before + 1);
}
