//! The generic layer: built once, shared (`Arc`) by every service it makes.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::service::EventIdempotency;
use super::settings::{EventSettings, PayloadParts, payload_builder_methods};
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
            parts: PayloadParts::default(),
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
    parts: PayloadParts,
}

impl EventIdempotencyLayerBuilder {
    core_builder_methods!();
    payload_builder_methods!();

    /// Checks the selectors and builds the layer.
    pub fn build(self) -> Result<EventIdempotencyLayer, ConfigError> {
        Ok(EventIdempotencyLayer {
            settings: Arc::new(self.parts.build(self.core)?),
        })
    }
}
