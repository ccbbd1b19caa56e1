//! Capturing log lines in a test that shares its process with other tests.
//!
//! `tracing` caches, per call site and for the whole process, whether anyone wants
//! its events. While at most one dispatcher is registered, a call site reached for
//! the first time gets that answer from the subscriber of the thread reaching it; a
//! new dispatcher recomputes the call sites known so far, not the ones registered
//! after it. So while a test captures lines with a scoped subscriber (`with_default`),
//! a sibling test that runs the layer on a thread with no subscriber can mark a new
//! call site "never", and the capturing test misses that line
//! (`observability::an_in_flight_duplicate_sets_the_gauge` failed this way in a
//! clean-clone CI run; `tests/log_capture.rs` replays it deterministically).
//!
//! [`ensure_capturable`] installs, once, a global subscriber that records nothing but
//! answers "sometimes" for every call site: a thread with no scoped subscriber asks
//! it, and every event is then checked against the emitting thread's own subscriber.
//! It takes the process's global subscriber slot: a test binary that calls it must
//! not also install a global subscriber (`.init()`, `set_global_default`).

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
        // Registering it recomputes the call sites known so far.
        tracing::subscriber::set_global_default(Anchor)
            .expect("no other global subscriber in a test binary that captures logs");
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
