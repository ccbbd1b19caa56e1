//! Idempotent AWS Lambda handlers: a retried or duplicated request never repeats a
//! side effect.
//!
//! Each request carries a key. The first request with a key runs the handler and
//! its response is stored; a retry of the same request gets the stored response
//! back; a different request that reuses the key, or a retry that arrives while the
//! first is still running, is refused. Records live in DynamoDB (one conditional
//! write to begin, one fenced write to complete) and expire through the table's TTL.
//!
//! The building blocks, one module each:
//!
//! - [`key`]: which `Idempotency-Key` values are accepted.
//! - [`scope`]: (route, actor, key) to a bounded, collision-free partition key.
//! - [`fingerprint`] and [`canonical_json`]: what counts as "the same request".
//! - [`record`]: the stored record and the rules that decide begin / replay /
//!   conflict.
//! - [`store`]: the [`Store`](store::Store) trait, [`MemoryStore`](store::MemoryStore)
//!   and [`DynamoDbStore`](store::dynamodb::DynamoDbStore).
//! - [`config`]: expiry and lease bounds, from code or environment variables.
//! - [`clock`]: injected time.

#![warn(missing_docs)]

pub mod atomic;
pub mod canonical_json;
pub mod clock;
pub mod config;
mod current;
pub mod engine;
mod error;
pub mod event;
pub mod fingerprint;
pub mod http;
pub mod key;
pub mod metrics;
pub mod record;
pub mod scope;
pub mod store;

pub use current::CurrentRequest;
pub use error::{BoxError, Error, Result};

/// `#[idempotent(...)]`, the attribute form of [`event::EventIdempotencyLayer`] and
/// [`http::IdempotencyLayer`]; defined in the `lambda-idempotency-macros` crate, whose
/// documentation (arguments, examples, the expansion) follows.
pub use lambda_idempotency_macros::idempotent;

/// Support for `#[idempotent]`'s expansion; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use lambda_http;
    pub use lambda_runtime;
    pub use tokio::sync::OnceCell;
    pub use tower::{Layer, ServiceExt};
}

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
