//! Creates the idempotency table, for local use and tests.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

use super::codec::AttributeNames;
use super::errors::map_sdk_error;
use crate::error::{Error, Result};

/// How long to wait for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates `table` (on-demand billing, string partition key) and turns on TTL on the
/// expiry attribute. An existing table is left as it is, and TTL is still ensured.
///
/// In production, create the table with the SAM template instead; this is for
/// DynamoDB Local, tests and tools.
///
/// ```no_run
/// use lambda_idempotency::store::dynamodb::{AttributeNames, create_table};
///
/// # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), lambda_idempotency::Error> {
/// create_table(&client, "idempotency", &AttributeNames::default()).await?;
/// # Ok(()) }
/// ```
pub async fn create_table(client: &Client, table: &str, names: &AttributeNames) -> Result<()> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&names.partition_key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(&names.partition_key)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(map_sdk_error(e, table)),
    }
    wait_until_active(client, table).await?;
    let ttl = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(&names.expires_at)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        )
        .send()
        .await;
    match ttl {
        Ok(_) => Ok(()),
        // Enabling TTL twice is refused with a validation error; that is what we want.
        Err(e)
            if e.code() == Some("ValidationException")
                && e.message().is_some_and(|m| m.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(e) => Err(map_sdk_error(e, table)),
    }
}

async fn wait_until_active(client: &Client, table: &str) -> Result<()> {
    let start = tokio::time::Instant::now();
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, table))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if start.elapsed() > ACTIVE_TIMEOUT {
            return Err(Error::StoreUnavailable {
                message: format!("table {table:?} did not become active within {ACTIVE_TIMEOUT:?}"),
                source: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn invalid(message: String) -> Error {
    Error::StoreRejected {
        message,
        source: None,
    }
}
