//! What the event layer's services share.

use super::key::{KeySource, PayloadFn};
use crate::engine::Core;

/// Everything an [`EventIdempotencyLayer`](super::EventIdempotencyLayer) was built with, shared (`Arc`) by the
/// services it makes.
pub(crate) struct EventSettings {
    pub(crate) core: Core,
    pub(crate) name: String,
    pub(crate) key: KeySource,
    pub(crate) payload: Option<Vec<String>>,
    pub(crate) actor: Option<PayloadFn>,
}
