//! The DynamoDB repository: one table, single-table design.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | order | `ORDER#<orderId>` | `ORDER` |
//! | payment attempt | `ORDER#<orderId>` | `PAYMENT#<paymentAttemptId>` |
//! | refund | `ORDER#<orderId>` | `REFUND#<refundId>` |
//! | stock | `SKU#<sku>` | `STOCK` |
//! | reservation | `SKU#<sku>` | `RESERVATION#<reservationId>` |
//!
//! Every item has an `entity` attribute so side effects can be counted.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TransactWriteItem,
    Update,
};
use lambda_idempotency::atomic::AtomicWrites;

use super::{
    LineItem, Order, OrdersRepo, PaymentAttempt, Refund, RefundOutcome, RepoError, Reservation,
    ReserveOutcome, SideEffects,
};

type Item = HashMap<String, AttributeValue>;

/// The orders table.
#[derive(Debug, Clone)]
pub struct DynamoDbRepo {
    client: Client,
    table: String,
}

impl DynamoDbRepo {
    /// A repository over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Fails with a clear message when the table does not exist or cannot be reached.
    pub async fn check_table(&self) -> Result<(), RepoError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.code() {
                Some("ResourceNotFoundException") => {
                    RepoError(format!("orders table {:?} does not exist", self.table))
                }
                _ => sdk(e),
            })
    }

    fn put(&self, item: Item) -> Result<TransactWriteItem, RepoError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| RepoError(e.to_string()))?,
            )
            .build())
    }
}

/// Creates the orders table (on-demand, `pk` + `sk` strings) if it does not exist.
pub async fn create_orders_table(client: &Client, table: &str) -> Result<(), RepoError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| RepoError(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| RepoError(e.to_string()))
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(sdk(e)),
    }
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(sdk)?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(RepoError(format!("table {table:?} did not become active")))
}

impl DynamoDbRepo {
    /// A refund's two writes: the order's refundable total lowered, conditional so a
    /// refund never exceeds the order (returning the old item when refused), and the
    /// refund item.
    fn refund_writes(&self, refund: &Refund) -> Result<[TransactWriteItem; 2], RepoError> {
        let order_pk = format!("ORDER#{}", refund.order_id);
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&order_pk))
            .key("sk", s("ORDER"))
            .update_expression(
                "SET refundableCents = refundableCents - :amt, refundedCents = refundedCents + :amt",
            )
            .condition_expression("attribute_exists(pk) AND refundableCents >= :amt")
            .expression_attribute_values(":amt", n(refund.amount_cents))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| RepoError(e.to_string()))?;
        let put = self.put(HashMap::from([
            ("pk".to_owned(), s(&order_pk)),
            ("sk".to_owned(), s(format!("REFUND#{}", refund.refund_id))),
            ("entity".to_owned(), s("refund")),
            ("refundId".to_owned(), s(&refund.refund_id)),
            ("amountCents".to_owned(), n(refund.amount_cents)),
            ("reason".to_owned(), s(&refund.reason)),
        ]))?;
        Ok([TransactWriteItem::builder().update(update).build(), put])
    }

    /// Checks the order, then hands the refund's writes (still conditional, so a
    /// refund never exceeds the order) to the idempotency layer, to be committed with
    /// the request's completion: a crash or a failed commit refunds nothing, and the
    /// retry refunds once. `refunded_cents` is the total as read plus this refund; if
    /// another refund takes the amount first, the commit is refused, nothing is
    /// written, and a retry runs again.
    async fn refund_atomically(
        &self,
        refund: &Refund,
        writes: &AtomicWrites,
    ) -> Result<RefundOutcome, RepoError> {
        let Some(order) = self.get_order(&refund.order_id).await? else {
            return Ok(RefundOutcome::UnknownOrder);
        };
        let refundable = order.total_cents.saturating_sub(order.refunded_cents);
        if refund.amount_cents > refundable {
            return Ok(RefundOutcome::ExceedsTotal {
                refundable_cents: refundable,
            });
        }
        for write in self.refund_writes(refund)? {
            writes.push(write).map_err(|e| RepoError(e.to_string()))?;
        }
        Ok(RefundOutcome::Recorded {
            refunded_cents: order.refunded_cents + refund.amount_cents,
        })
    }

    /// A reservation's two writes: the stock decrement, conditional so stock never
    /// goes negative (returning the old item when refused), and the reservation item.
    fn reservation_writes(&self, r: &Reservation) -> Result<[TransactWriteItem; 2], RepoError> {
        let sku_pk = format!("SKU#{}", r.sku);
        let decrement = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&sku_pk))
            .key("sk", s("STOCK"))
            .update_expression("SET available = available - :q")
            .condition_expression("attribute_exists(pk) AND available >= :q")
            .expression_attribute_values(":q", n(r.quantity))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| RepoError(e.to_string()))?;
        let reservation = self.put(HashMap::from([
            ("pk".to_owned(), s(&sku_pk)),
            (
                "sk".to_owned(),
                s(format!("RESERVATION#{}", r.reservation_id)),
            ),
            ("entity".to_owned(), s("reservation")),
            ("reservationId".to_owned(), s(&r.reservation_id)),
            ("quantity".to_owned(), n(r.quantity)),
        ]))?;
        Ok([
            TransactWriteItem::builder().update(decrement).build(),
            reservation,
        ])
    }

    /// Checks the stock, then hands the decrement (still conditional, so stock never
    /// goes negative) and the reservation to the idempotency layer, to be committed
    /// with the request's completion. `remaining` is the stock as read minus this
    /// reservation; if another reservation takes the stock first, the commit is
    /// refused, nothing is written, and a retry runs again.
    async fn reserve_atomically(
        &self,
        r: &Reservation,
        writes: &AtomicWrites,
    ) -> Result<ReserveOutcome, RepoError> {
        let Some(available) = self.stock(&r.sku).await? else {
            return Ok(ReserveOutcome::UnknownSku);
        };
        let wanted = u64::from(r.quantity);
        if available < wanted {
            return Ok(ReserveOutcome::Insufficient { available });
        }
        for write in self.reservation_writes(r)? {
            writes.push(write).map_err(|e| RepoError(e.to_string()))?;
        }
        Ok(ReserveOutcome::Reserved {
            remaining: available - wanted,
        })
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sdk<E, R>(e: SdkError<E, R>) -> RepoError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    RepoError(message)
}

fn get_s(item: &Item, name: &str) -> Result<String, RepoError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(RepoError(format!(
            "attribute {name} missing or not a string"
        ))),
    }
}

fn get_n(item: &Item, name: &str) -> Result<u64, RepoError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| RepoError(format!("attribute {name} is not a whole number"))),
        _ => Err(RepoError(format!(
            "attribute {name} missing or not a number"
        ))),
    }
}

/// The index of the first cancellation reason that is a failed condition, and the
/// item DynamoDB returned for it.
fn failed_condition(
    e: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>,
) -> Option<(usize, Option<Item>)> {
    let SdkError::ServiceError(service) = e else {
        return None;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return None;
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .enumerate()
        .find(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
        .map(|(i, r)| (i, r.item().cloned()))
}

#[async_trait]
impl OrdersRepo for DynamoDbRepo {
    async fn create_order(&self, order: &Order) -> Result<(), RepoError> {
        let items = serde_json::to_string(&order.items).map_err(|e| RepoError(e.to_string()))?;
        let item: Item = HashMap::from([
            ("pk".to_owned(), s(format!("ORDER#{}", order.order_id))),
            ("sk".to_owned(), s("ORDER")),
            ("entity".to_owned(), s("order")),
            ("orderId".to_owned(), s(&order.order_id)),
            ("customerId".to_owned(), s(&order.customer_id)),
            ("items".to_owned(), s(items)),
            ("currency".to_owned(), s(&order.currency)),
            ("totalCents".to_owned(), n(order.total_cents)),
            ("refundedCents".to_owned(), n(order.refunded_cents)),
            (
                "refundableCents".to_owned(),
                n(order.total_cents - order.refunded_cents),
            ),
            ("createdAtMs".to_owned(), n(order.created_at_ms)),
        ]);
        // Under the idempotency layer with DynamoDB, the order is committed together
        // with the request's completion: either both or neither.
        if let Some(writes) = AtomicWrites::current() {
            return writes
                .push(self.put(item)?)
                .map_err(|e| RepoError(e.to_string()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn get_order(&self, order_id: &str) -> Result<Option<Order>, RepoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("ORDER#{order_id}")))
            .key("sk", s("ORDER"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let items: Vec<LineItem> = serde_json::from_str(&get_s(item, "items")?)
            .map_err(|e| RepoError(format!("order items: {e}")))?;
        Ok(Some(Order {
            order_id: get_s(item, "orderId")?,
            customer_id: get_s(item, "customerId")?,
            items,
            currency: get_s(item, "currency")?,
            total_cents: get_n(item, "totalCents")?,
            refunded_cents: get_n(item, "refundedCents")?,
            created_at_ms: i64::try_from(get_n(item, "createdAtMs")?).unwrap_or(i64::MAX),
        }))
    }

    async fn add_payment_attempt(&self, a: &PaymentAttempt) -> Result<(), RepoError> {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s(format!("ORDER#{}", a.order_id))),
            (
                "sk".to_owned(),
                s(format!("PAYMENT#{}", a.payment_attempt_id)),
            ),
            ("entity".to_owned(), s("payment_attempt")),
            ("paymentAttemptId".to_owned(), s(&a.payment_attempt_id)),
            ("amountCents".to_owned(), n(a.amount_cents)),
            ("currency".to_owned(), s(&a.currency)),
            ("paymentMethod".to_owned(), s(&a.payment_method)),
            ("status".to_owned(), s(&a.status)),
            ("gatewayReference".to_owned(), s(&a.gateway_reference)),
        ]);
        // Under the idempotency layer with DynamoDB, the attempt is committed with the
        // request's completion: a crash or a failed commit records nothing, and the
        // retry (whose gateway call carries the same key) records it once.
        if let Some(writes) = AtomicWrites::current() {
            return writes
                .push(self.put(item)?)
                .map_err(|e| RepoError(e.to_string()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn add_refund(&self, refund: &Refund) -> Result<RefundOutcome, RepoError> {
        if let Some(writes) = AtomicWrites::current() {
            return self.refund_atomically(refund, &writes).await;
        }
        let [update, put] = self.refund_writes(refund)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(update)
            .transact_items(put)
            .send()
            .await;
        match result {
            Ok(_) => {
                let order = self.get_order(&refund.order_id).await?;
                Ok(RefundOutcome::Recorded {
                    refunded_cents: order
                        .map(|o| o.refunded_cents)
                        .unwrap_or(refund.amount_cents),
                })
            }
            Err(e) => match failed_condition(&e) {
                Some((0, None)) => Ok(RefundOutcome::UnknownOrder),
                Some((0, Some(old))) => Ok(RefundOutcome::ExceedsTotal {
                    refundable_cents: get_n(&old, "refundableCents")?,
                }),
                _ => Err(sdk(e)),
            },
        }
    }

    async fn reserve(&self, r: &Reservation) -> Result<ReserveOutcome, RepoError> {
        if let Some(writes) = AtomicWrites::current() {
            return self.reserve_atomically(r, &writes).await;
        }
        let [decrement, reservation] = self.reservation_writes(r)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(decrement)
            .transact_items(reservation)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ReserveOutcome::Reserved {
                remaining: self.stock(&r.sku).await?.unwrap_or(0),
            }),
            Err(e) => match failed_condition(&e) {
                Some((0, None)) => Ok(ReserveOutcome::UnknownSku),
                Some((0, Some(old))) => Ok(ReserveOutcome::Insufficient {
                    available: get_n(&old, "available")?,
                }),
                _ => Err(sdk(e)),
            },
        }
    }

    async fn set_stock(&self, sku: &str, available: u64) -> Result<(), RepoError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("SKU#{sku}")))
            .item("sk", s("STOCK"))
            .item("entity", s("stock"))
            .item("available", n(available))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn stock(&self, sku: &str) -> Result<Option<u64>, RepoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("SKU#{sku}")))
            .key("sk", s("STOCK"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        out.item().map(|i| get_n(i, "available")).transpose()
    }

    async fn side_effects(&self) -> Result<SideEffects, RepoError> {
        let mut counts = SideEffects::default();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .projection_expression("entity")
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(sdk)?;
            match item.get("entity") {
                Some(AttributeValue::S(e)) if e == "order" => counts.orders += 1,
                Some(AttributeValue::S(e)) if e == "payment_attempt" => {
                    counts.payment_attempts += 1
                }
                Some(AttributeValue::S(e)) if e == "refund" => counts.refunds += 1,
                Some(AttributeValue::S(e)) if e == "reservation" => counts.reservations += 1,
                _ => {}
            }
        }
        Ok(counts)
    }
}
