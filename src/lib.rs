//! Idempotent AWS Lambda handlers: a retried or duplicated request never repeats a
//! side effect (a double charge, a duplicate order, stock taken twice).
//!
//! Each request carries a key. The first request with a key runs the handler and
//! its response is stored; a retry of the same request gets the stored response
//! back; a different request that reuses the key, or a retry that arrives while the
//! first is still running, is refused. Records live in DynamoDB (one conditional
//! write to begin, one write fenced on a lease token to complete) and expire through
//! the table's TTL; the lease covers the whole invocation.
//!
//! # Quick start
//!
//! Wrap a `lambda_http` handler in [`http::IdempotencyLayer`]. In a function the
//! store is [`store::dynamodb::DynamoDbStore::from_env`]; here the in-memory store
//! shows what a client sees:
//!
//! ```
//! use lambda_http::{Body, Error, Request, Response, service_fn};
//! use lambda_idempotency::http::IdempotencyLayer;
//! use lambda_idempotency::store::MemoryStore;
//! use tower::{Layer, ServiceExt};
//!
//! async fn create_order(_req: Request) -> Result<Response<Body>, Error> {
//!     // Charge, write, ...: runs at most once per key.
//!     Ok(Response::builder().status(201).body(Body::from(r#"{"orderId":"o-1"}"#))?)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let layer = IdempotencyLayer::builder(MemoryStore::new()).build()?;
//! let service = layer.layer(service_fn(create_order));
//! // In main: lambda_http::run(service).await
//!
//! let order = |body: &str| {
//!     lambda_http::http::Request::builder()
//!         .method("POST")
//!         .uri("/orders")
//!         .header("idempotency-key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
//!         .body(Body::from(body.to_owned()))
//!         .unwrap()
//! };
//! let first = service.clone().oneshot(order(r#"{"sku":"A1"}"#)).await?;
//! let retry = service.clone().oneshot(order(r#"{ "sku": "A1" }"#)).await?;
//! let other = service.clone().oneshot(order(r#"{"sku":"B2"}"#)).await?;
//! assert_eq!(first.status(), 201);
//! assert_eq!(retry.headers()["idempotent-replayed"], "true"); // the stored 201
//! assert_eq!(other.status(), 409); // the key was used for another request
//! # Ok::<(), Error>(())
//! # })?;
//! # Ok::<(), Error>(())
//! ```
//!
//! # Where to go next
//!
//! - [`http`]: the layer for `lambda_http` handlers, its behaviour table, routes,
//!   actors (whose records a request may see) and problem+json answers.
//! - [`event`]: the layer for `lambda_runtime` handlers (SQS, EventBridge, direct
//!   invocations), keyed by JSON pointers into the payload.
//! - [`batch`]: SQS (standard and FIFO), Kinesis and DynamoDB Streams batches, each
//!   record idempotent, failures reported as a partial batch response.
//! - [`function`]: any async function (one step inside a handler) made idempotent on
//!   a key drawn from its input, its output stored and replayed.
//! - [`idempotent`]: the same as one attribute on the handler.
//! - [`atomic`]: commit a handler's own DynamoDB writes in one transaction with the
//!   record's completion, so "the effect happened but its result was not stored"
//!   cannot occur; [`CurrentRequest`]: keys for calls to other services.
//! - [`store`]: the [`Store`](store::Store) trait, [`MemoryStore`](store::MemoryStore),
//!   [`DynamoDbStore`](store::dynamodb::DynamoDbStore) and the warm
//!   [`CachedStore`](store::CachedStore).
//! - [`config`]: expiry and lease settings, from code or environment variables.
//! - [`metrics`]: what the layers measure, and a CloudWatch EMF exporter.
//! - [`record`] and [`fingerprint`]: the stored record, the rules every store applies
//!   to it, and what counts as "the same request".
//! - `testing` (feature `testing`, off by default): the behaviour suite every
//!   [`Store`](store::Store) must pass, for the tests of a store of your own.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// A build with some features left out compiles code that only the others use.
#![cfg_attr(
    not(all(feature = "http", feature = "event", feature = "dynamodb")),
    allow(dead_code, unused_imports, unused_macros)
)]

#[cfg(feature = "dynamodb")]
pub mod atomic;
#[cfg(feature = "batch")]
pub mod batch;
mod canonical_json;
pub mod clock;
pub mod config;
mod current;
#[cfg(any(feature = "http", feature = "ops"))]
pub(crate) mod day;
#[cfg(any(feature = "http", feature = "event"))]
mod engine;
mod error;
#[cfg(feature = "event")]
pub mod event;
pub mod fingerprint;
#[cfg(feature = "event")]
pub mod function;
#[cfg(feature = "http")]
pub mod http;
pub mod key;
pub mod metrics;
#[cfg(feature = "ops")]
pub mod ops;
#[cfg_attr(not(any(feature = "http", feature = "event")), allow(dead_code))]
mod outcome;
pub mod record;
pub mod scope;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use current::CurrentRequest;
pub use error::{BoxError, Error, Result};
pub use outcome::Outcome;

/// `#[idempotent(...)]`, the attribute form of `event::EventIdempotencyLayer` and
/// `http::IdempotencyLayer`; defined in the `lambda-idempotency-macros` crate, whose
/// documentation (arguments, examples, the expansion) follows.
#[cfg(feature = "macros")]
pub use lambda_idempotency_macros::idempotent;

/// Internals this repository's tests and benches reach (the stored-response format,
/// the canonicaliser, the response-size rule); public only with the `testing`
/// feature, and not a public API: no semver guarantee.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod __internals {
    pub use crate::canonical_json::canonicalize;
    #[cfg(feature = "http")]
    pub use crate::http::request::fingerprint_of;
    #[cfg(feature = "http")]
    pub use crate::http::stored::{DecodeError, StoredBody, StoredResponse};

    /// The first release's canonical form (numbers through doubles, as RFC 8785 and
    /// the tree-based oracle write them).
    pub use crate::canonical_json::canonicalize_v1;
    /// The tree-based canonicaliser the one-pass one is checked against (the
    /// differential tests and the fuzz target use it as the oracle).
    pub use crate::canonical_json::reference::canonicalize as canonicalize_reference;

    /// The DynamoDB item codec, for the fuzz target that decodes arbitrary items.
    #[cfg(feature = "dynamodb")]
    pub mod dynamodb_codec {
        pub use crate::store::dynamodb::codec::{decode, encode};
    }

    /// Fitting a response into a DynamoDB item.
    pub mod fit {
        pub use crate::store::fit::*;
    }

    /// The Redis store's own round trips, for the end-to-end bench's baseline.
    #[cfg(feature = "redis")]
    pub mod redis_raw {
        pub use crate::store::redis::raw::Raw;
    }
}

/// Support for `#[idempotent]`'s expansion; not a public API.
#[doc(hidden)]
#[cfg(feature = "macros")]
pub mod __private {
    #[cfg(feature = "http")]
    pub use lambda_http;
    #[cfg(any(feature = "http", feature = "event"))]
    pub use lambda_runtime;
    pub use serde_json;
    pub use tokio::sync::OnceCell;
    pub use tower::{Layer, ServiceExt};

    /// The store `store = "env"` builds: the DynamoDB store from the environment,
    /// checked once.
    #[cfg(feature = "dynamodb")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __idempotent_env_store {
        () => {{
            let store = ::lambda_idempotency::store::dynamodb::DynamoDbStore::from_env().await?;
            store.check_table().await?;
            store
        }};
    }

    /// Without the `dynamodb` feature there is no store in the environment.
    #[cfg(not(feature = "dynamodb"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __idempotent_env_store {
        () => {
            ::core::compile_error!(
                "#[idempotent] without `store = ...` uses the DynamoDB store from the environment: enable lambda-idempotency's `dynamodb` feature, or pass `store = \"memory\"` or `store = path::to::make_store`"
            )
        };
    }
}

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(all(
    doctest,
    feature = "http",
    feature = "event",
    feature = "batch",
    feature = "dynamodb",
    feature = "macros",
    feature = "testing"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
