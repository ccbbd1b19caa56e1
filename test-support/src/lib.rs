//! What the workspace's tests and benches share, in one crate rather than files
//! included with `#[path]`: clients for DynamoDB Local and tables of a test's own
//! ([`client`], [`fresh_table`]), a call-counting interceptor ([`CallCounter`]), a
//! store that fails on cue ([`faults`]), canned SDK answers DynamoDB Local cannot
//! give ([`canned`]), a DynamoDB Local a test can kill ([`process`]), the sample
//! events ([`events`]), log capture that other tests cannot blind ([`logs`]), and
//! stores over the test redis-server ([`redis_store`]).
//!
//! The store behaviour suite is not here: it is the library's `testing` feature, so
//! a store written outside this repository runs it too.

mod calls;
pub mod canned;
mod dynamodb_local;
pub mod events;
pub mod faults;
pub mod logs;
pub mod process;
mod redis;
pub mod redis_process;

pub use calls::CallCounter;
pub use dynamodb_local::{
    client, client_for, counting_client, endpoint, fresh_pk_table, fresh_sweeper_table,
    fresh_table, fresh_table_with_indexes, fresh_table_with_layout, sdk_config,
};
pub use redis::{redis_store, redis_url};
