//! The tracing spans of one idempotent request's steps, for X-Ray and OpenTelemetry.
//!
//! Each adapter runs a request inside its `idempotency` span (key, route, actor
//! hash: never the raw actor or body); the engine opens one child span per step:
//!
//! | span | attributes |
//! |---|---|
//! | `idempotency.begin` | `decision` (run, replay, mismatch, in_flight, unavailable, corrupt), `record_status`, `duration_ms` |
//! | `idempotency.handler` | `result` (ok, retryable, error, panic), `duration_ms`; the handler's own spans nest in it |
//! | `idempotency.complete` | `completion` (stored, lease_lost, store_failed, writes_rejected, writes_too_large), `atomic`, `response_bytes`, `duration_ms` |
//! | `idempotency.fail` | `result` (marked, already_completed, not_marked), `duration_ms` |
//! | `idempotency.replay` | `record_status`, `response_bytes`, `stored_age_ms`, `http_status` (HTTP only), `duration_ms` |
//!
//! and when the request ends, its `idempotency` span gets `outcome`, `record_status`,
//! `http_status` (HTTP only) and `duration_ms`. Spans are plain `tracing` spans at
//! INFO: `lambda_runtime` runs each invocation in a span carrying the X-Ray trace id,
//! so these nest under it, and a `tracing-opentelemetry` subscriber exports them as
//! OpenTelemetry spans (to X-Ray through the ADOT collector, or anywhere else).
//! Durations are also attributes, so a log-only subscriber shows them too.

use std::time::Instant;

use tracing::Span;
use tracing::field::Empty;

use crate::record::Record;

/// Times a span for its `duration_ms` attribute, reading the clock only when the span
/// is recorded by a subscriber: without one, a request reads no clock for its spans.
pub(crate) struct Timer(Option<Instant>);

impl Timer {
    /// Starts timing `span` (if it is enabled).
    pub(crate) fn start(span: &Span) -> Self {
        Self((!span.is_disabled()).then(Instant::now))
    }

    /// Records the time since the start as `duration_ms` on `span`.
    pub(crate) fn record(&self, span: &Span) {
        if let Some(started) = self.0 {
            span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

/// `idempotency`: one request, from its key to its answer. The adapters run the
/// request in it; [`Report::finish`](super::Report::finish) records how it ended.
pub(crate) fn request(key: &str, route: &str, actor_hash: &super::ActorHash<'_>) -> Span {
    tracing::info_span!(
        "idempotency",
        idempotency_key = key,
        route,
        actor_hash = %actor_hash,
        outcome = Empty,
        record_status = Empty,
        http_status = Empty,
        duration_ms = Empty
    )
}

/// `idempotency.begin`.
pub(crate) fn begin() -> Span {
    tracing::info_span!(
        "idempotency.begin",
        decision = Empty,
        record_status = Empty,
        duration_ms = Empty
    )
}

/// `idempotency.handler`.
pub(crate) fn handler() -> Span {
    tracing::info_span!("idempotency.handler", result = Empty, duration_ms = Empty)
}

/// `idempotency.complete`.
pub(crate) fn complete(atomic: bool, response_bytes: usize) -> Span {
    tracing::info_span!(
        "idempotency.complete",
        completion = Empty,
        atomic,
        response_bytes,
        duration_ms = Empty
    )
}

/// `idempotency.fail`.
pub(crate) fn fail() -> Span {
    tracing::info_span!("idempotency.fail", result = Empty, duration_ms = Empty)
}

/// `idempotency.replay` for a record about to be replayed (the clock is read only
/// when the span is enabled).
pub(crate) fn replay(record: &Record, clock: &dyn crate::clock::Clock) -> Span {
    tracing::info_span!(
        "idempotency.replay",
        record_status = record.status.as_str(),
        response_bytes = record.response.as_ref().map_or(0, Vec::len),
        stored_age_ms = clock.now_millis().saturating_sub(record.updated_at_ms),
        http_status = Empty,
        duration_ms = Empty
    )
}
