//! How many requests are in flight: the records `PENDING` with a live lease, counted
//! through the sparse in-flight index.
//!
//! A per-request figure cannot say this: each invocation only knows about itself, and
//! samples from concurrent invocations overwrite each other. The table knows: a
//! request is in flight exactly while its record is `PENDING` and its lease has not
//! lapsed. Every `PENDING` record carries `inflight_shard` (its shard, `"0"` to `"7"`)
//! and completing or failing it removes the attribute, so the keys-only index
//! [`INFLIGHT_INDEX`] on (`inflight_shard`, `lease_expires_at_ms`) holds exactly the
//! `PENDING` records. [`in_flight`] sends one `Query` per shard (eight in parallel,
//! more only past 1 MB of keys) and splits the keys it reads by the lease's end:
//! live (in flight) or lapsed (abandoned by an invocation that crashed or timed out,
//! until a retry takes the key over or the record expires).
//!
//! # What it costs
//!
//! - **Reads.** Eight queries that read only the keys of `PENDING` records (about
//!   150 bytes each): half a read unit per query up to 4 KB, so 4 read units a
//!   measurement while fewer than about 200 requests are in flight. Once a minute,
//!   about 5 800 read units a day.
//! - **Writes.** Each new record enters the index (one index write unit: keys only,
//!   under 1 KB) and leaves it when completed or failed (one more). A lease taken over
//!   moves within the index (two). So a new key costs two index write units more than
//!   a table without this index; a replay or conflict writes nothing and costs none.
//!   Without the index the gauge is not measured ([`inflight_index_status`] says so)
//!   and nothing else changes: the attribute is still written, so adding the index
//!   later backfills it.
//!
//! The index is eventually consistent (its lag is typically well under a second), so
//! the count describes the table as it was a moment ago.
//!
//! ```no_run
//! use lambda_idempotency::clock::{Clock, SystemClock};
//! use lambda_idempotency::ops::in_flight;
//! use lambda_idempotency::store::dynamodb::DynamoDbStore;
//!
//! # async fn example(store: DynamoDbStore) -> Result<(), lambda_idempotency::Error> {
//! let count = in_flight(&store, SystemClock.now_millis()).await?;
//! println!("{} in flight, {} abandoned", count.live, count.lapsed);
//! # Ok(()) }
//! ```

use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus};
use serde::Serialize;

use super::table::{INFLIGHT_INDEX, check_index, index_status};
use crate::error::Result;
use crate::store::dynamodb::DynamoDbStore;
use crate::store::dynamodb::codec::EXPIRY_SHARDS;
use crate::store::dynamodb::errors::map_sdk_error;

/// The `PENDING` records of a table at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InFlight {
    /// Records `PENDING` with a live lease: requests in flight.
    pub live: u64,
    /// Records `PENDING` whose lease has lapsed: abandoned requests.
    pub lapsed: u64,
    /// `Query` calls sent.
    pub dynamodb_calls: u32,
}

/// Counts the table's `PENDING` records at `now_ms`, live and lapsed, through
/// [`INFLIGHT_INDEX`] (see the [module docs](self) for the cost).
///
/// Fails with [`Error::StoreRejected`] when the table has no such index.
pub async fn in_flight(store: &DynamoDbStore, now_ms: i64) -> Result<InFlight> {
    let shards = (0..EXPIRY_SHARDS).map(|shard| count_shard(store, shard, now_ms));
    let mut total = InFlight::default();
    for shard in futures::future::join_all(shards).await {
        let shard = shard?;
        total.live += shard.live;
        total.lapsed += shard.lapsed;
        total.dynamodb_calls += shard.dynamodb_calls;
    }
    Ok(total)
}

async fn count_shard(store: &DynamoDbStore, shard: u8, now_ms: i64) -> Result<InFlight> {
    let names = store.attribute_names();
    let mut count = InFlight::default();
    let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(store.table_name())
            .index_name(INFLIGHT_INDEX)
            .key_condition_expression("#shard = :shard")
            .projection_expression("#lease")
            .expression_attribute_names("#shard", &names.inflight_shard)
            .expression_attribute_names("#lease", &names.lease_expires_at)
            .expression_attribute_values(":shard", AttributeValue::S(shard.to_string()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| map_sdk_error(e, store.table_name()))?;
        count.dynamodb_calls += 1;
        for item in page.items() {
            let lease = item
                .get(&names.lease_expires_at)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok());
            // An index item always has its sort key; one without a readable lease
            // cannot be live.
            match lease {
                Some(until) if until > now_ms => count.live += 1,
                _ => count.lapsed += 1,
            }
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(count),
        }
    }
}

/// The in-flight index's status, or `None` when the table has no such index.
pub async fn inflight_index_status(store: &DynamoDbStore) -> Result<Option<IndexStatus>> {
    index_status(store.client(), store.table_name(), INFLIGHT_INDEX).await
}

/// Whether [`in_flight`] can count now: `Ok(())` when the index is `ACTIVE`, else the
/// reason as an error (missing: [`Error::StoreRejected`]; still being built:
/// [`Error::StoreUnavailable`]).
pub async fn check_inflight_index(store: &DynamoDbStore) -> Result<()> {
    let names = store.attribute_names();
    check_index(
        store,
        INFLIGHT_INDEX,
        (&names.inflight_shard, &names.lease_expires_at),
        "requests in flight are counted once it is ACTIVE",
        "requests in flight are not counted",
    )
    .await
}
