//! Beginning a request: the conditional write that decides run, replay, mismatch or
//! in flight, waiting for an in-flight original when asked to, and recognising
//! records written by an earlier release.

use crate::record::Record;

/// Whole seconds until an in-flight record's lease lapses, at least 1.
pub(crate) fn retry_after_secs(record: &Record, now_ms: i64) -> u64 {
    let remaining_ms = record.lease_expires_at_ms.saturating_sub(now_ms);
    u64::try_from(remaining_ms.saturating_add(999) / 1000)
        .unwrap_or(1)
        .max(1)
}

/// First pause before asking the store again about an in-flight key.
const WAIT_FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(25);
/// Longest pause between two asks.
const WAIT_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);
/// Time kept back from the Lambda deadline to answer after waiting.
const WAIT_DEADLINE_MARGIN_MS: i64 = 1_000;

/// Begins, and if the key is in flight and `wait` is set, asks again with backoff
/// until the original completes (replay), fails or lapses (begin), or the wait runs
/// out: at most `wait`, and never past the invocation's deadline less a margin.
/// Each ask recomputes the lease with `lease_for(now)`; `lookup_ms` adds up the time
/// spent in the store calls only, not in the pauses.
///
/// A record whose fingerprint has an older version than the request's (written by
/// an earlier release) is compared with the request's fingerprint in that version,
/// `legacy`: when they match, the request is the same and begins again under the
/// old fingerprint, so an upgrade never turns a retry into a conflict.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn begin_waiting(
    store: &dyn crate::store::Store,
    begin: &mut crate::store::BeginRequest,
    wait: Option<std::time::Duration>,
    deadline_ms: i64,
    clock: &dyn crate::clock::Clock,
    lease_for: &(dyn Fn(i64) -> std::time::Duration + Sync),
    legacy: Option<&(dyn Fn() -> crate::fingerprint::Fingerprint + Sync)>,
    lookup_ms: &mut f64,
) -> crate::Result<crate::store::BeginOutcome> {
    use crate::store::BeginOutcome;
    let timed = std::time::Instant::now();
    let mut outcome = store.begin(begin).await;
    if let (Ok(BeginOutcome::Mismatch(record)), Some(legacy)) = (&outcome, legacy)
        && record.fingerprint.version() != begin.fingerprint.version()
    {
        let old = legacy();
        if old == record.fingerprint {
            begin.fingerprint = old;
            outcome = store.begin(begin).await;
        }
    }
    *lookup_ms = timed.elapsed().as_secs_f64() * 1000.0;
    let Some(wait) = wait else {
        return outcome;
    };
    let started = std::time::Instant::now();
    let mut backoff = WAIT_FIRST_BACKOFF;
    while let Ok(BeginOutcome::InFlight(_)) = outcome {
        let mut budget = wait.saturating_sub(started.elapsed());
        if deadline_ms > 0 {
            let left = deadline_ms - clock.now_millis() - WAIT_DEADLINE_MARGIN_MS;
            budget = budget.min(std::time::Duration::from_millis(
                u64::try_from(left).unwrap_or(0),
            ));
        }
        if budget.is_zero() {
            break;
        }
        tokio::time::sleep(backoff.min(budget)).await;
        backoff = (backoff * 2).min(WAIT_MAX_BACKOFF);
        // The lease is measured from now, so it must still end by the deadline.
        begin.lease = lease_for(clock.now_millis());
        let timed = std::time::Instant::now();
        outcome = store.begin(begin).await;
        *lookup_ms += timed.elapsed().as_secs_f64() * 1000.0;
    }
    outcome
}
