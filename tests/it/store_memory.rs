//! The behaviour suite on the in-memory store.

use std::sync::Arc;

use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::store::{MemoryStore, Store};

async fn make() -> (Arc<dyn Store>, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    (Arc::new(MemoryStore::with_clock(clock.clone())), clock)
}

lambda_idempotency::behaviour_suite!(make());
