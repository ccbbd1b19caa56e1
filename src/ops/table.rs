//! Creates the idempotency table, for local use and tests.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use crate::error::{Error, Result};
use crate::store::dynamodb::codec::AttributeNames;
use crate::store::dynamodb::errors::map_sdk_error;
use crate::store::dynamodb::{DynamoDbStore, KeyLayout};

/// How long to wait for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The sparse expiry index the sweeper queries: partition key `expiry_bucket` (S),
/// sort key `expires_at` (N), keys only. See [`sweep`](mod@super::sweep).
pub const EXPIRY_INDEX: &str = "expiry-index";

/// The sparse in-flight index the sweeper counts requests in flight with: partition
/// key `inflight_shard` (S, present only on `PENDING` records), sort key
/// `lease_expires_at_ms` (N), keys only. See [`in_flight`](super::in_flight()).
pub const INFLIGHT_INDEX: &str = "inflight-index";

/// Which secondary indexes [`create_table_with`] gives a table.
///
/// The default is none: a new key then costs the same write units as the fewest
/// requests an idempotency layer can send (3 for a 1 KB response: BENCHMARKS.md),
/// and TTL alone removes expired records, for free. [`TableIndexes::Sweeper`] adds
/// the two sparse, keys-only indexes the sweeper needs: 3 more index write units per
/// new key (the expiry index 1, the in-flight index 2), for early deletes, per-day
/// statistics and the in-flight gauge. Records carry the indexes' key attributes
/// either way, so adding the indexes later needs no change to the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TableIndexes {
    /// No secondary index: the cheapest table; no sweeper, no in-flight gauge.
    #[default]
    None,
    /// [`EXPIRY_INDEX`] and [`INFLIGHT_INDEX`], for the sweeper.
    Sweeper,
}

/// Creates `table` (on-demand billing, string partition key, no secondary index)
/// and turns on TTL on the expiry attribute; an existing table is left as it is,
/// except that TTL is ensured. See [`create_table_with`] for the sweeper's indexes.
///
/// In production, create the table with the SAM template instead; this is for
/// DynamoDB Local, tests and tools.
///
/// ```no_run
/// use lambda_idempotency::ops::create_table;
/// use lambda_idempotency::store::dynamodb::AttributeNames;
///
/// # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), lambda_idempotency::Error> {
/// create_table(&client, "idempotency", &AttributeNames::default()).await?;
/// # Ok(()) }
/// ```
pub async fn create_table(client: &Client, table: &str, names: &AttributeNames) -> Result<()> {
    create_table_with(
        client,
        table,
        names,
        &KeyLayout::PartitionKey,
        TableIndexes::None,
    )
    .await
}

/// [`create_table`] for a [`KeyLayout`]: a static-partition layout gets a string sort
/// key too.
///
/// ```no_run
/// use lambda_idempotency::ops::create_table_with_layout;
/// use lambda_idempotency::store::dynamodb::{AttributeNames, KeyLayout};
///
/// # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), lambda_idempotency::Error> {
/// let layout = KeyLayout::static_partition("idempotency#orders-api", "sk");
/// create_table_with_layout(&client, "app-table", &AttributeNames::default(), &layout).await?;
/// # Ok(()) }
/// ```
pub async fn create_table_with_layout(
    client: &Client,
    table: &str,
    names: &AttributeNames,
    layout: &KeyLayout,
) -> Result<()> {
    create_table_with(client, table, names, layout, TableIndexes::None).await
}

/// Creates `table` keyed for `layout`, with `indexes`, and turns on TTL on the expiry
/// attribute. An existing table is left as it is, except that TTL is ensured and,
/// with [`TableIndexes::Sweeper`], a missing index is added (without waiting for
/// DynamoDB to backfill it; DynamoDB adds one index at a time, so a table missing
/// both gets the second on the next call). Indexes are never removed.
///
/// ```no_run
/// use lambda_idempotency::ops::{TableIndexes, create_table_with};
/// use lambda_idempotency::store::dynamodb::{AttributeNames, KeyLayout};
///
/// # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), lambda_idempotency::Error> {
/// let (names, layout) = (AttributeNames::default(), KeyLayout::PartitionKey);
/// create_table_with(&client, "idempotency", &names, &layout, TableIndexes::Sweeper).await?;
/// # Ok(()) }
/// ```
pub async fn create_table_with(
    client: &Client,
    table: &str,
    names: &AttributeNames,
    layout: &KeyLayout,
    indexes: TableIndexes,
) -> Result<()> {
    layout.check(names)?;
    let sweeper = indexes == TableIndexes::Sweeper;
    let mut definitions = vec![definition(&names.partition_key, ScalarAttributeType::S)?];
    if sweeper {
        definitions.extend(index_attribute_definitions(names)?);
    }
    let mut key_schema = vec![key(&names.partition_key, KeyType::Hash)?];
    if let Some(sort_key) = layout.sort_key() {
        definitions.push(definition(sort_key, ScalarAttributeType::S)?);
        key_schema.push(key(sort_key, KeyType::Range)?);
    }
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema));
    if sweeper {
        for index in [EXPIRY_INDEX, INFLIGHT_INDEX] {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .set_key_schema(Some(index_key_schema(names, index)?))
                    .projection(keys_only())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            );
        }
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(map_sdk_error(e, table)),
    }
    wait_until_active(client, table).await?;
    if sweeper {
        ensure_index(client, table, names, EXPIRY_INDEX).await?;
        ensure_index(client, table, names, INFLIGHT_INDEX).await?;
    }
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

/// The attributes the sweeper's two indexes are keyed on.
fn index_attribute_definitions(names: &AttributeNames) -> Result<Vec<AttributeDefinition>> {
    Ok(vec![
        definition(&names.expiry_bucket, ScalarAttributeType::S)?,
        definition(&names.expires_at, ScalarAttributeType::N)?,
        definition(&names.inflight_shard, ScalarAttributeType::S)?,
        definition(&names.lease_expires_at, ScalarAttributeType::N)?,
    ])
}

fn definition(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

/// The key schema of [`EXPIRY_INDEX`] or (any other name) [`INFLIGHT_INDEX`].
fn index_key_schema(names: &AttributeNames, index: &str) -> Result<Vec<KeySchemaElement>> {
    let (hash, range) = if index == EXPIRY_INDEX {
        (&names.expiry_bucket, &names.expires_at)
    } else {
        (&names.inflight_shard, &names.lease_expires_at)
    };
    Ok(vec![key(hash, KeyType::Hash)?, key(range, KeyType::Range)?])
}

fn keys_only() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::KeysOnly)
        .build()
}

/// Adds `index` ([`EXPIRY_INDEX`] or [`INFLIGHT_INDEX`]) to a table created before it
/// existed. It does not wait for it: DynamoDB backfills a new index from the table's
/// items, which takes minutes or more on a large table (and DynamoDB Local sometimes
/// leaves it `CREATING` for long); the sweeper uses it once it is `ACTIVE` (see
/// [`check_expiry_index`](super::check_expiry_index)). DynamoDB builds one index at a
/// time: while another is being built the request is refused, and the index is
/// added by a later call.
async fn ensure_index(
    client: &Client,
    table: &str,
    names: &AttributeNames,
    index: &str,
) -> Result<()> {
    if index_status(client, table, index).await?.is_some() {
        return Ok(());
    }
    let key_schema = index_key_schema(names, index)?;
    let added = client
        .update_table()
        .table_name(table)
        .set_attribute_definitions(Some(index_attribute_definitions(names)?))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name(index)
                        .set_key_schema(Some(key_schema))
                        .projection(keys_only())
                        .build()
                        .map_err(|e| invalid(e.to_string()))?,
                )
                .build(),
        )
        .send()
        .await;
    match added {
        Ok(_) => Ok(()),
        // Another caller is adding it, or DynamoDB is still building another index.
        Err(e)
            if matches!(
                e.code(),
                Some("ResourceInUseException" | "LimitExceededException")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(map_sdk_error(e, table)),
    }
}

/// `Ok(())` when `index` (keyed on `keys`) is `ACTIVE`; otherwise why not, as one
/// clear error: still being built ([`Error::StoreUnavailable`], ending with
/// `when_built`), or missing ([`Error::StoreRejected`], saying what it is `needed_for`).
pub(crate) async fn check_index(
    store: &DynamoDbStore,
    index: &str,
    keys: (&str, &str),
    when_built: &str,
    needed_for: &str,
) -> Result<()> {
    let table = store.table_name();
    match index_status(store.client(), table, index).await? {
        Some(IndexStatus::Active) => Ok(()),
        Some(status) => Err(Error::StoreUnavailable {
            message: format!(
                "index {index:?} of table {table:?} is {status} (DynamoDB is still building it): \
                 {when_built}"
            ),
            source: None,
        }),
        None => Err(Error::StoreRejected {
            message: format!(
                "table {table:?} has no index {index:?} on ({}, {}): {needed_for} \
                 (create_table_with and TableIndexes::Sweeper, or `idem table create --with-sweeper-indexes`, add it to an existing table)",
                keys.0, keys.1
            ),
            source: None,
        }),
    }
}

/// The status of `index`, or `None` when the table has no such index.
pub(crate) async fn index_status(
    client: &Client,
    table: &str,
    index: &str,
) -> Result<Option<IndexStatus>> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| map_sdk_error(e, table))?;
    Ok(out.table().and_then(|t| {
        t.global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(index))
            // DynamoDB Local leaves the status out; an index it lists is usable.
            .map(|i| i.index_status().cloned().unwrap_or(IndexStatus::Active))
    }))
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
