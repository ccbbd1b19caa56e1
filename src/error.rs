//! The crate's one error type.
//!
//! Store backends keep their own errors private and map them here. A conditional
//! write that loses its condition is not an error: it is an outcome
//! ([`BeginOutcome`](crate::store::BeginOutcome), [`WriteOutcome`](crate::store::WriteOutcome)).

use crate::config::ConfigError;
use crate::key::KeyError;

/// A boxed error from a backend, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The idempotency key was refused.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),

    /// A setting was out of range or unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The store could not be reached or asked us to slow down; retrying later may work.
    #[error("idempotency store unavailable: {message}")]
    StoreUnavailable {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },

    /// The idempotency table does not exist.
    #[error("idempotency table {table:?} not found")]
    TableNotFound {
        /// The table name.
        table: String,
    },

    /// The store refused the request (permissions, validation); retrying will not help.
    #[error("idempotency store rejected the request: {message}")]
    StoreRejected {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A handler's writes do not fit in one DynamoDB transaction with the record.
    #[error(
        "the handler's writes do not fit in one DynamoDB transaction: {actions} actions (at most 100, one is the idempotency record) and about {bytes} bytes (at most 4 MB)"
    )]
    TransactionTooLarge {
        /// Actions, the record's completion included.
        actions: usize,
        /// Estimated size in bytes.
        bytes: usize,
    },

    /// The idempotency table is a global table in multi-Region eventual consistency:
    /// a conditional write sees only its own Region's copy, so two Regions could each
    /// begin the same key. See
    /// [`DynamoDbStore::check_table`](crate::store::dynamodb::DynamoDbStore::check_table).
    #[error(
        "idempotency table {table:?} is a global table with eventually consistent replicas in {regions:?}: a conditional write in one Region does not see a concurrent one in another, so two Regions could run the same request. Use a single-Region table, a multi-Region strongly consistent (MRSC) one, or, if every key is written from one Region only, DynamoDbStore::with_single_region_keys()"
    )]
    UnsafeGlobalTable {
        /// The table name.
        table: String,
        /// Its replicas' Regions.
        regions: Vec<String>,
    },

    /// The table's key schema is not the one the DynamoDB store's `KeyLayout` and
    /// attribute names need (see
    /// `DynamoDbStore::check_table`).
    #[error(
        "idempotency table {table:?} is keyed {actual}, but the store's key layout needs {expected}: create the table with that key, or configure the store's AttributeNames and KeyLayout to match the table"
    )]
    KeySchemaMismatch {
        /// The table name.
        table: String,
        /// The key the store needs, e.g. `(pk)` or `(pk, sk)`.
        expected: String,
        /// The table's key.
        actual: String,
    },
    /// A stored record could not be decoded. Its message leaves the partition key
    /// out: the key holds the raw actor, which logs must never show.
    #[error("an idempotency record is corrupt: {reason}")]
    CorruptRecord {
        /// The record's partition key (it holds the raw actor: do not log it).
        partition_key: String,
        /// What could not be decoded.
        reason: String,
    },
}

impl Error {
    /// Whether the same call may succeed if retried later (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::StoreUnavailable { .. })
    }

    /// A stable, machine-readable name for the error, for logs and Lambda diagnostics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidKey(_) => "Idempotency.InvalidKey",
            Self::Config(_) => "Idempotency.Config",
            Self::StoreUnavailable { .. } => "Idempotency.StoreUnavailable",
            Self::TableNotFound { .. } => "Idempotency.TableNotFound",
            Self::StoreRejected { .. } => "Idempotency.StoreRejected",
            Self::CorruptRecord { .. } => "Idempotency.CorruptRecord",
            Self::TransactionTooLarge { .. } => "Idempotency.TransactionTooLarge",
            Self::UnsafeGlobalTable { .. } => "Idempotency.UnsafeGlobalTable",
            Self::KeySchemaMismatch { .. } => "Idempotency.KeySchemaMismatch",
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailability_is_transient() {
        let unavailable = Error::StoreUnavailable {
            message: "timeout".into(),
            source: None,
        };
        assert!(unavailable.is_transient());
        assert_eq!(unavailable.error_type(), "Idempotency.StoreUnavailable");
        let missing = Error::TableNotFound { table: "t".into() };
        assert!(!missing.is_transient());
        assert_eq!(missing.to_string(), "idempotency table \"t\" not found");
        let key: Error = KeyError::Empty.into();
        assert_eq!(key.error_type(), "Idempotency.InvalidKey");
        assert_eq!(key.to_string(), "the idempotency key is empty");
    }
}
