//! The generic layer: built once, shared (`Arc`) by every service it makes.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tower::Layer;

use super::key::{KeySource, PayloadFn};
use super::service::EventIdempotency;
use super::settings::EventSettings;
use crate::config::ConfigError;
use crate::engine::{CoreBuilder, core_builder_methods};
use crate::store::Store;

/// Makes a `Service<LambdaEvent<T>>` idempotent. See the [module docs](super).
#[derive(Clone)]
pub struct EventIdempotencyLayer {
    pub(crate) settings: Arc<EventSettings>,
}

impl fmt::Debug for EventIdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("EventIdempotencyLayer")
            .field("store", &s.core.store)
            .field("config", &s.core.config)
            .field("name", &s.name)
            .field("key", &s.key)
            .field("payload", &s.payload)
            .field("missing_key", &s.core.missing_key)
            .finish_non_exhaustive()
    }
}

impl EventIdempotencyLayer {
    /// A builder over `store`. A key source is required: [`key_pointer`],
    /// [`key_pointers`] or [`key_fn`].
    ///
    /// [`key_pointer`]: EventIdempotencyLayerBuilder::key_pointer
    /// [`key_pointers`]: EventIdempotencyLayerBuilder::key_pointers
    /// [`key_fn`]: EventIdempotencyLayerBuilder::key_fn
    pub fn builder(store: impl Store) -> EventIdempotencyLayerBuilder {
        EventIdempotencyLayerBuilder {
            core: CoreBuilder::new(store),
            name: None,
            key: None,
            payload: None,
            actor: None,
        }
    }

    /// The store records are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.settings.core.store
    }
}

impl<S> Layer<S> for EventIdempotencyLayer {
    type Service = EventIdempotency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventIdempotency::new(inner, self.clone())
    }
}

impl<S> EventIdempotency<S> {
    /// Wraps `inner` with `layer`'s settings (what [`Layer::layer`] does).
    pub fn new(inner: S, layer: EventIdempotencyLayer) -> Self {
        Self::with_settings(inner, layer.settings)
    }
}

/// Builds an [`EventIdempotencyLayer`].
#[must_use]
pub struct EventIdempotencyLayerBuilder {
    core: CoreBuilder,
    name: Option<String>,
    key: Option<KeySource>,
    payload: Option<Vec<String>>,
    actor: Option<PayloadFn>,
}

impl EventIdempotencyLayerBuilder {
    core_builder_methods!();

    /// The key is the value at this JSON pointer, e.g. `/orderId`.
    pub fn key_pointer(self, pointer: impl Into<String>) -> Self {
        self.key_pointers([pointer])
    }

    /// The key is made of the values at these JSON pointers (all must be present).
    pub fn key_pointers<I, P>(mut self, pointers: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.key = Some(KeySource::Pointers(
            pointers.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The key is what `f` finds in the payload (as JSON); `None` means no key.
    pub fn key_fn(mut self, f: impl Fn(&Value) -> Option<String> + Send + Sync + 'static) -> Self {
        self.key = Some(KeySource::Custom(Arc::new(f)));
        self
    }

    /// Compare only these parts of the payload to tell a retry from a different
    /// event (default: the whole payload).
    pub fn payload_pointers<I, P>(mut self, pointers: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.payload = Some(pointers.into_iter().map(Into::into).collect());
        self
    }

    /// The scope name records are kept under (default: `AWS_LAMBDA_FUNCTION_NAME`,
    /// else `lambda`). Two handlers sharing a table and a key space need different names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Scope keys per actor (e.g. a tenant id in the payload; default: none).
    pub fn actor_fn(
        mut self,
        f: impl Fn(&Value) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.actor = Some(Arc::new(f));
        self
    }

    /// Checks the pointers and builds the layer.
    pub fn build(self) -> Result<EventIdempotencyLayer, ConfigError> {
        let key = self.key.ok_or(ConfigError::MissingKeySource)?;
        let mut pointers: Vec<&String> = self.payload.iter().flatten().collect();
        if let KeySource::Pointers(p) = &key {
            if p.is_empty() {
                return Err(ConfigError::MissingKeySource);
            }
            pointers.extend(p);
        }
        if let Some(bad) = pointers
            .iter()
            .find(|p| !p.is_empty() && !p.starts_with('/'))
        {
            return Err(ConfigError::InvalidJsonPointer {
                pointer: (*bad).clone(),
            });
        }
        let name = self.name.unwrap_or_else(|| {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "lambda".to_owned())
        });
        Ok(EventIdempotencyLayer {
            settings: Arc::new(EventSettings {
                core: self.core.build(),
                name,
                key,
                payload: self.payload,
                actor: self.actor,
            }),
        })
    }
}
