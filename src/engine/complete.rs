//! Storing a handler's response (with its writes, when atomic) or marking the record
//! `ERRORED`, under the request's lease, retrying while the store is unavailable.

use tracing::Instrument;

use crate::clock::Clock;
use crate::outcome::Outcome;

use super::HandlerWrites;
use crate::store::{Lease, Store, WriteOutcome};

/// How storing a handler's response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Stored (with the handler's writes, when atomic).
    Stored,
    /// The lease had been taken over; nothing was stored (or committed).
    LeaseLost,
    /// The store failed. Non-atomic: the record stays `PENDING` until its lease
    /// lapses. Atomic: nothing was committed and the record was marked `ERRORED`.
    StoreFailed,
    /// Atomic only: one of the handler's writes failed its condition; nothing was
    /// committed and the record was marked `ERRORED`.
    WritesRejected,
    /// Atomic only: the handler's writes cannot be committed in one transaction (too
    /// many or too large); nothing was committed and the record was marked `ERRORED`.
    WritesTooLarge,
}

impl Completion {
    /// The completion's name, for the `idempotency.complete` span.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::LeaseLost => "lease_lost",
            Self::StoreFailed => "store_failed",
            Self::WritesRejected => "writes_rejected",
            Self::WritesTooLarge => "writes_too_large",
        }
    }

    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Self::Stored => Outcome::Executed,
            Self::LeaseLost => Outcome::LeaseLost,
            Self::StoreFailed => Outcome::StoreError,
            Self::WritesRejected | Self::WritesTooLarge => Outcome::Errored,
        }
    }
}

/// First pause before storing a response again after the store failed.
const COMPLETE_FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest pause between two attempts to store a response.
const COMPLETE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest time spent retrying to store a response, whatever the lease.
const COMPLETE_RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);
/// Time kept back from the invocation's deadline (the lease's end when the deadline
/// is unknown) so the handler's response still goes out after the last attempt.
const COMPLETE_LEASE_MARGIN_MS: i64 = 1_000;

/// Stores the response under the lease; with `writes` (atomic completion), commits
/// them in the same transaction.
///
/// While the store is unavailable, storing is retried with backoff until it succeeds,
/// or [`COMPLETE_RETRY_BUDGET`] runs out, or the invocation's deadline (`deadline_ms`,
/// `0` when unknown: then the lease's end) is within [`COMPLETE_LEASE_MARGIN_MS`].
/// Without `writes` the handler's side
/// effects have already happened and only the stored response stops a retry from
/// repeating them; with `writes` it saves the client a 503 and a second run.
/// Retrying is safe: the write is fenced on the lease token, and one that landed
/// before its answer was lost is found `COMPLETED` under this very lease.
pub(crate) async fn complete(
    store: &dyn Store,
    lease: &Lease,
    response: &[u8],
    writes: Option<HandlerWrites>,
    clock: &dyn Clock,
    deadline_ms: i64,
) -> Completion {
    let atomic = writes.is_some();
    let result = store_retrying(store, lease, response, writes.as_ref(), clock, deadline_ms).await;
    match result {
        Ok(WriteOutcome::Written) => Completion::Stored,
        Ok(WriteOutcome::WrittenWithoutResponse { size }) => {
            tracing::warn!(
                size,
                "the response is too large to keep even compressed: the request is completed without it and cannot be replayed"
            );
            metrics::counter!(crate::metrics::RESPONSE_OMITTED).increment(1);
            Completion::Stored
        }
        // An earlier attempt (ours, or the SDK's) landed and only its answer was lost.
        Ok(WriteOutcome::LeaseLost {
            current: Some(current),
        }) if current.completed_under(lease) => Completion::Stored,
        Ok(WriteOutcome::LeaseLost { current }) => {
            tracing::warn!(
                current_status = ?current.as_ref().map(|r| r.status),
                atomic,
                "lease lost before completion: nothing was stored"
            );
            Completion::LeaseLost
        }
        Ok(WriteOutcome::WritesRejected { index }) => {
            tracing::warn!(
                index,
                "a handler write failed its condition: nothing was committed"
            );
            fail(store, lease).await;
            Completion::WritesRejected
        }
        Err(e @ crate::Error::TransactionTooLarge { .. }) => {
            tracing::error!(error = %e, "the handler's writes do not fit in one transaction: nothing was committed");
            fail(store, lease).await;
            Completion::WritesTooLarge
        }
        Err(e) if atomic => {
            // Nothing was committed, or the transaction did commit and only its answer
            // was lost. The fenced fail tells which: it finds the record COMPLETED
            // under this lease in the second case, and changes nothing.
            if fail(store, lease).await == Failed::AlreadyCompleted {
                tracing::warn!(error = %e, "the transaction's answer was lost, but it had committed");
                return Completion::Stored;
            }
            tracing::error!(error = %e, "could not commit the response and the handler's writes");
            Completion::StoreFailed
        }
        Err(e) => {
            // The record stays PENDING until its lease lapses; a retry before then is
            // answered "in flight", after it the request may run again.
            tracing::error!(error = %e, "could not store the response");
            Completion::StoreFailed
        }
    }
}

/// Completes with the handler's writes in one transaction.
#[cfg(feature = "dynamodb")]
async fn commit_with(
    store: &dyn Store,
    lease: &Lease,
    response: &[u8],
    writes: &HandlerWrites,
) -> crate::Result<WriteOutcome> {
    match store.transactional() {
        Some(transactional) => {
            transactional
                .complete_with_writes(lease, response, writes.clone())
                .await
        }
        None => Err(crate::Error::StoreRejected {
            message: "this store cannot commit a handler's writes atomically".to_owned(),
            source: None,
        }),
    }
}

/// Without DynamoDB there are no handler writes to commit.
#[cfg(not(feature = "dynamodb"))]
async fn commit_with(
    _store: &dyn Store,
    _lease: &Lease,
    _response: &[u8],
    writes: &HandlerWrites,
) -> crate::Result<WriteOutcome> {
    match *writes {}
}

/// Stores the response (and commits `writes`), again while the store is unavailable,
/// within the budget described on [`complete`].
async fn store_retrying(
    store: &dyn Store,
    lease: &Lease,
    response: &[u8],
    writes: Option<&HandlerWrites>,
    clock: &dyn Clock,
    deadline_ms: i64,
) -> crate::Result<WriteOutcome> {
    // The lease runs past the deadline by its margin, but Lambda stops the invocation
    // at the deadline: stop retrying before whichever comes first. Time is read on the
    // injected clock once; the retries then run on real time.
    let end_ms = if deadline_ms > 0 {
        deadline_ms.min(lease.expires_at_ms)
    } else {
        lease.expires_at_ms
    };
    let left_ms = end_ms - clock.now_millis() - COMPLETE_LEASE_MARGIN_MS;
    let budget = COMPLETE_RETRY_BUDGET.min(std::time::Duration::from_millis(
        u64::try_from(left_ms).unwrap_or(0),
    ));
    let started = std::time::Instant::now();
    let mut backoff = COMPLETE_FIRST_BACKOFF;
    let mut attempts = 1u32;
    loop {
        let result = match writes {
            Some(writes) => commit_with(store, lease, response, writes).await,
            None => store.complete(lease, response).await,
        };
        let Err(crate::Error::StoreUnavailable { .. }) = &result else {
            return result;
        };
        if started.elapsed() + backoff > budget {
            tracing::warn!(
                attempts,
                "the store stayed unavailable: giving up storing the response"
            );
            return result;
        }
        tracing::warn!(
            attempts,
            retry_in_ms = backoff.as_millis() as u64,
            "the store is unavailable: storing the response again"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(COMPLETE_MAX_BACKOFF);
        attempts += 1;
    }
}

/// What marking a record `ERRORED` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Marked `ERRORED` (or it already was, under this lease).
    Marked,
    /// The record is `COMPLETED` under this very lease: the completion had landed.
    AlreadyCompleted,
    /// The lease had been taken over, or the store failed; nothing was changed.
    NotMarked,
}

/// Marks the record `ERRORED` under the lease, so a retry may run again, in an
/// `idempotency.fail` span.
pub(crate) async fn fail(store: &dyn Store, lease: &Lease) -> Failed {
    let span = super::spans::fail();
    let timer = super::spans::Timer::start(&span);
    let failed = mark_errored(store, lease).instrument(span.clone()).await;
    span.record(
        "result",
        match failed {
            Failed::Marked => "marked",
            Failed::AlreadyCompleted => "already_completed",
            Failed::NotMarked => "not_marked",
        },
    );
    timer.record(&span);
    failed
}

async fn mark_errored(store: &dyn Store, lease: &Lease) -> Failed {
    match store.fail(lease).await {
        Ok(WriteOutcome::Written | WriteOutcome::WrittenWithoutResponse { .. }) => Failed::Marked,
        Ok(WriteOutcome::LeaseLost {
            current: Some(current),
        }) if current.completed_under(lease) => Failed::AlreadyCompleted,
        Ok(WriteOutcome::LeaseLost { .. } | WriteOutcome::WritesRejected { .. }) => {
            tracing::warn!("lease lost before marking the record errored");
            Failed::NotMarked
        }
        Err(e) => {
            tracing::error!(error = %e, "could not mark the record errored; it is retried once its lease lapses");
            Failed::NotMarked
        }
    }
}
