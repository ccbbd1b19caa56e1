//! What a generic handler's caller sees when idempotency answers instead of the
//! handler.

use std::fmt;

use lambda_runtime::Diagnostic;

/// The error of an idempotent event handler: either the handler's own error or one
/// of the layer's answers. Each has a stable `error_type` for Lambda diagnostics.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdempotencyError<E> {
    /// The same event is still being processed (`Idempotency.AlreadyInProgress`).
    AlreadyInProgress {
        /// The key.
        key: String,
        /// Seconds until the holder's lease lapses.
        retry_after_secs: u64,
    },
    /// The key was used with a different payload (`Idempotency.KeyMismatch`).
    KeyMismatch {
        /// The key.
        key: String,
    },
    /// No key could be derived from the payload (`Idempotency.MissingKey`).
    MissingKey {
        /// Which part was missing.
        detail: String,
    },
    /// The store could not be reached before the handler ran; it did not run
    /// (`Idempotency.StoreUnavailable`).
    StoreUnavailable(crate::Error),
    /// The stored output could not be read back; the handler did not run again
    /// (`Idempotency.StoredResponseUnreadable`).
    StoredResponseUnreadable {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The handler ran with atomic completion, but nothing it wrote was committed
    /// (a concurrent change refused its writes, or the commit failed); the record is
    /// `ERRORED`, so a retry runs again (`Idempotency.NotCommitted`).
    NotCommitted {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The layer could not be set up (configuration or store), e.g. by
    /// `#[idempotent]` on first use (`Idempotency.Setup`); the handler did not run.
    Setup(crate::Error),
    /// The payload could not be turned into JSON (`Idempotency.InvalidPayload`).
    InvalidPayload(String),
    /// The handler's own error, unchanged.
    Handler(E),
}

impl<E> IdempotencyError<E> {
    /// The stable `error_type` reported to Lambda (the handler's own for `Handler`).
    pub fn error_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::AlreadyInProgress { .. } => "Idempotency.AlreadyInProgress",
            Self::KeyMismatch { .. } => "Idempotency.KeyMismatch",
            Self::MissingKey { .. } => "Idempotency.MissingKey",
            Self::StoreUnavailable(_) => "Idempotency.StoreUnavailable",
            Self::StoredResponseUnreadable { .. } => "Idempotency.StoredResponseUnreadable",
            Self::NotCommitted { .. } => "Idempotency.NotCommitted",
            Self::Setup(_) => "Idempotency.Setup",
            Self::InvalidPayload(_) => "Idempotency.InvalidPayload",
            Self::Handler(_) => return None,
        })
    }

    /// The handler's error, if this is one.
    pub fn into_handler_error(self) -> Option<E> {
        match self {
            Self::Handler(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for IdempotencyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyInProgress {
                key,
                retry_after_secs,
            } => write!(
                f,
                "an event with idempotency key {key:?} is already being processed; retry in {retry_after_secs} s"
            ),
            Self::KeyMismatch { key } => write!(
                f,
                "idempotency key {key:?} was already used with a different payload"
            ),
            Self::MissingKey { detail } => write!(f, "the event has no idempotency key: {detail}"),
            Self::StoreUnavailable(e) => write!(f, "{e}; the handler did not run"),
            Self::StoredResponseUnreadable { key, reason } => write!(
                f,
                "the stored output for idempotency key {key:?} cannot be read ({reason}); the handler did not run again"
            ),
            Self::NotCommitted { key, reason } => write!(
                f,
                "nothing was committed for idempotency key {key:?}: {reason}; retry"
            ),
            Self::Setup(e) => write!(f, "idempotency setup failed: {e}; the handler did not run"),
            Self::InvalidPayload(reason) => write!(f, "the event payload is not JSON: {reason}"),
            Self::Handler(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for IdempotencyError<E> {}

impl<E: Into<Diagnostic> + fmt::Display> From<IdempotencyError<E>> for Diagnostic {
    fn from(error: IdempotencyError<E>) -> Diagnostic {
        match error.error_type() {
            Some(error_type) => Diagnostic {
                error_type: error_type.to_owned(),
                error_message: error.to_string(),
            },
            None => match error {
                IdempotencyError::Handler(e) => e.into(),
                // error_type() is None only for Handler.
                other => Diagnostic {
                    error_type: "Idempotency.Error".to_owned(),
                    error_message: other.to_string(),
                },
            },
        }
    }
}
