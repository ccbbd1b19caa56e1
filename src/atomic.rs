//! Atomic completion: the handler's own DynamoDB writes, committed in one
//! transaction with the record's completion.
//!
//! Without it there is always a gap: the handler writes its side effect, then the
//! layer stores the response; a crash or a store outage between the two leaves a side
//! effect whose record is still `PENDING`, and a retry after the lease lapses runs it
//! again. With it, the handler hands its writes to the layer instead of sending them,
//! and the layer commits them together with `COMPLETED` in one `TransactWriteItems`,
//! conditional on the lease token: either both happen or neither, and a holder whose
//! lease was taken over commits nothing.
//!
//! Inside a handler run by either layer over a store that supports it (the DynamoDB
//! store, also behind [`CachedStore`](crate::store::CachedStore)):
//!
//! ```no_run
//! use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
//! use lambda_idempotency::atomic::AtomicWrites;
//!
//! # fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let put = Put::builder()
//!     .table_name("orders")
//!     .item("pk", AttributeValue::S("ORDER#o-1".into()))
//!     .condition_expression("attribute_not_exists(pk)")
//!     .build()?;
//! match AtomicWrites::current() {
//!     // Committed with the response, or not at all.
//!     Some(writes) => writes.push(TransactWriteItem::builder().put(put).build())?,
//!     // Not under an idempotency layer (or the store cannot): write directly.
//!     None => { /* client.put_item()... */ }
//! }
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::TransactWriteItem;

/// DynamoDB's limit on actions in one transaction; one is the record's completion.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// DynamoDB's limit on a transaction's total size.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// Why writes could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtomicWritesError {
    /// More writes than one transaction can hold with the record's completion.
    #[error(
        "too many writes for one transaction: {actions} queued, at most {max} fit beside the idempotency record"
    )]
    TooManyActions {
        /// Writes queued, including the refused one.
        actions: usize,
        /// The most that fit: [`MAX_TRANSACTION_ACTIONS`] - 1.
        max: usize,
    },
}

/// The writes a handler hands to the layer, for the current request.
#[derive(Debug, Clone, Default)]
pub struct AtomicWrites {
    writes: Arc<Mutex<Vec<TransactWriteItem>>>,
}

tokio::task_local! {
    /// `None` inside a request whose store does not commit atomically, so an inner
    /// request (an idempotent function on another store) never sees the writes of the
    /// request around it.
    static CURRENT: Option<AtomicWrites>;
}

impl AtomicWrites {
    /// The current request's writes, when its layer and store commit atomically.
    pub fn current() -> Option<AtomicWrites> {
        CURRENT.try_with(Clone::clone).ok().flatten()
    }

    /// Queues a write (Put, Update, Delete or ConditionCheck on the handler's tables).
    pub fn push(&self, write: TransactWriteItem) -> Result<(), AtomicWritesError> {
        let mut writes = self.lock();
        if writes.len() + 1 >= MAX_TRANSACTION_ACTIONS {
            return Err(AtomicWritesError::TooManyActions {
                actions: writes.len() + 1,
                max: MAX_TRANSACTION_ACTIONS - 1,
            });
        }
        writes.push(write);
        Ok(())
    }

    /// Number of queued writes.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the queued writes (the layer does this when it completes).
    pub(crate) fn take(&self) -> Vec<TransactWriteItem> {
        std::mem::take(&mut *self.lock())
    }

    /// Runs `f` with these writes as the current ones.
    pub(crate) async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CURRENT.scope(Some(self), f).await
    }

    /// Runs `f` with no current writes: its store does not commit atomically, and
    /// the writes of a request around it must not be queued by it (they would commit
    /// with the outer request, or never, while `f`'s own record says done).
    pub(crate) async fn without<F: std::future::Future>(f: F) -> F::Output {
        CURRENT.scope(None, f).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TransactWriteItem>> {
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }
}
