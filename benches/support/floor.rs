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
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

/// The floor's requests on a table of its own (partition key `pk`).
pub struct Floor {
    pub client: Client,
    pub table: String,
    /// The stored response (the same bytes the layer stores).
    pub response: Vec<u8>,
}

impl Floor {
    /// Creates the floor's table: `pk` (S), on demand, no index.
    pub async fn create(client: &Client, response: Vec<u8>) -> Floor {
        Floor {
            client: client.clone(),
            table: lambda_idempotency_test_support::fresh_pk_table(client, "floor-bench").await,
            response,
        }
    }

    /// The item a begin writes: `pk`, `status`, `expiration`.
    pub fn item(&self, id: &str, now_ms: i64) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(id.to_owned())),
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
            .condition_expression("attribute_not_exists(pk) OR expiration < :now")
            .expression_attribute_values(":now", AttributeValue::N((now_ms / 1000).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Complete: the status and the data.
    pub fn update(&self, id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(id.to_owned()))
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
