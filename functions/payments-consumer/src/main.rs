//! The payments consumer on Lambda (SQS event source with `ReportBatchItemFailures`).
//!
//! Reads `IDEMPOTENCY_TABLE`, `LEDGER_TABLE`, optional `IDEMPOTENCY_EXPIRY` /
//! `IDEMPOTENCY_MAX_LEASE`, and the SDK's usual settings.

use std::sync::Arc;

use function_support::required_env;
use lambda_idempotency::config::IdempotencyConfig;
use lambda_idempotency::store::dynamodb::{DynamoDbStore, ENV_TABLE, KeyLayout};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use payments_consumer::ledger::DynamoDbLedger;
use payments_consumer::{Consumer, ENV_LEDGER_TABLE};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    function_support::run_or_exit("payments-consumer", run()).await;
}

async fn run() -> Result<(), Error> {
    function_support::init()?;
    let config = IdempotencyConfig::from_env()?;
    let idempotency_table = required_env(ENV_TABLE, "a DynamoDB table")?;
    let ledger_table = required_env(ENV_LEDGER_TABLE, "a DynamoDB table")?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoDbStore::new(client.clone(), idempotency_table)
        .with_key_layout(KeyLayout::from_env()?);
    store.check_table().await?;
    let ledger = DynamoDbLedger::new(client, ledger_table);
    ledger.check_table().await?;

    let batch = Consumer::batch_builder(store).config(config).build()?;
    let consumer = Consumer::new(Arc::new(ledger), batch);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let consumer = consumer.clone();
        async move { consumer.handle(event).await }
    }))
    .await
}
