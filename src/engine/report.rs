//! What one request reports when it ends: one structured log line and its metrics.

use crate::outcome::Outcome;

/// What one request reports when it ends: one structured log line and its metrics.
pub(crate) struct Report<'a> {
    pub(crate) service: &'a str,
    /// The route the record is scoped to (logged).
    pub(crate) route: &'a str,
    /// The metric `route` label: bounded (a template, or one fixed label).
    pub(crate) metric_route: &'a str,
    pub(crate) key: &'a str,
    pub(crate) actor: &'a str,
    pub(crate) started: std::time::Instant,
    pub(crate) lookup_ms: Option<f64>,
    pub(crate) record_size: Option<usize>,
    pub(crate) http_status: Option<u16>,
}

impl<'a> Report<'a> {
    /// A report for a request that started at `started`, with nothing measured yet.
    pub(crate) fn new(
        service: &'a str,
        route: &'a str,
        metric_route: &'a str,
        key: &'a str,
        actor: &'a str,
        started: std::time::Instant,
    ) -> Self {
        Self {
            service,
            route,
            metric_route,
            key,
            actor,
            started,
            lookup_ms: None,
            record_size: None,
            http_status: None,
        }
    }

    /// Logs the request (conflicts, lease losses and store errors at WARN; never the
    /// body, and the actor only as a hash) and records its metrics.
    pub(crate) fn finish(&self, outcome: Outcome, record_status: Option<crate::record::Status>) {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let actor_hash = ActorHash(self.actor);
        let record_status = record_status.map_or("NONE", crate::record::Status::as_str);
        let lookup_ms = self.lookup_ms.unwrap_or(0.0);
        let http_status = self.http_status.unwrap_or(0);
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    idempotency_key = %self.key,
                    route = %self.route,
                    service = %self.service,
                    actor_hash = %actor_hash,
                    outcome = outcome.as_str(),
                    record_status,
                    http_status,
                    duration_ms,
                    lookup_ms,
                    "idempotent request"
                )
            };
        }
        match outcome {
            Outcome::Conflict | Outcome::LeaseLost | Outcome::StoreError => line!(warn),
            _ => line!(info),
        }
        // The adapter's `idempotency` span (see `spans::request`) is the current one.
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        span.record("record_status", record_status);
        if let Some(status) = self.http_status {
            span.record("http_status", status);
        }
        span.record("duration_ms", duration_ms);
        crate::metrics::record(
            self.service,
            self.metric_route,
            outcome,
            self.lookup_ms,
            self.record_size,
        );
    }
}

/// The first 16 hex digits of the actor's SHA-256: enough to correlate one caller's
/// requests in logs without writing the principal itself. Hashed only when a log line
/// is actually written.
pub(crate) struct ActorHash<'a>(pub(crate) &'a str);

impl std::fmt::Display for ActorHash<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.0.as_bytes())
            .iter()
            .take(8)
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}
