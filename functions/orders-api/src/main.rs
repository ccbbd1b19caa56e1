//! The orders API on Lambda: DynamoDB for records and side effects.
//!
//! Reads `IDEMPOTENCY_TABLE` (or `IDEMPOTENCY_REDIS_URL` with the `redis` feature:
//! the records in Redis, the orders still in DynamoDB), `ORDERS_TABLE`, optional
//! `IDEMPOTENCY_EXPIRY` / `IDEMPOTENCY_MAX_LEASE`, and the SDK's usual settings
//! (`AWS_ENDPOINT_URL_DYNAMODB` locally). A missing variable or table stops the
//! start-up with a clear error.

use std::sync::Arc;

use function_support::required_env;
use lambda_http::Error;
use lambda_idempotency::config::IdempotencyConfig;
use lambda_idempotency::http::IdempotencyLayer;
use orders_api::gateway::SimulatedGateway;
use orders_api::repo::dynamodb::DynamoDbRepo;
use orders_api::{ENV_ORDERS_TABLE, OrdersApi, ROUTE_TEMPLATES, service};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    function_support::run_or_exit("orders-api", run()).await;
}

async fn run() -> Result<(), Error> {
    function_support::init()?;
    let config = IdempotencyConfig::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);

    // Both settings are read before anything is called (a missing IDEMPOTENCY_TABLE
    // is named first); then both tables are checked at once, and the store's failure,
    // if any, is reported first.
    let (store, store_check) = orders_api::store::from_env(&client).await?;
    let orders_table = required_env(ENV_ORDERS_TABLE, "a DynamoDB table")?;
    let repo = DynamoDbRepo::new(client, orders_table);
    let (store_checked, orders_checked) = tokio::join!(store_check, repo.check_table());
    store_checked?;
    orders_checked?;

    let layer = IdempotencyLayer::builder(store)
        .config(config)
        .route_templates(ROUTE_TEMPLATES)
        .build()?;
    let api = OrdersApi::new(Arc::new(repo), Arc::new(SimulatedGateway::new()));
    lambda_http::run(service(api, &layer)).await
}
