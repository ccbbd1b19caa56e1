//! Where records live: a small trait and its backends.
//!
//! A [`Store`] has five operations. The two that matter for correctness are
//! conditional writes, expressed as data:
//!
//! - [`Store::begin`] creates a `PENDING` record with a fresh lease token, only if no
//!   live record blocks it (see [`Record::may_begin_over`]); otherwise it returns the
//!   blocking record so the caller can replay, report a conflict or wait, without a
//!   second read.
//! - [`Store::complete`] and [`Store::fail`] change the record only while the lease
//!   token is still the caller's (fencing). A holder whose lease was taken over gets
//!   [`WriteOutcome::LeaseLost`] and writes nothing.
//!
//! Backends: [`MemoryStore`] (tests, the embedded demo),
//! [`DynamoDbStore`](dynamodb::DynamoDbStore) and (feature `redis`)
//! `redis::RedisStore`. All run the same behaviour suite.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::fingerprint::Fingerprint;
pub use crate::record::Lease;
use crate::record::Record;
use crate::scope::Scope;

mod cache;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub(crate) mod fit;
mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

pub use cache::{CachedStore, DEFAULT_CAPACITY, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES};
pub use memory::MemoryStore;

/// What a request asks for when it begins.
#[derive(Debug, Clone)]
pub struct BeginRequest {
    /// The record's scope.
    pub scope: Scope,
    /// The request's fingerprint.
    pub fingerprint: Fingerprint,
    /// How long the lease lasts from now (see
    /// [`IdempotencyConfig::lease_for`](crate::config::IdempotencyConfig::lease_for)).
    pub lease: Duration,
    /// How long the record lives from now.
    pub expiry: Duration,
}

impl BeginRequest {
    /// The `PENDING` record this request writes when it begins at `now_ms`
    /// ([`Record::pending`]).
    pub fn pending_record(&self, now_ms: i64) -> Record {
        Record::pending(
            &self.scope,
            &self.fingerprint,
            self.lease,
            self.expiry,
            now_ms,
        )
    }
}

/// The result of [`Store::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginOutcome {
    /// The caller holds the key and should run the handler.
    Started {
        /// The caller's lease.
        lease: Lease,
        /// The record this one replaced (expired, lapsed or errored), if any.
        replaced: Option<Box<Record>>,
    },
    /// The same request completed earlier: replay this record's response.
    Replay(Box<Record>),
    /// The same request is running under a live lease.
    InFlight(Box<Record>),
    /// A different request used this key.
    Mismatch(Box<Record>),
}

impl BeginOutcome {
    /// How a begin that `existing` blocks is answered: replay it, report it in flight,
    /// or refuse a different request (the rules of [`Record::conflict_with`]); `None`
    /// when the rules let the request begin over it after all.
    pub(crate) fn blocked_by(
        existing: Record,
        fingerprint: &Fingerprint,
        now_ms: i64,
        now_secs: i64,
    ) -> Option<Self> {
        let conflict = existing.conflict_with(fingerprint, now_ms, now_secs)?;
        let existing = Box::new(existing);
        Some(match conflict {
            crate::record::Conflict::Replay => Self::Replay(existing),
            crate::record::Conflict::InFlight => Self::InFlight(existing),
            crate::record::Conflict::Mismatch => Self::Mismatch(existing),
        })
    }
}

/// The result of [`Store::complete`], [`TransactionalStore::complete_with_writes`] and
/// [`Store::fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The record was updated (and the handler's writes committed with it).
    Written,
    /// The record was completed, but its response was too large to keep even
    /// compressed (about 384 KB in DynamoDB); a replay answers that it cannot be
    /// replayed.
    WrittenWithoutResponse {
        /// The response's size in bytes.
        size: usize,
    },
    /// The lease was no longer the caller's; nothing was written.
    LeaseLost {
        /// The record as it is now, if it still exists.
        current: Option<Box<Record>>,
    },
    /// One of the handler's own writes failed its condition; nothing was written.
    WritesRejected {
        /// Position of the refused write among the handler's writes.
        index: usize,
    },
}

/// A place to keep idempotency records.
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// Creates a `PENDING` record unless a live record blocks it; one write.
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome>;

    /// Marks the record `COMPLETED` with `response`, fenced on the lease token.
    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome>;

    /// The store's atomic completion, when it can commit a handler's DynamoDB writes
    /// with the record ([`TransactionalStore`]); `None` (the default) otherwise, and
    /// the layers then offer handlers no [`AtomicWrites`](crate::atomic::AtomicWrites).
    #[cfg(feature = "dynamodb")]
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        None
    }

    /// Marks the record `ERRORED` so the same request may run again, fenced on the
    /// lease token.
    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome>;

    /// Reads a record; an expired record reads as absent.
    async fn get(&self, partition_key: &str) -> Result<Option<Record>>;

    /// Deletes a record, live or not; returns whether one existed.
    async fn delete(&self, partition_key: &str) -> Result<bool>;
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        (**self).begin(request).await
    }
    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        (**self).complete(lease, response).await
    }
    #[cfg(feature = "dynamodb")]
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        (**self).transactional()
    }
    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        (**self).fail(lease).await
    }
    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        (**self).get(partition_key).await
    }
    async fn delete(&self, partition_key: &str) -> Result<bool> {
        (**self).delete(partition_key).await
    }
}

/// A store that commits a handler's own DynamoDB writes in one transaction with the
/// record's completion ([atomic completion](crate::atomic)). An extension of [`Store`],
/// so the core trait names no SDK type; a store offers it through
/// [`Store::transactional`].
#[cfg(feature = "dynamodb")]
#[async_trait]
pub trait TransactionalStore: Store {
    /// Marks the record `COMPLETED` with `response` and commits the handler's
    /// `writes` in the same transaction, fenced on the lease token: all or nothing.
    async fn complete_with_writes(
        &self,
        lease: &Lease,
        response: &[u8],
        writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<WriteOutcome>;
}
