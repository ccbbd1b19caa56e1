//! Atomic completion on DynamoDB: the record's completion and the handler's writes in
//! one `TransactWriteItems`, fenced on the lease token.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::DynamoDbStore;
use super::errors::map_sdk_error;
use crate::atomic::{MAX_TRANSACTION_ACTIONS, MAX_TRANSACTION_BYTES};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::record::Status;
use crate::store::{Lease, WriteOutcome};

impl DynamoDbStore {
    pub(super) async fn complete_in_transaction(
        &self,
        lease: &Lease,
        response: &[u8],
        writes: Vec<TransactWriteItem>,
    ) -> Result<WriteOutcome> {
        let parts = self.response_parts(response);
        let actions = writes.len() + 1;
        let bytes = parts.stored_len + writes.iter().map(write_size).sum::<usize>();
        if actions > MAX_TRANSACTION_ACTIONS || bytes > MAX_TRANSACTION_BYTES {
            return Err(Error::TransactionTooLarge { actions, bytes });
        }
        let n = &self.names;
        let omitted = parts.omitted;
        let mut completion = Update::builder()
            .table_name(&*self.table)
            .set_key(Some(self.key(&lease.partition_key)))
            .update_expression(parts.expression)
            .condition_expression("#tok = :tok AND #st = :pending")
            .expression_attribute_names("#tok", &n.lease_token)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#upd", &n.updated_at)
            .expression_attribute_names("#ifs", &n.inflight_shard)
            .expression_attribute_values(":tok", AttributeValue::S(lease.token.as_str().into()))
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(Status::Pending.as_str().into()),
            )
            .expression_attribute_values(
                ":status",
                AttributeValue::S(Status::Completed.as_str().into()),
            )
            .expression_attribute_values(
                ":now_ms",
                AttributeValue::N(self.clock.now_millis().to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in parts.names {
            completion = completion.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in parts.values {
            completion = completion.expression_attribute_values(placeholder, value);
        }
        let completion = completion.build().map_err(|e| Error::StoreRejected {
            message: e.to_string(),
            source: None,
        })?;
        let mut items = Vec::with_capacity(actions);
        items.push(TransactWriteItem::builder().update(completion).build());
        items.extend(writes);
        let mut backoff = std::time::Duration::from_millis(20);
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match sent {
                Ok(_) => {
                    return Ok(WriteOutcome::written(omitted));
                }
                // Another transaction held one of the items: nothing was applied, so
                // trying again is safe.
                Err(e) if attempt < CONFLICT_ATTEMPTS && only_conflicts(&e) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return self.cancelled(e, actions, bytes),
            }
        }
        Err(Error::StoreUnavailable {
            message: "transaction kept conflicting".to_owned(),
            source: None,
        })
    }

    fn cancelled(
        &self,
        e: SdkError<TransactWriteItemsError, HttpResponse>,
        actions: usize,
        bytes: usize,
    ) -> Result<WriteOutcome> {
        if let SdkError::ServiceError(service) = &e {
            if let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
            {
                let reasons = cancelled.cancellation_reasons();
                if let Some((index, reason)) = reasons
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                {
                    return Ok(if index == 0 {
                        WriteOutcome::LeaseLost {
                            current: self.decode_optional(reason.item()),
                        }
                    } else {
                        WriteOutcome::WritesRejected { index: index - 1 }
                    });
                }
            }
            // Cancelled only because DynamoDB throttled it: nothing was applied, and it
            // is the store asking to slow down, like any throttling. The completion is
            // retried within its budget (StoreUnavailable) instead of failing the record.
            if let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
                && throttled_only(cancelled.cancellation_reasons())
            {
                return Err(Error::StoreUnavailable {
                    message: format!(
                        "transaction throttled: {}",
                        cancelled
                            .message()
                            .unwrap_or("TransactionCanceledException")
                    ),
                    source: None,
                });
            }
            let err = service.err();
            if err.code() == Some("ValidationException")
                && err
                    .message()
                    .is_some_and(|m| m.contains("size") || m.contains("exceed"))
            {
                return Err(Error::TransactionTooLarge { actions, bytes });
            }
        }
        Err(map_sdk_error(e, &self.table))
    }
}

/// Attempts when a transaction is cancelled only by conflicts with other transactions.
const CONFLICT_ATTEMPTS: u32 = 5;

fn only_conflicts(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    let SdkError::ServiceError(service) = e else {
        return false;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return false;
    };
    let reasons = cancelled.cancellation_reasons();
    reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
        && reasons
            .iter()
            .all(|r| matches!(r.code(), None | Some("None") | Some("TransactionConflict")))
}

/// Cancellation reasons that mean "throttled" (DynamoDB's codes in
/// `CancellationReasons`).
const THROTTLING_REASONS: &[&str] = &["ThrottlingError", "ProvisionedThroughputExceeded"];

/// Whether a transaction was cancelled by throttling and nothing else: at least one
/// throttling reason, every other item not at fault (or only in conflict).
fn throttled_only(reasons: &[aws_sdk_dynamodb::types::CancellationReason]) -> bool {
    reasons
        .iter()
        .any(|r| r.code().is_some_and(|c| THROTTLING_REASONS.contains(&c)))
        && reasons.iter().all(|r| match r.code() {
            None | Some("None" | "TransactionConflict") => true,
            Some(code) => THROTTLING_REASONS.contains(&code),
        })
}

/// An estimate of a write's size as DynamoDB counts it (names plus values), to refuse
/// a transaction over 4 MB with a clear error before sending it.
fn write_size(write: &TransactWriteItem) -> usize {
    let map = |m: Option<&HashMap<String, AttributeValue>>| {
        m.map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
    };
    if let Some(p) = write.put() {
        return map(Some(p.item())) + p.condition_expression().map_or(0, str::len);
    }
    if let Some(u) = write.update() {
        return map(Some(u.key()))
            + map(u.expression_attribute_values())
            + u.update_expression().len();
    }
    if let Some(d) = write.delete() {
        return map(Some(d.key())) + map(d.expression_attribute_values());
    }
    if let Some(c) = write.condition_check() {
        return map(Some(c.key())) + map(c.expression_attribute_values());
    }
    0
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => l.iter().map(value_size).sum::<usize>() + 3,
        AttributeValue::M(m) => {
            m.iter()
                .map(|(k, v)| k.len() + value_size(v))
                .sum::<usize>()
                + 3
        }
        _ => 1,
    }
}
