//! The sweeper on Lambda, for an EventBridge schedule.
//!
//! Reads `IDEMPOTENCY_TABLE` (and `IDEMPOTENCY_STATIC_PARTITION_KEY` with
//! `IDEMPOTENCY_SORT_KEY` for a single-table layout), optional `SWEEP_MAX_ITEMS` (default 1000) and
//! `SWEEP_LOOKBACK_HOURS` (default 73), and the SDK's usual settings
//! (`AWS_ENDPOINT_URL_DYNAMODB` locally). A missing variable, table or expiry index
//! stops the start-up with one clear line; a missing in-flight index is a warning
//! (the sweeper then sweeps, and measures the in-flight gauge once the index is
//! ACTIVE).

use std::sync::Arc;

use lambda_idempotency::ops::{check_expiry_index, check_inflight_index};
use lambda_idempotency::store::dynamodb::{DynamoDbStore, ENV_TABLE, KeyLayout};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use sweeper::{Sweeper, options_from_env, required_table};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    function_support::run_or_exit("sweeper", run()).await;
}

async fn run() -> Result<(), Error> {
    function_support::init()?;
    let table = required_table(ENV_TABLE)?;
    let options = options_from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
        .with_key_layout(KeyLayout::from_env()?);
    store.check_key_layout().await?;
    check_expiry_index(&store).await?;
    // Without an ACTIVE in-flight index the sweeper still sweeps, and measures the
    // gauge once the index is there (checked at each run, with a warning).
    let mut sweeper = Sweeper::new(store.clone(), options);
    if let Err(e) = check_inflight_index(&store).await {
        tracing::warn!(error = %e, "the in-flight gauge is not measured until the index is ACTIVE");
        sweeper = sweeper.with_in_flight_when_index_active();
    }
    let sweeper = Arc::new(sweeper);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let sweeper = Arc::clone(&sweeper);
        async move { sweeper.handle(event).await }
    }))
    .await
}
