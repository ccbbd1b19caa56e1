//! The payments consumer on Lambda (SQS event source with `ReportBatchItemFailures`).
//!
//! Reads `IDEMPOTENCY_TABLE`, `LEDGER_TABLE`, optional `IDEMPOTENCY_EXPIRY` /
//! `IDEMPOTENCY_MAX_LEASE`, and the SDK's usual settings.

use std::sync::Arc;

use lambda_idempotency::config::IdempotencyConfig;
use lambda_idempotency::store::dynamodb::{DynamoDbStore, ENV_TABLE};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use payments_consumer::ledger::DynamoDbLedger;
use payments_consumer::{Consumer, ENV_LEDGER_TABLE};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("payments-consumer: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .init();
    // CloudWatch EMF on standard output, flushed at the end of every idempotent request.
    lambda_idempotency::metrics::install(
        lambda_idempotency::metrics::EmfRecorder::builder().build(),
    )?;

    let config = IdempotencyConfig::from_env()?;
    let idempotency_table = required_env(ENV_TABLE)?;
    let ledger_table = required_env(ENV_LEDGER_TABLE)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoDbStore::new(client.clone(), idempotency_table);
    store.check_table().await?;
    let ledger = DynamoDbLedger::new(client, ledger_table);
    ledger.check_table().await?;

    let layer = Consumer::layer_builder(store).config(config).build()?;
    let consumer = Consumer::new(Arc::new(ledger), layer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let consumer = consumer.clone();
        async move { consumer.handle(event).await }
    }))
    .await
}

fn required_env(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("environment variable {name} must name a DynamoDB table").into()),
    }
}
