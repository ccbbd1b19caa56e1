//! The DynamoDB store: one conditional `PutItem` to begin, one fenced `UpdateItem`
//! to complete or fail.
//!
//! Begin writes the `PENDING` record only if no live record blocks it; on a conflict
//! DynamoDB returns the blocking item (`ReturnValuesOnConditionCheckFailure =
//! ALL_OLD`), so a replay, a mismatch or an in-flight answer costs exactly one call.
//! Completion is conditional on the lease token still being ours: a holder whose
//! lease was taken over gets [`WriteOutcome::LeaseLost`] and overwrites nothing.
//!
//! The endpoint, region and credentials come from the SDK's usual configuration, so
//! `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local.
//!
//! Every record also carries an expiry bucket, the key of the sparse expiry index
//! that the sweeper (`ops`, operator code off the request path) uses to delete expired
//! records before TTL does and to keep per-day statistics in the same table.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{BeginOutcome, BeginRequest, Lease, Store, TransactionalStore, WriteOutcome};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::record::{Record, Status};

pub(crate) mod codec;
pub(crate) mod errors;
mod global;
mod layout;
mod names;
mod transact;

pub use codec::AttributeNames;
pub use layout::{ENV_SORT_KEY, ENV_STATIC_PARTITION_KEY, KeyLayout};

use codec::{decode, encode};
use errors::map_sdk_error;

/// How a completion stores its response.
pub(super) struct ResponseParts {
    expression: &'static str,
    names: Vec<(&'static str, String)>,
    values: Vec<(&'static str, AttributeValue)>,
    omitted: Option<usize>,
    /// Bytes of response actually sent (compressed, or none when omitted).
    stored_len: usize,
}

/// Environment variable naming the idempotency table.
pub const ENV_TABLE: &str = "IDEMPOTENCY_TABLE";

/// How many times begin re-tries when DynamoDB reports a conflict whose returned
/// item would not have blocked it (the item changed between the check and the
/// read-back); in practice never more than once.
const BEGIN_ATTEMPTS: usize = 3;

/// Idempotency records in a DynamoDB table.
///
/// ```no_run
/// use lambda_idempotency::store::dynamodb::DynamoDbStore;
///
/// # async fn example() -> Result<(), lambda_idempotency::Error> {
/// // From the SDK's configuration and IDEMPOTENCY_TABLE:
/// let store = DynamoDbStore::from_env().await?;
///
/// // Or from a client you already have:
/// let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), "idempotency");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: Arc<str>,
    names: Arc<AttributeNames>,
    layout: Arc<KeyLayout>,
    clock: SharedClock,
    /// Atomic completion; turned off by `check_table` on an MRSC global table.
    transactions: Arc<std::sync::atomic::AtomicBool>,
    /// The operator guarantees each key is written from one Region (see `global`).
    single_region_keys: bool,
}

impl DynamoDbStore {
    /// A store over `table`, with the default attribute names and the system clock.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
            names: Arc::new(AttributeNames::default()),
            layout: Arc::new(KeyLayout::PartitionKey),
            clock: Arc::new(SystemClock),
            transactions: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            single_region_keys: false,
        }
    }

    /// A store configured from the environment: the SDK's usual settings
    /// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB`), the table named by
    /// `IDEMPOTENCY_TABLE`, and its [`KeyLayout`] ([`KeyLayout::from_env`]:
    /// `IDEMPOTENCY_STATIC_PARTITION_KEY` and `IDEMPOTENCY_SORT_KEY` for a single-table
    /// design).
    pub async fn from_env() -> Result<Self> {
        let table = std::env::var(ENV_TABLE)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::MissingEnv { name: ENV_TABLE })?;
        let layout = KeyLayout::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(Client::new(&sdk), table).with_key_layout(layout))
    }

    /// Reads time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses other attribute names, to fit an existing table.
    #[must_use]
    pub fn with_attribute_names(mut self, names: AttributeNames) -> Self {
        self.names = Arc::new(names);
        self
    }

    /// Keys records as `layout` says (default [`KeyLayout::PartitionKey`]): a static
    /// partition key with the record's key as the sort key fits a single-table
    /// design. The table's key schema must match; [`check_table`](Self::check_table)
    /// checks it.
    ///
    /// ```no_run
    /// use lambda_idempotency::store::dynamodb::{DynamoDbStore, KeyLayout};
    ///
    /// # fn example(client: aws_sdk_dynamodb::Client) {
    /// let store = DynamoDbStore::new(client, "app-table")
    ///     .with_key_layout(KeyLayout::static_partition("idempotency#orders-api", "sk"));
    /// # }
    /// ```
    #[must_use]
    pub fn with_key_layout(mut self, layout: KeyLayout) -> Self {
        self.layout = Arc::new(layout);
        self
    }

    /// The key layout in use.
    pub fn key_layout(&self) -> &KeyLayout {
        &self.layout
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The attribute names in use.
    pub fn attribute_names(&self) -> &AttributeNames {
        &self.names
    }

    /// Checks that the table exists and is reachable, that its key schema is the
    /// [`KeyLayout`]'s (a partition key named as [`AttributeNames::partition_key`],
    /// and the sort key of a static-partition layout, or none), and that its
    /// replication keeps the protocol's guarantees: call it at start-up so a
    /// misconfiguration is one clear error instead of a failure (or a silent double
    /// execution) later.
    ///
    /// A global table in multi-Region eventual consistency is refused
    /// ([`Error::UnsafeGlobalTable`]) unless [`with_single_region_keys`](Self::with_single_region_keys);
    /// on a strongly consistent (MRSC) one, atomic completion is turned off (see
    /// below).
    ///
    /// # Global tables
    ///
    /// On an MREC global table a conditional write sees only its own Region's copy of
    /// the item, and concurrent writes in two Regions resolve last-writer-wins: two
    /// Regions could each begin the same key and run the handler. MRSC keeps
    /// conditional writes exact in every Region, but supports neither transactions nor
    /// TTL, so handlers write directly and the sweeper removes expired records.
    pub async fn check_table(&self) -> Result<()> {
        let described = self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &self.table))?;
        self.layout.check(&self.names)?;
        match described.table() {
            Some(table) => {
                self.check_key_schema(table)?;
                self.check_replication(table)
            }
            None => Ok(()),
        }
    }

    /// Checks only that the table exists and that its key schema is the
    /// [`KeyLayout`]'s ([`Error::KeySchemaMismatch`] otherwise): what an operator tool
    /// needs before it reads records (`idem` calls it), without
    /// [`check_table`](Self::check_table)'s replication rules.
    pub async fn check_key_layout(&self) -> Result<()> {
        self.layout.check(&self.names)?;
        let described = self
            .client
            .describe_table()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &self.table))?;
        match described.table() {
            Some(table) => self.check_key_schema(table),
            None => Ok(()),
        }
    }

    /// Reads a record as stored, expired or not: for operators (`idem inspect`).
    /// Requests use [`Store::get`], where an expired record reads as absent.
    pub async fn read_record(&self, partition_key: &str) -> Result<Option<Record>> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(self.key(partition_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &self.table))?;
        out.item()
            .map(|item| decode(&self.names, &self.layout, item))
            .transpose()
    }

    /// The update expression that stores a response (compressed, or omitted when too
    /// large; see `store::fit`), with the names and values it uses besides
    /// `#st`, `#upd`, `:status` and `:now_ms`.
    pub(super) fn response_parts(&self, bytes: &[u8]) -> ResponseParts {
        let n = &self.names;
        match crate::store::fit::fit(bytes) {
            crate::store::fit::Fitted::Plain => ResponseParts {
                expression: "SET #st = :status, #upd = :now_ms, #resp = :resp REMOVE #enc, #ifs",
                names: vec![
                    ("#resp", n.response.clone()),
                    ("#enc", n.response_encoding.clone()),
                ],
                values: vec![(":resp", AttributeValue::B(Blob::new(bytes)))],
                omitted: None,
                stored_len: bytes.len(),
            },
            crate::store::fit::Fitted::Zstd(compressed) => ResponseParts {
                stored_len: compressed.len(),
                expression: "SET #st = :status, #upd = :now_ms, #resp = :resp, #enc = :enc REMOVE #ifs",
                names: vec![
                    ("#resp", n.response.clone()),
                    ("#enc", n.response_encoding.clone()),
                ],
                values: vec![
                    (":resp", AttributeValue::B(Blob::new(compressed))),
                    (":enc", AttributeValue::S(codec::ZSTD.to_owned())),
                ],
                omitted: None,
            },
            crate::store::fit::Fitted::Omitted => ResponseParts {
                expression: "SET #st = :status, #upd = :now_ms, #omit = :size REMOVE #resp, #ifs",
                names: vec![
                    ("#omit", n.response_omitted.clone()),
                    ("#resp", n.response.clone()),
                ],
                values: vec![(":size", AttributeValue::N(bytes.len().to_string()))],
                omitted: Some(bytes.len()),
                stored_len: 0,
            },
        }
    }

    /// The table key of the item that holds the record (or stats item) `record_key`.
    pub(crate) fn key(&self, record_key: &str) -> HashMap<String, AttributeValue> {
        self.layout.key(&self.names, record_key)
    }

    /// The record key an item (or a key-only index item) holds.
    pub(crate) fn record_key_of(&self, item: &HashMap<String, AttributeValue>) -> Option<String> {
        self.layout.record_key_of(&self.names, item)
    }

    /// The table's key schema is the layout's.
    fn check_key_schema(&self, table: &aws_sdk_dynamodb::types::TableDescription) -> Result<()> {
        use aws_sdk_dynamodb::types::KeyType;
        let schema = table.key_schema();
        // A description without a key schema (never from DynamoDB) is not checked.
        if schema.is_empty() {
            return Ok(());
        }
        let of = |kind: KeyType| {
            schema
                .iter()
                .find(|k| k.key_type() == &kind)
                .map(|k| k.attribute_name().to_owned())
        };
        let (hash, range) = (of(KeyType::Hash), of(KeyType::Range));
        let expected_range = self.layout.sort_key().map(str::to_owned);
        if hash.as_deref() == Some(self.names.partition_key.as_str()) && range == expected_range {
            return Ok(());
        }
        let describe = |hash: Option<&str>, range: Option<&str>| match range {
            Some(range) => format!("({}, {range})", hash.unwrap_or("?")),
            None => format!("({})", hash.unwrap_or("?")),
        };
        Err(Error::KeySchemaMismatch {
            table: self.table.to_string(),
            expected: describe(Some(&self.names.partition_key), expected_range.as_deref()),
            actual: describe(hash.as_deref(), range.as_deref()),
        })
    }

    fn decode_optional(
        &self,
        item: Option<&HashMap<String, AttributeValue>>,
    ) -> Option<Box<Record>> {
        let item = item.filter(|i| !i.is_empty())?;
        match decode(&self.names, &self.layout, item) {
            Ok(record) => Some(Box::new(record)),
            Err(e) => {
                tracing::warn!(error = %e, "could not decode the previous idempotency record");
                None
            }
        }
    }

    async fn put_pending(&self, request: &BeginRequest) -> Result<Option<BeginOutcome>> {
        let now_ms = self.clock.now_millis();
        let now_secs = self.clock.now_secs();
        let record = request.pending_record(now_ms);
        let n = &self.names;
        let result = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(encode(n, &self.layout, &record)))
            // Record::may_begin_over, in DynamoDB's words.
            .condition_expression(
                "attribute_not_exists(#pk) OR #exp < :now_s \
                 OR (#st = :pending AND #lease < :now_ms AND #fp = :fp) \
                 OR (#st = :errored AND #fp = :fp)",
            )
            .expression_attribute_names("#pk", self.layout.key_attribute(n))
            .expression_attribute_names("#exp", &n.expires_at)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#lease", &n.lease_expires_at)
            .expression_attribute_names("#fp", &n.fingerprint)
            .expression_attribute_values(":now_s", AttributeValue::N(now_secs.to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(Status::Pending.as_str().into()),
            )
            .expression_attribute_values(
                ":errored",
                AttributeValue::S(Status::Errored.as_str().into()),
            )
            .expression_attribute_values(
                ":fp",
                AttributeValue::S(request.fingerprint.as_str().into()),
            )
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(BeginOutcome::Started {
                lease: record.lease(),
                replaced: self.decode_optional(out.attributes()),
            })),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    unreachable!("matched above")
                };
                let Some(item) = failed.item() else {
                    return Ok(None);
                };
                // The SDK retries a PutItem whose response was lost (timeout, 500): a
                // retry that meets its own record has begun (`blocked_by`).
                let existing = decode(n, &self.layout, item)?;
                Ok(BeginOutcome::blocked_by(
                    existing, &record, now_ms, now_secs,
                ))
            }
            Err(e) => Err(map_sdk_error(e, &self.table)),
        }
    }

    async fn fenced_update(
        &self,
        lease: &Lease,
        status: Status,
        response: Option<&[u8]>,
    ) -> Result<WriteOutcome> {
        let now_ms = self.clock.now_millis();
        let n = &self.names;
        let mut update = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(self.key(&lease.partition_key)))
            .condition_expression("#tok = :tok AND #st = :pending")
            .expression_attribute_names("#tok", &n.lease_token)
            .expression_attribute_names("#st", &n.status)
            .expression_attribute_names("#upd", &n.updated_at)
            // The record leaves the in-flight index as it stops being PENDING.
            .expression_attribute_names("#ifs", &n.inflight_shard)
            .expression_attribute_values(":tok", AttributeValue::S(lease.token.as_str().into()))
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(Status::Pending.as_str().into()),
            )
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut omitted = None;
        update = match response {
            Some(bytes) => {
                let parts = self.response_parts(bytes);
                omitted = parts.omitted;
                let mut update = update.update_expression(parts.expression);
                for (placeholder, name) in parts.names {
                    update = update.expression_attribute_names(placeholder, name);
                }
                for (placeholder, value) in parts.values {
                    update = update.expression_attribute_values(placeholder, value);
                }
                update
            }
            None => update.update_expression("SET #st = :status, #upd = :now_ms REMOVE #ifs"),
        };
        match update.send().await {
            Ok(_) => Ok(WriteOutcome::written(omitted)),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let current = match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => {
                        self.decode_optional(failed.item())
                    }
                    _ => None,
                };
                // A retried UpdateItem whose first attempt was applied meets the record
                // already in the state it wrote, under our token: that is success.
                Ok(WriteOutcome::after_failed_fence(
                    current, lease, status, response, omitted,
                ))
            }
            Err(e) => Err(map_sdk_error(e, &self.table)),
        }
    }
}

#[async_trait]
impl Store for DynamoDbStore {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        for _ in 0..BEGIN_ATTEMPTS {
            if let Some(outcome) = self.put_pending(request).await? {
                return Ok(outcome);
            }
        }
        Err(Error::StoreRejected {
            message: format!(
                "begin on {:?} kept failing its condition without a blocking record",
                request.scope.partition_key()
            ),
            source: None,
        })
    }

    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        self.fenced_update(lease, Status::Completed, Some(response))
            .await
    }

    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        self.transactions_enabled()
            .then_some(self as &dyn TransactionalStore)
    }

    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        self.fenced_update(lease, Status::Errored, None).await
    }

    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        let now_secs = self.clock.now_secs();
        Ok(self
            .read_record(partition_key)
            .await?
            .filter(|record| !record.is_expired(now_secs)))
    }

    async fn delete(&self, partition_key: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(self.key(partition_key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &self.table))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

#[async_trait]
impl TransactionalStore for DynamoDbStore {
    async fn complete_with_writes(
        &self,
        lease: &Lease,
        response: &[u8],
        writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<WriteOutcome> {
        if writes.is_empty() {
            return self.complete(lease, response).await;
        }
        self.complete_in_transaction(lease, response, writes).await
    }
}
