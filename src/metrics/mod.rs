//! What the layers measure, through the `metrics` facade, and an EMF exporter.
//!
//! Every idempotent request records, with the labels `service` (the function name,
//! or what [`service_name`] says) and `route`:
//!
//! | metric | unit | meaning |
//! |---|---|---|
//! | `idempotency.execution.count` | Count | the handler ran and its response was stored |
//! | `idempotency.replay.count` | Count | a stored response was returned; the handler did not run |
//! | `idempotency.conflict.count` | Count | the key was reused with a different request (409/422, `KeyMismatch`) |
//! | `idempotency.duplicate_in_flight.count` | Count | a duplicate met its original still running (409 + `Retry-After`, `InFlight`); nothing ran |
//! | `idempotency.errored.count` | Count | the handler failed (error, panic, retryable status); the record is `ERRORED` so a retry runs again |
//! | `idempotency.lease_lost.count` | Count | the handler finished after its lease was taken over; nothing was stored |
//! | `idempotency.store_error.count` | Count | the store failed (before the handler: 503 / `StoreUnavailable`; after it: the response was not stored) |
//! | `idempotency.lookup.latency` | Milliseconds | the begin call (the conditional write that decides execute / replay / conflict) |
//! | `idempotency.record.size` | Bytes | the stored response's size, on completion |
//! | `idempotency.response_omitted.count` | Count | a response too large to keep even compressed: the request completed without it (no labels) |
//!
//! Requests refused before any lookup (missing or malformed key) record nothing here;
//! they are logged.
//!
//! How many requests are in flight is not a per-request figure: it is the number of
//! records `PENDING` with a live lease, which the sweeper measures through the table
//! ([`ops::in_flight`](crate::ops::in_flight())) and reports, with the label `table`,
//! as [`INFLIGHT`] and [`INFLIGHT_LAPSED`].
//!
//! Install [`EmfRecorder`] with [`install`] to get CloudWatch EMF lines on standard
//! output, or any other `metrics` recorder.

use metrics::Unit;

#[cfg(feature = "emf")]
mod emf;

#[cfg(feature = "emf")]
pub use emf::{
    DEFAULT_NAMESPACE, ENV_NAMESPACE, EmfRecorder, EmfRecorderBuilder, flush_installed, install,
};

use crate::outcome::Outcome;

/// Executions.
pub const EXECUTION: &str = "idempotency.execution.count";
/// Replays.
pub const REPLAY: &str = "idempotency.replay.count";
/// Conflicts.
pub const CONFLICT: &str = "idempotency.conflict.count";
/// Duplicates that met their original still running.
pub const DUPLICATE_IN_FLIGHT: &str = "idempotency.duplicate_in_flight.count";
/// Gauge: records `PENDING` with a live lease (requests in flight), label `table`;
/// measured by the sweeper, never per request.
pub const INFLIGHT: &str = "idempotency.inflight.gauge";
/// Gauge: records `PENDING` whose lease has lapsed (abandoned requests), label
/// `table`; measured by the sweeper.
pub const INFLIGHT_LAPSED: &str = "idempotency.inflight_lapsed.gauge";
/// Handler failures.
pub const ERRORED: &str = "idempotency.errored.count";
/// Lease losses.
pub const LEASE_LOST: &str = "idempotency.lease_lost.count";
/// Store errors.
pub const STORE_ERROR: &str = "idempotency.store_error.count";
/// Lookup latency.
pub const LOOKUP_LATENCY: &str = "idempotency.lookup.latency";
/// Stored record size.
pub const RECORD_SIZE: &str = "idempotency.record.size";
/// Responses too large to keep, even compressed.
pub const RESPONSE_OMITTED: &str = "idempotency.response_omitted.count";

pub(crate) const UNITS: &[(&str, Unit)] = &[
    (EXECUTION, Unit::Count),
    (REPLAY, Unit::Count),
    (CONFLICT, Unit::Count),
    (DUPLICATE_IN_FLIGHT, Unit::Count),
    (INFLIGHT, Unit::Count),
    (INFLIGHT_LAPSED, Unit::Count),
    (ERRORED, Unit::Count),
    (LEASE_LOST, Unit::Count),
    (STORE_ERROR, Unit::Count),
    (LOOKUP_LATENCY, Unit::Milliseconds),
    (RECORD_SIZE, Unit::Bytes),
    (RESPONSE_OMITTED, Unit::Count),
];

/// The `service` label: `AWS_LAMBDA_FUNCTION_NAME`, else `lambda`.
pub fn service_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "lambda".to_owned())
}

/// Records one request's metrics.
#[cfg_attr(not(any(feature = "http", feature = "event")), allow(dead_code))]
pub(crate) fn record(
    service: &str,
    route: &str,
    outcome: Outcome,
    lookup_ms: Option<f64>,
    record_size: Option<usize>,
) {
    let labels = [("service", service.to_owned()), ("route", route.to_owned())];
    let count = |name: &'static str| metrics::counter!(name, &labels).increment(1);
    match outcome {
        Outcome::Executed => count(EXECUTION),
        Outcome::Replayed => count(REPLAY),
        Outcome::Conflict => count(CONFLICT),
        Outcome::Errored => count(ERRORED),
        Outcome::LeaseLost => count(LEASE_LOST),
        Outcome::StoreError => count(STORE_ERROR),
        Outcome::InFlight => count(DUPLICATE_IN_FLIGHT),
        Outcome::Rejected => {}
    }
    if let Some(ms) = lookup_ms {
        metrics::histogram!(LOOKUP_LATENCY, &labels).record(ms);
    }
    if let Some(size) = record_size {
        metrics::histogram!(RECORD_SIZE, &labels).record(size as f64);
    }
    #[cfg(feature = "emf")]
    flush_installed();
}
