//! Idempotent functions: any async function, not only a handler, runs at most once
//! per key, and a repeated call gets the stored output.
//!
//! Inside a handler some work needs its own idempotency: one record of a batch, one
//! step of a saga, one call to a payment provider whose own retries must not charge
//! twice. [`IdempotentFunction`] is the event layer's engine without the Lambda
//! event: the key and the fingerprint come from an input (anything `Serialize`, seen
//! as JSON, with the same [selectors](crate::event::Selector) as the event layer),
//! the output (anything `Serialize + DeserializeOwned`) is stored and replayed.
//!
//! Each function has a name, and its records are scoped by it: the same key given to
//! two functions (or to a function and the handler around it) is two records. A
//! function called from a handler under either layer inherits the invocation's
//! deadline, so its lease lasts exactly as long as the invocation can; elsewhere the
//! deadline is unknown (the [maximum lease](crate::config::IdempotencyConfig::max_lease)
//! applies) unless given with [`call_before`](IdempotentFunction::call_before).
//! The answers are the event layer's ([`IdempotencyError`]): a repeat while the first
//! call runs is `AlreadyInProgress`, the key reused with another input is
//! `KeyMismatch`, and an `Err` from the function is passed through and leaves the key
//! free for a retry.
//!
//! ```
//! use lambda_idempotency::event::IdempotencyError;
//! use lambda_idempotency::function::IdempotentFunction;
//! use lambda_idempotency::store::MemoryStore;
//! use serde::{Deserialize, Serialize};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! #[derive(Serialize)]
//! struct Charge { payment_id: String, amount_cents: u64 }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Receipt { charge_id: String }
//!
//! static CHARGES: AtomicUsize = AtomicUsize::new(0);
//!
//! async fn charge_card(charge: &Charge) -> Result<Receipt, std::io::Error> {
//!     let n = CHARGES.fetch_add(1, Ordering::SeqCst);
//!     Ok(Receipt { charge_id: format!("ch-{n}-{}", charge.amount_cents) })
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let charge = IdempotentFunction::builder("charge-card", MemoryStore::new())
//!     .key_pointer("/payment_id")
//!     .build()?;
//!
//! let request = Charge { payment_id: "p-1".into(), amount_cents: 500 };
//! let first = charge.call(&request, || charge_card(&request)).await?;
//! let again = charge.call(&request, || charge_card(&request)).await?; // replayed
//! assert_eq!(first, again);
//! assert_eq!(CHARGES.load(Ordering::SeqCst), 1);
//!
//! let other = Charge { payment_id: "p-1".into(), amount_cents: 900 };
//! let reused = charge.call(&other, || charge_card(&other)).await;
//! assert!(matches!(reused, Err(IdempotencyError::KeyMismatch { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ConfigError;
use crate::engine::{CoreBuilder, core_builder_methods};
use crate::event::IdempotencyError;
use crate::event::service::run_idempotent;
use crate::event::settings::{EventSettings, PayloadParts, payload_builder_methods};
use crate::store::Store;

/// An async function made idempotent on a key drawn from its input; see the [module
/// docs](self). Cheap to clone; build it once (at start-up) and share it.
#[derive(Clone)]
pub struct IdempotentFunction {
    settings: Arc<EventSettings>,
}

impl fmt::Debug for IdempotentFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("IdempotentFunction")
            .field("name", &s.name)
            .field("store", &s.core.store)
            .field("config", &s.core.config)
            .field("key", &s.key)
            .field("payload", &s.payload)
            .finish_non_exhaustive()
    }
}

impl IdempotentFunction {
    /// A builder for the function `name` (the scope of its records: unique among
    /// the functions and handlers sharing a table) over `store`. A key source is
    /// required: [`key_pointer`](IdempotentFunctionBuilder::key_pointer),
    /// [`key_pointers`](IdempotentFunctionBuilder::key_pointers) or
    /// [`key_fn`](IdempotentFunctionBuilder::key_fn).
    pub fn builder(name: impl Into<String>, store: impl Store) -> IdempotentFunctionBuilder {
        IdempotentFunctionBuilder {
            core: CoreBuilder::new(store),
            parts: PayloadParts {
                name: Some(name.into()),
                ..PayloadParts::default()
            },
        }
    }

    /// The function's name: the scope its records are kept under.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Runs `f` once for `input`'s key and returns its output; a later call with the
    /// same key and input returns the stored output without running `f`. The
    /// deadline is the enclosing invocation's, when called under a layer.
    pub async fn call<I, O, E, F, Fut>(&self, input: &I, f: F) -> Result<O, IdempotencyError<E>>
    where
        I: Serialize + ?Sized,
        O: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        let deadline = crate::CurrentRequest::get().map_or(0, |c| c.deadline_ms());
        self.run(deadline, input, f).await
    }

    /// [`call`](Self::call), with the invocation's deadline given (epoch ms, as
    /// `lambda_runtime::Context::deadline` has it), so the key's lease ends with the
    /// invocation and not after the maximum lease.
    pub async fn call_before<I, O, E, F, Fut>(
        &self,
        deadline_ms: u64,
        input: &I,
        f: F,
    ) -> Result<O, IdempotencyError<E>>
    where
        I: Serialize + ?Sized,
        O: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        self.run(i64::try_from(deadline_ms).unwrap_or(i64::MAX), input, f)
            .await
    }

    async fn run<I, O, E, F, Fut>(
        &self,
        deadline_ms: i64,
        input: &I,
        f: F,
    ) -> Result<O, IdempotencyError<E>>
    where
        I: Serialize + ?Sized,
        O: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        let started = Instant::now();
        if self.settings.core.disabled {
            return f().await.map_err(IdempotencyError::Handler);
        }
        let payload = serde_json::to_value(input)
            .map_err(|e| IdempotencyError::InvalidPayload(e.to_string()))?;
        run_idempotent(&self.settings, payload, deadline_ms, started, f, None).await
    }
}

/// Builds an [`IdempotentFunction`].
#[must_use]
pub struct IdempotentFunctionBuilder {
    core: CoreBuilder,
    parts: PayloadParts,
}

impl IdempotentFunctionBuilder {
    core_builder_methods!();
    payload_builder_methods!();

    /// Checks the selectors and builds the function.
    pub fn build(self) -> Result<IdempotentFunction, ConfigError> {
        Ok(IdempotentFunction {
            settings: Arc::new(self.parts.build(self.core)?),
        })
    }
}
