//! The attribute names of an idempotency item: what the codec writes, the key layout
//! keys by, and the sweeper and table creation name.

/// The attribute names of an idempotency item. Change them to fit an existing table.
///
/// ```
/// use lambda_idempotency::store::dynamodb::AttributeNames;
///
/// let names = AttributeNames { partition_key: "id".into(), ..AttributeNames::default() };
/// assert_eq!(names.expires_at, "expires_at");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeNames {
    /// Partition key (S).
    pub partition_key: String,
    /// `PENDING` / `COMPLETED` / `ERRORED` (S).
    pub status: String,
    /// Request fingerprint (S).
    pub fingerprint: String,
    /// Lease token (S).
    pub lease_token: String,
    /// Lease expiry, epoch ms (N).
    pub lease_expires_at: String,
    /// Record expiry, epoch seconds (N): the table's TTL attribute.
    pub expires_at: String,
    /// Stored response (B).
    pub response: String,
    /// `zstd` when the stored response is compressed (S).
    pub response_encoding: String,
    /// The size of a response too large to keep (N).
    pub response_omitted: String,
    /// Created, epoch ms (N).
    pub created_at: String,
    /// Last updated, epoch ms (N).
    pub updated_at: String,
    /// Raw route (S).
    pub route: String,
    /// Raw actor (S).
    pub actor: String,
    /// Raw idempotency key (S).
    pub key: String,
    /// Item format version (N).
    pub format: String,
    /// The expiry index's partition key (S): `"{expires_at / 3600}#{shard}"`, see
    /// [`expiry_bucket`]. Written with every record, never read back.
    pub expiry_bucket: String,
    /// The in-flight index's partition key (S): the record's shard (`"0"` to `"7"`,
    /// see [`expiry_shard`]), present only while the record is `PENDING`, so the index
    /// holds exactly the records in flight. Written by begin, removed by complete and
    /// fail, never read back.
    ///
    /// [`expiry_shard`]: crate::ops::expiry_shard
    pub inflight_shard: String,
}

impl AttributeNames {
    /// Every attribute name, the partition key first.
    pub(crate) fn all(&self) -> [&str; 17] {
        [
            &self.partition_key,
            &self.status,
            &self.fingerprint,
            &self.lease_token,
            &self.lease_expires_at,
            &self.expires_at,
            &self.response,
            &self.response_encoding,
            &self.response_omitted,
            &self.created_at,
            &self.updated_at,
            &self.route,
            &self.actor,
            &self.key,
            &self.format,
            &self.expiry_bucket,
            &self.inflight_shard,
        ]
    }
}

impl Default for AttributeNames {
    fn default() -> Self {
        Self {
            partition_key: "pk".into(),
            status: "status".into(),
            fingerprint: "fingerprint".into(),
            lease_token: "lease_token".into(),
            lease_expires_at: "lease_expires_at_ms".into(),
            expires_at: "expires_at".into(),
            response: "response".into(),
            response_encoding: "response_encoding".into(),
            response_omitted: "response_omitted_bytes".into(),
            created_at: "created_at_ms".into(),
            updated_at: "updated_at_ms".into(),
            route: "route".into(),
            actor: "actor".into(),
            key: "idempotency_key".into(),
            format: "format".into(),
            expiry_bucket: "expiry_bucket".into(),
            inflight_shard: "inflight_shard".into(),
        }
    }
}
