//! The ledger payments are applied to: an entry per application and a running
//! balance per order. Entries get generated ids, so applying a payment twice would
//! show up as two entries and a doubled balance: only the idempotency layer prevents it.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TableStatus, TransactWriteItem, Update,
};

/// A ledger failure; the message is reported as failed and SQS redelivers it.
#[derive(Debug, thiserror::Error)]
#[error("ledger: {0}")]
pub struct LedgerError(pub String);

/// Where payments are applied.
#[async_trait]
pub trait Ledger: Debug + Send + Sync + 'static {
    /// Records an entry for `payment_id` and adds `amount_cents` to the order's
    /// balance, atomically; returns the entry id and the new balance.
    async fn apply(
        &self,
        payment_id: &str,
        order_id: &str,
        amount_cents: i64,
    ) -> Result<(String, i64), LedgerError>;
    /// The order's balance.
    async fn balance(&self, order_id: &str) -> Result<i64, LedgerError>;
    /// How many entries exist for `payment_id`.
    async fn entries_for(&self, payment_id: &str) -> Result<usize, LedgerError>;
}

/// The ledger in DynamoDB (`pk` + `sk`; entries under `PAYMENT#<id>`, balances under
/// `ORDER#<id>`).
#[derive(Debug, Clone)]
pub struct DynamoDbLedger {
    client: Client,
    table: String,
}

impl DynamoDbLedger {
    /// A ledger over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Fails with a clear message when the table does not exist or cannot be reached.
    pub async fn check_table(&self) -> Result<(), LedgerError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Err(LedgerError(format!(
                "ledger table {:?} does not exist",
                self.table
            ))),
            Err(e) => Err(sdk(e)),
        }
    }
}

fn sdk<E: std::error::Error + 'static, R: Debug>(e: SdkError<E, R>) -> LedgerError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    LedgerError(message)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[async_trait]
impl Ledger for DynamoDbLedger {
    async fn apply(
        &self,
        payment_id: &str,
        order_id: &str,
        amount_cents: i64,
    ) -> Result<(String, i64), LedgerError> {
        let entry_id = format!("led_{}", uuid::Uuid::new_v4().simple());
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("PAYMENT#{payment_id}")))
            .item("sk", s(format!("ENTRY#{entry_id}")))
            .item("orderId", s(order_id))
            .item("amountCents", AttributeValue::N(amount_cents.to_string()))
            .build()
            .map_err(|e| LedgerError(e.to_string()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("ORDER#{order_id}")))
            .key("sk", s("BALANCE"))
            .update_expression("ADD balanceCents :amount")
            .expression_attribute_values(":amount", AttributeValue::N(amount_cents.to_string()))
            .build()
            .map_err(|e| LedgerError(e.to_string()))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await
            .map_err(sdk)?;
        Ok((entry_id, self.balance(order_id).await?))
    }

    async fn balance(&self, order_id: &str) -> Result<i64, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("ORDER#{order_id}")))
            .key("sk", s("BALANCE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        match out.item().and_then(|i| i.get("balanceCents")) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| LedgerError(format!("bad balance {n:?}"))),
            _ => Ok(0),
        }
    }

    async fn entries_for(&self, payment_id: &str) -> Result<usize, LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("PAYMENT#{payment_id}")))
            .consistent_read(true)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map_err(sdk)?;
        Ok(usize::try_from(out.count()).unwrap_or(0))
    }
}

/// Creates the ledger table (on-demand, `pk` + `sk` strings) if it does not exist.
pub async fn create_ledger_table(client: &Client, table: &str) -> Result<(), LedgerError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| LedgerError(e.to_string()))
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| LedgerError(e.to_string()))
    };
    match client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await
    {
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
    Err(LedgerError(format!(
        "table {table:?} did not become active"
    )))
}
