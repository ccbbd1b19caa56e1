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
    /// How a begin of `pending` that `existing` blocked is answered: a begin sent
    /// again after its answer was lost meets its own record (the same lease token)
    /// and has started; otherwise replay it, report it in flight, or refuse a
    /// different request (the rules of [`Record::conflict_with`]). `None` when the
    /// rules let the request begin over it after all.
    pub(crate) fn blocked_by(
        existing: Record,
        pending: &Record,
        now_ms: i64,
        now_secs: i64,
    ) -> Option<Self> {
        if existing.lease_token == pending.lease_token {
            return Some(Self::Started {
                lease: pending.lease(),
                replaced: None,
            });
        }
        let conflict = existing.conflict_with(&pending.fingerprint, now_ms, now_secs)?;
        let existing = Box::new(existing);
        Some(match conflict {
            crate::record::Conflict::Replay => Self::Replay(existing),
            crate::record::Conflict::InFlight => Self::InFlight(existing),
            crate::record::Conflict::Mismatch => Self::Mismatch(existing),
        })
    }
}

impl WriteOutcome {
    /// A fenced write that was applied; `omitted` is the size of a response too large
    /// to keep.
    pub(crate) fn written(omitted: Option<usize>) -> Self {
        match omitted {
            Some(size) => Self::WrittenWithoutResponse { size },
            None => Self::Written,
        }
    }

    /// How a fenced write under `lease` (to `status`, with `response`) that failed its
    /// condition is answered: a write sent again after its answer was lost meets the
    /// record as it wrote it ([`Record::already_written`]) and was written; otherwise
    /// the lease was lost to `current`.
    pub(crate) fn after_failed_fence(
        current: Option<Box<Record>>,
        lease: &Lease,
        status: crate::record::Status,
        response: Option<&[u8]>,
        omitted: Option<usize>,
    ) -> Self {
        match current {
            Some(current) if current.already_written(lease, status, response) => {
                Self::written(omitted)
            }
            current => Self::LeaseLost { current },
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::IdempotencyKey;
    use crate::record::Status;

    const NOW: i64 = 1_700_000_000_000;

    fn pending(body: &str) -> Record {
        Record::pending(
            &Scope::new(
                "POST /orders",
                "alice",
                IdempotencyKey::parse("k-1").unwrap(),
            ),
            &Fingerprint::from_stored(format!("v2:{body}")),
            Duration::from_secs(30),
            Duration::from_secs(3600),
            NOW,
        )
    }

    #[test]
    fn a_begin_that_meets_its_own_record_has_started() {
        let mine = pending("a");
        // The same request, its first send applied but unanswered.
        let outcome = BeginOutcome::blocked_by(mine.clone(), &mine, NOW + 5, NOW / 1000);
        assert_eq!(
            outcome,
            Some(BeginOutcome::Started {
                lease: mine.lease(),
                replaced: None
            })
        );
        // Another request's live record, same body: in flight; another body: mismatch.
        let other = pending("a");
        assert!(matches!(
            BeginOutcome::blocked_by(other.clone(), &mine, NOW + 5, NOW / 1000),
            Some(BeginOutcome::InFlight(_))
        ));
        assert!(matches!(
            BeginOutcome::blocked_by(other, &pending("b"), NOW + 5, NOW / 1000),
            Some(BeginOutcome::Mismatch(_))
        ));
    }

    #[test]
    fn a_fenced_write_that_meets_what_it_wrote_was_written() {
        let mut record = pending("a");
        let lease = record.lease();
        record.status = Status::Completed;
        record.response = Some(b"done".to_vec());
        let current = Some(Box::new(record.clone()));
        assert_eq!(
            WriteOutcome::after_failed_fence(
                current.clone(),
                &lease,
                Status::Completed,
                Some(b"done"),
                None
            ),
            WriteOutcome::Written
        );
        // Another response, another status, or no record: the lease was lost.
        for (status, response) in [
            (Status::Completed, Some(&b"other"[..])),
            (Status::Errored, None),
        ] {
            assert!(matches!(
                WriteOutcome::after_failed_fence(current.clone(), &lease, status, response, None),
                WriteOutcome::LeaseLost { .. }
            ));
        }
        assert_eq!(
            WriteOutcome::after_failed_fence(None, &lease, Status::Errored, None, None),
            WriteOutcome::LeaseLost { current: None }
        );
        assert_eq!(
            WriteOutcome::written(Some(7)),
            WriteOutcome::WrittenWithoutResponse { size: 7 }
        );
    }
}
