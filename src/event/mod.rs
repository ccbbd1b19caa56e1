//! Idempotency for generic `lambda_runtime` handlers: SQS, EventBridge, Step
//! Functions, direct invocations.
//!
//! [`EventIdempotencyLayer`] wraps the typed handler service (a
//! `Service<LambdaEvent<T>>`; `lambda_runtime::Runtime::layer` sees the raw invocation
//! only after the response is sent, so it cannot be used for this). The key comes from
//! the payload, by JSON pointer or a function; the whole payload, or the parts named
//! by [`payload_pointers`](EventIdempotencyLayerBuilder::payload_pointers), tells a
//! retry from a different event. The handler's output is stored as JSON and replayed,
//! including "falsy" outputs (`0`, `false`, `{}`, `null`, `()`).
//!
//! | situation | result |
//! |---|---|
//! | new key | the handler's output, stored |
//! | same key, same payload, completed | the stored output; the handler does not run |
//! | same key, different payload | `Err(KeyMismatch)`, `Idempotency.KeyMismatch` |
//! | same key, in flight | `Err(AlreadyInProgress)`, `Idempotency.AlreadyInProgress` |
//! | no key in the payload | `Err(MissingKey)` (or pass through, [`MissingKey::PassThrough`](crate::http::MissingKey)) |
//! | store unreachable before the handler | `Err(StoreUnavailable)`; the handler does not run |
//! | handler error or panic | passed through; record `ERRORED`, so a retry runs again |
//!
//! ```
//! use lambda_idempotency::event::EventIdempotencyLayer;
//! use lambda_idempotency::store::MemoryStore;
//! use lambda_runtime::{Context, Error, LambdaEvent, service_fn};
//! use serde_json::{Value, json};
//! use tower::{Layer, ServiceExt};
//!
//! async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     Ok(json!({"charged": event.payload["amount"]}))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let layer = EventIdempotencyLayer::builder(MemoryStore::new())
//!     .key_pointer("/paymentId")
//!     .build()?;
//! let service = layer.layer(service_fn(charge));
//! // In a function: lambda_runtime::run(service).await
//!
//! let event = || LambdaEvent::new(json!({"paymentId": "p-1", "amount": 100}), Context::default());
//! let first = service.clone().oneshot(event()).await?;
//! let again = service.oneshot(event()).await?; // replayed, charge() did not run
//! assert_eq!(first, again);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod key;
mod layer;
mod selector;
pub(crate) mod service;
pub(crate) mod settings;

pub use crate::engine::MissingKey;
pub use error::IdempotencyError;
pub use key::{KeySource, PayloadFn};
pub use layer::{EventIdempotencyLayer, EventIdempotencyLayerBuilder};
pub use selector::{SelectError, Selector};
pub use service::EventIdempotency;
