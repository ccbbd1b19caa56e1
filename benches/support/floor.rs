//! The floor: the fewest and smallest DynamoDB requests an idempotency layer can make,
//! as Powertools for AWS Lambda sends them. An item of partition key, status, expiry
//! and data; a conditional `PutItem` to begin (absent or expired), an `UpdateItem`
//! to complete, and for a duplicate one failing `PutItem` that returns the item. No
//! fingerprint, lease token, timestamps, audit fields or index attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};

/// The floor's requests on a table of its own (partition key `id`).
pub struct Floor {
    pub client: Client,
    pub table: String,
    /// The stored response (the same bytes the layer stores).
    pub response: Vec<u8>,
}

impl Floor {
    /// Creates the floor's table: `id` (S), on demand, no index.
    pub async fn create(client: &Client, response: Vec<u8>) -> Floor {
        let table = format!("floor-bench-{}", uuid::Uuid::new_v4().simple());
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create the floor table");
        Floor {
            client: client.clone(),
            table,
            response,
        }
    }

    /// The item a begin writes: `id`, `status`, `expiration`.
    pub fn item(&self, id: &str, now_ms: i64) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("id".to_owned(), AttributeValue::S(id.to_owned())),
            ("status".to_owned(), AttributeValue::S("INPROGRESS".into())),
            (
                "expiration".to_owned(),
                AttributeValue::N((now_ms / 1000 + 24 * 3600).to_string()),
            ),
        ])
    }

    /// Begin: put unless an unexpired item exists; return it when one does.
    pub fn put(&self, id: &str, now_ms: i64) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(id, now_ms)))
            .condition_expression("attribute_not_exists(id) OR expiration < :now")
            .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Complete: the status and the data.
    pub fn update(&self, id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression("SET #st = :done, #data = :data")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":done", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(
                ":data",
                AttributeValue::B(Blob::new(self.response.clone())),
            )
    }

    /// A new key: begin, then complete.
    pub async fn new_key(&self, id: &str, now_ms: i64) {
        self.put(id, now_ms).send().await.expect("floor PutItem");
        self.update(id).send().await.expect("floor UpdateItem");
    }

    /// A duplicate: the begin fails and returns the completed item. `true` when it did.
    pub async fn failing_put(&self, id: &str, now_ms: i64) -> bool {
        match self.put(id, now_ms).send().await {
            Ok(_) => false,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    unreachable!()
                };
                failed.item().is_some_and(|i| i.contains_key("data"))
            }
            Err(e) => panic!("floor PutItem failed: {e:?}"),
        }
    }
}

/// The size DynamoDB bills an item by: each attribute's name plus its value (strings
/// and binaries by length, numbers by about one byte per two significant digits
/// plus one).
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::N(n) => {
                        let digits = n.trim_start_matches('-').replace('.', "");
                        let significant = digits.trim_start_matches('0').trim_end_matches('0');
                        significant.len().div_ceil(2) + 1
                    }
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    _ => 0,
                }
        })
        .sum()
}
