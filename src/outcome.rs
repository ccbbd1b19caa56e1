//! What happened to one idempotent request: the name logs and metrics use.

/// What happened to one idempotent request, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler ran and its response was stored.
    Executed,
    /// A stored response was returned; the handler did not run.
    Replayed,
    /// The key was used for a different request.
    Conflict,
    /// The same request is still running elsewhere.
    InFlight,
    /// The handler failed (error, panic or retryable status); the record is `ERRORED`.
    Errored,
    /// The store failed.
    StoreError,
    /// The handler ran but its lease had been taken over; nothing was stored.
    LeaseLost,
    /// The key was missing or malformed.
    Rejected,
}

impl Outcome {
    /// The outcome's name in logs: `executed`, `replayed`, `conflict`, `in_flight`,
    /// `errored`, `store_error`, `lease_lost`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Replayed => "replayed",
            Self::Conflict => "conflict",
            Self::InFlight => "in_flight",
            Self::Errored => "errored",
            Self::StoreError => "store_error",
            Self::LeaseLost => "lease_lost",
            Self::Rejected => "rejected",
        }
    }
}
