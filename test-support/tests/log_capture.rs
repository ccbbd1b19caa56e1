//! A line is captured even when another thread, with no subscriber, reaches its call
//! site first while the capture is running: the race that
//! `observability::an_in_flight_duplicate_sets_the_gauge` lost once in CI, replayed
//! deterministically. Its own test binary, so no other test has registered a
//! dispatcher or the call site before.

use std::sync::{Arc, Mutex};

use lambda_idempotency_test_support::logs::ensure_capturable;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Counts the events it sees.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<usize>>);

impl Subscriber for Counter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        *self.0.lock().unwrap() += 1;
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The call site both threads reach.
fn the_line() {
    tracing::info!("the line under test");
}

#[test]
fn a_line_first_reached_by_a_thread_without_a_subscriber_is_still_captured() {
    ensure_capturable();
    let counter = Counter::default();
    tracing::subscriber::with_default(counter.clone(), || {
        // A sibling test's thread, with no subscriber of its own, reaches the call
        // site first while this capture is running.
        std::thread::spawn(the_line).join().unwrap();
        the_line();
    });
    assert_eq!(*counter.0.lock().unwrap(), 1, "the capturing thread's line");
}
