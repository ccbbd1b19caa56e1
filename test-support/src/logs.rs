//! Capturing log lines in a test that shares its process with other tests.
//!
//! `tracing` caches, per call site and for the whole process, whether anyone wants
//! its events, and computes that once, with the subscriber of the thread that reaches
//! the call site first. A sibling test that runs the layer with no subscriber can so
//! mark a call site "never", and a test capturing logs on its own thread then misses
//! the line (`observability::an_in_flight_duplicate_sets_the_gauge` failed that way
//! in a clean-clone CI run). [`ensure_capturable`] installs, once, a global subscriber
//! that records nothing but answers "sometimes" for every call site, and rebuilds the
//! cache: every event is then checked against the emitting thread's own subscriber.

use std::sync::Once;

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Makes every call site ask the current thread's subscriber, for the rest of the
/// process. Call it before a scoped subscriber (`with_default`) captures lines.
pub fn ensure_capturable() {
    static ANCHOR: Once = Once::new();
    ANCHOR.call_once(|| {
        // Fails only if a global subscriber exists already; it then decides.
        let _ = tracing::subscriber::set_global_default(Anchor);
        tracing::callsite::rebuild_interest_cache();
    });
}

/// Records nothing; never lets a call site be cached as unwanted.
struct Anchor;

impl Subscriber for Anchor {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
