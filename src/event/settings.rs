//! What the event layer, idempotent functions and batches share: how a payload is
//! keyed, compared and scoped, and the builder part that sets it.

use std::sync::Arc;

use serde_json::Value;

use super::key::{KeySource, PayloadFn};
use super::selector::Selector;
use crate::config::ConfigError;
use crate::engine::{Core, CoreBuilder};
use crate::record::Record;

/// Everything an [`EventIdempotencyLayer`](super::EventIdempotencyLayer) (or an
/// idempotent function, or a batch) was built with, shared (`Arc`).
pub(crate) struct EventSettings {
    pub(crate) core: Core,
    pub(crate) name: String,
    pub(crate) key: KeySource,
    pub(crate) payload: Option<Vec<Selector>>,
    pub(crate) actor: Option<PayloadFn>,
    pub(crate) on_replay: Option<ReplayHook>,
}

/// Called on every replay with the stored output (as JSON, changeable) and its
/// record.
pub(crate) type ReplayHook = Arc<dyn Fn(&mut Value, &Record) + Send + Sync>;

/// The key source as given to a builder, checked when it builds.
pub(crate) enum KeySpec {
    Selectors(Vec<String>),
    Custom(PayloadFn),
}

/// The builder part that sets how payloads are keyed, compared and scoped.
#[derive(Default)]
pub(crate) struct PayloadParts {
    pub(crate) name: Option<String>,
    pub(crate) key: Option<KeySpec>,
    pub(crate) payload: Option<Vec<String>>,
    pub(crate) actor: Option<PayloadFn>,
    pub(crate) on_replay: Option<ReplayHook>,
}

impl PayloadParts {
    /// Uses `key` and `payload` where none were set (a batch's per-source defaults).
    pub(crate) fn or_defaults(mut self, key: &[&str], payload: &[&str]) -> Self {
        if self.key.is_none() {
            self.key = Some(KeySpec::Selectors(
                key.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
        if self.payload.is_none() && !payload.is_empty() {
            self.payload = Some(payload.iter().map(|s| (*s).to_owned()).collect());
        }
        self
    }

    /// Parses the selectors and builds the settings.
    pub(crate) fn build(self, core: CoreBuilder) -> Result<EventSettings, ConfigError> {
        let key = match self.key.ok_or(ConfigError::MissingKeySource)? {
            KeySpec::Selectors(texts) if texts.is_empty() => {
                return Err(ConfigError::MissingKeySource);
            }
            KeySpec::Selectors(texts) => KeySource::Pointers(parse_all(&texts)?),
            KeySpec::Custom(f) => KeySource::Custom(f),
        };
        let payload = self.payload.as_deref().map(parse_all).transpose()?;
        let name = self.name.unwrap_or_else(|| {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "lambda".to_owned())
        });
        Ok(EventSettings {
            core: core.build()?,
            name,
            key,
            payload,
            actor: self.actor,
            on_replay: self.on_replay,
        })
    }
}

fn parse_all(texts: &[String]) -> Result<Vec<Selector>, ConfigError> {
    texts.iter().map(|t| Selector::parse(t)).collect()
}

/// A function of the payload, shared.
pub(crate) fn payload_fn(
    f: impl Fn(&Value) -> Option<String> + Send + Sync + 'static,
) -> PayloadFn {
    Arc::new(f)
}

/// The builder methods that set a [`PayloadParts`], defined once: each builder has a
/// `parts: PayloadParts` field.
macro_rules! payload_builder_methods {
    () => {
        /// The key is the value [selected](crate::event::Selector) by `selector`: a
        /// JSON pointer such as `/orderId`, or one that decodes a string on the way,
        /// such as `/body|json/orderId`.
        pub fn key_pointer(self, selector: impl Into<String>) -> Self {
            self.key_pointers([selector])
        }

        /// The key is made of the values [selected](crate::event::Selector) by these
        /// (all must be present).
        pub fn key_pointers<I, P>(mut self, selectors: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<String>,
        {
            self.parts.key = Some(crate::event::settings::KeySpec::Selectors(
                selectors.into_iter().map(Into::into).collect(),
            ));
            self
        }

        /// The key is what `f` finds in the payload (as JSON); `None` means no key.
        pub fn key_fn(
            mut self,
            f: impl Fn(&serde_json::Value) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            self.parts.key = Some(crate::event::settings::KeySpec::Custom(
                crate::event::settings::payload_fn(f),
            ));
            self
        }

        /// Compare only these [selected](crate::event::Selector) parts of the payload
        /// to tell a retry from a different event (default: the whole payload).
        pub fn payload_pointers<I, P>(mut self, selectors: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<String>,
        {
            self.parts.payload = Some(selectors.into_iter().map(Into::into).collect());
            self
        }

        /// The scope name records are kept under (default: `AWS_LAMBDA_FUNCTION_NAME`,
        /// else `lambda`). Two handlers sharing a table and a key space need different
        /// names.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.parts.name = Some(name.into());
            self
        }

        /// Scope keys per actor (e.g. a tenant id in the payload; default: none).
        pub fn actor_fn(
            mut self,
            f: impl Fn(&serde_json::Value) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            self.parts.actor = Some(crate::event::settings::payload_fn(f));
            self
        }

        /// Called on every replay, before the stored output is returned: with the
        /// output (as JSON; what `f` leaves in it is what the caller gets) and its
        /// [`Record`](crate::record::Record) (when it was created, its key and
        /// scope). For example to mark the output as replayed, or to log. The
        /// handler does not run on a replay; neither does `f` on any other answer.
        /// In a batch, which returns no outputs, `f` only observes (when the stored
        /// output reads as JSON).
        pub fn on_replay(
            mut self,
            f: impl Fn(&mut serde_json::Value, &crate::record::Record) + Send + Sync + 'static,
        ) -> Self {
            self.parts.on_replay = Some(std::sync::Arc::new(f));
            self
        }
    };
}
pub(crate) use payload_builder_methods;
