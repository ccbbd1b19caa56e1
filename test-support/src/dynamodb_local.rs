//! Clients for the DynamoDB Local that `scripts/with-dynamodb-local.sh` starts, and
//! tables of a test's own in it.

use aws_sdk_dynamodb::Client;
use lambda_idempotency::ops::create_table;
use lambda_idempotency::store::dynamodb::AttributeNames;

use crate::CallCounter;

/// The DynamoDB Local endpoint. Tests that need it fail loudly without it: they
/// never pass by skipping.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: these tests run against DynamoDB Local. \
             Run them with `make test`, or wrap the command in scripts/with-dynamodb-local.sh"
        ),
    }
}

/// SDK configuration for DynamoDB Local, from the environment the script sets.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let _ = endpoint();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A client for DynamoDB Local.
pub async fn client() -> Client {
    Client::new(&sdk_config().await)
}

/// A client for DynamoDB Local that records every operation it sends.
pub async fn counting_client() -> (Client, CallCounter) {
    let counter = CallCounter::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
        .interceptor(counter.clone())
        .build();
    (Client::from_conf(config), counter)
}

/// Creates a table with a unique name, so tests never share state.
pub async fn fresh_table(client: &Client, names: &AttributeNames) -> String {
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    create_table(client, &table, names).await.unwrap();
    table
}

/// Creates a table with a unique name and the sweeper's two indexes
/// ([`TableIndexes::Sweeper`](lambda_idempotency::ops::TableIndexes::Sweeper)).
pub async fn fresh_sweeper_table(client: &Client, names: &AttributeNames) -> String {
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    lambda_idempotency::ops::create_table_with(
        client,
        &table,
        names,
        &lambda_idempotency::store::dynamodb::KeyLayout::PartitionKey,
        lambda_idempotency::ops::TableIndexes::Sweeper,
    )
    .await
    .unwrap();
    table
}

/// Creates a table with a unique name, keyed for `layout`.
pub async fn fresh_table_with_layout(
    client: &Client,
    names: &AttributeNames,
    layout: &lambda_idempotency::store::dynamodb::KeyLayout,
) -> String {
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    lambda_idempotency::ops::create_table_with_layout(client, &table, names, layout)
        .await
        .unwrap();
    table
}

/// Creates a table named `prefix-<uuid>` with only a string partition key `pk`, the
/// shape of a handler's own table (or of a table created by an older release).
pub async fn fresh_pk_table(client: &Client, prefix: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = format!("{prefix}-{}", uuid::Uuid::new_v4());
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    table
}

/// Creates a table keyed like the default one (`names.partition_key`) with only
/// `indexes` of the two sparse ones ([`EXPIRY_INDEX`], [`INFLIGHT_INDEX`]): a table
/// from an older release, or one without an index whose cost is being measured.
///
/// [`EXPIRY_INDEX`]: lambda_idempotency::ops::EXPIRY_INDEX
/// [`INFLIGHT_INDEX`]: lambda_idempotency::ops::INFLIGHT_INDEX
pub async fn fresh_table_with_indexes(
    client: &Client,
    names: &AttributeNames,
    indexes: &[&str],
) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    use lambda_idempotency::ops::EXPIRY_INDEX;
    let definition = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    let mut create = client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(definition(&names.partition_key, ScalarAttributeType::S))
        .key_schema(key(&names.partition_key, KeyType::Hash));
    for index in indexes {
        let (hash, range) = if *index == EXPIRY_INDEX {
            (&names.expiry_bucket, &names.expires_at)
        } else {
            (&names.inflight_shard, &names.lease_expires_at)
        };
        create = create
            .attribute_definitions(definition(hash, ScalarAttributeType::S))
            .attribute_definitions(definition(range, ScalarAttributeType::N))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(hash, KeyType::Hash))
                    .key_schema(key(range, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    create.send().await.unwrap();
    table
}

/// A client for the DynamoDB Local at `endpoint` (a test's own), with the SDK's
/// default retries, as a function would have.
pub async fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}
