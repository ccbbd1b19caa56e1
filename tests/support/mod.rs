//! Shared test support: a DynamoDB Local client and a call-counting interceptor.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
    transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
};
use lambda_idempotency::store::dynamodb::{AttributeNames, create_table};

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

/// Records the name of every DynamoDB operation a client executes (once per call,
/// however many attempts the SDK makes).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl CallCounter {
    /// The operations since the last `take`, oldest first.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = context.input();
        let name = if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            "DeleteItem"
        } else if input.downcast_ref::<TransactWriteItemsInput>().is_some() {
            "TransactWriteItems"
        } else {
            "Other"
        };
        self.calls.lock().unwrap().push(name);
        Ok(())
    }
}

/// A client for the DynamoDB Local at `endpoint` (a test's own), with the SDK's
/// default retries, as a function would have.
pub async fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}
