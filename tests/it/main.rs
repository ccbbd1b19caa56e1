//! The library's integration tests, one module per behaviour family, in one test
//! binary: one link of the SDK instead of one per file. Tests that need DynamoDB run
//! against the DynamoDB Local that `scripts/with-dynamodb-local.sh` starts (`make
//! test`); run one family with `cargo test --test it store_dynamodb::`.

// What the workspace's tests share (test-support/), under the names the modules use.
use lambda_idempotency_test_support as support;
use support::{canned, faults, process};

mod atomic_dynamodb;
mod bad_input;
mod batch;
mod cache_dynamodb;
mod event_layer;
mod function;
mod http_dynamodb;
mod http_layer;
mod ietf_profile;
mod in_flight_wait;
mod isolation;
mod large_responses;
mod macro_behaviour;
mod model_rules;
mod model_traces;
mod observability;
mod properties;
mod reliability_concurrency;
mod reliability_faults;
mod reliability_outage;
mod reliability_outage_redis;
mod spans;
mod store_cached;
mod store_dynamodb;
mod store_memory;
mod store_redis;
mod template;
