//! The sweeper: deletes expired records that DynamoDB's TTL has not removed yet, and
//! keeps per-day statistics as it goes.
//!
//! TTL is the primary expiry, and it is free, but it deletes late (typically within a
//! few days). Expired records already behave as absent on read, so the sweeper is
//! housekeeping: it keeps the table's size (and so its storage bill and any scan)
//! close to the live records, and it is where the per-day [statistics](super::stats)
//! come from.
//!
//! # How it finds expired records
//!
//! Every record carries `expiry_bucket = "{expires_at / 3600}#{shard}"` (see
//! [`expiry_bucket`](super::expiry_bucket)), where the shard is the first byte of the
//! SHA-256 of the partition key modulo [`EXPIRY_SHARDS`]. The table has a sparse
//! global secondary index [`EXPIRY_INDEX`] on (`expiry_bucket`, `expires_at`),
//! projecting keys only; stats items have no bucket, so they are not in it. A run
//! walks the hours from `now - lookback_hours` to the current hour, oldest first, and
//! for each hour and shard sends a `Query` for `expires_at < now`, in pages of
//! `page_size`, stopping after `max_items` keys overall. The next run continues where
//! this one stopped, because deleted keys leave the index.
//!
//! Each key is deleted with a `DeleteItem` conditional on `expires_at < now`, so a
//! record that was begun again after the query (its `expires_at` is then in the
//! future) is never deleted: it counts as `skipped_rebegun`. The old item comes back
//! (`ReturnValues = ALL_OLD`) and is counted by status: `COMPLETED` as completed,
//! `ERRORED` as errored, `PENDING` as abandoned, each with `created`, under the UTC
//! day of its `created_at`. Those counts are `ADD`ed to the day's stats item with
//! one `UpdateItem` per day touched per run, not one per record.
//!
//! # What it costs
//!
//! - **Index writes.** The index costs one extra (keys-only, under 1 KB, so 1 WCU)
//!   index write per new record. Completing or failing a record changes no index key
//!   attribute and nothing is projected beyond keys, so it costs no index write.
//!   Beginning again over an expired, errored or abandoned record moves it to a new
//!   bucket: two index writes (remove and add). Index storage is the key attributes
//!   plus about 100 bytes per record.
//! - **Queries.** A run sends `EXPIRY_SHARDS x (lookback_hours + 1)` queries at least
//!   (8 x 74 = 592 with the defaults), each reading only expired keys, 4 KB of keys
//!   per half read unit; an empty one costs the minimum, half a read unit. That is
//!   about 300 read units a run; every 15 minutes, about 28 000 a day or 850 000 a
//!   month (around ten US cents on demand). Nothing is ever scanned: a `Scan` would
//!   read every live item, responses included, on every run.
//! - **Deletes.** A `DeleteItem` costs write units for the deleted item's size (its
//!   stored response included) plus one index write; TTL's deletes are free. The
//!   sweeper only pays for what it reaches before TTL does.
//! - **Stats.** One `UpdateItem` per UTC day touched per run (usually one or two).
//! - **Sharding.** One hour's new records are spread over 8 index partitions, so
//!   the index never throttles writes to the table below about 8 000 new
//!   records per second (a partition takes about 1 000 writes per second).
//!
//! Replays and conflicts are not in the per-day statistics: counting them in the table
//! would cost a write per replayed or refused request (and make one hot item per day),
//! where today those requests cost a single conditional write that changes nothing.
//! They are in the EMF metrics `idempotency.replay.count` and
//! `idempotency.conflict.count` instead.
//!
//! Records older than the lookback are left to TTL; so are records that TTL deletes
//! first, or that a new request replaces: the statistics count what the sweeper
//! deletes.
//!
//! ```no_run
//! use lambda_idempotency::clock::{Clock, SystemClock};
//! use lambda_idempotency::ops::{SweepOptions, sweep};
//! use lambda_idempotency::store::dynamodb::DynamoDbStore;
//!
//! # async fn example(store: DynamoDbStore) -> Result<(), lambda_idempotency::Error> {
//! let report = sweep(&store, SystemClock.now_secs(), &SweepOptions::default()).await?;
//! println!("deleted {} expired records ({} abandoned)", report.deleted, report.abandoned);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, IndexStatus, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use futures::StreamExt;
use serde::Serialize;

use super::stats::{DayCounts, add_stats};
use super::table::{EXPIRY_INDEX, check_index, index_status};
use crate::day::Day;
use crate::error::Result;
use crate::record::Status;
use crate::store::dynamodb::DynamoDbStore;
use crate::store::dynamodb::codec::{EXPIRY_SHARDS, expiry_bucket_of};
use crate::store::dynamodb::errors::map_sdk_error;

/// How many deletes of one page run at a time.
const DELETE_CONCURRENCY: usize = 16;

/// Bounds of one sweep run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// At most this many expired keys are read (and deleted) per run.
    pub max_items: u32,
    /// How far back, in hours of expiry time, a run looks. Older records are left to TTL.
    pub lookback_hours: u32,
    /// Keys per `Query` page.
    pub page_size: u32,
}

impl SweepOptions {
    /// Default `max_items`.
    pub const DEFAULT_MAX_ITEMS: u32 = 1000;
    /// Default `lookback_hours`: three days and an hour. TTL usually deletes within a
    /// few days, so records that expired longer ago are left to it.
    pub const DEFAULT_LOOKBACK_HOURS: u32 = 73;
    /// Default `page_size`.
    pub const DEFAULT_PAGE_SIZE: u32 = 100;
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            max_items: Self::DEFAULT_MAX_ITEMS,
            lookback_hours: Self::DEFAULT_LOOKBACK_HOURS,
            page_size: Self::DEFAULT_PAGE_SIZE,
        }
    }
}

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Expired keys the index returned.
    pub scanned: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Keys not deleted because the record was begun again (it is live now).
    pub skipped_rebegun: u64,
    /// Keys whose record was already gone (TTL, a concurrent sweep, a purge).
    pub already_gone: u64,
    /// Deleted records that had `COMPLETED`.
    pub completed: u64,
    /// Deleted records that had `ERRORED`.
    pub errored: u64,
    /// Deleted records still `PENDING`: abandoned requests.
    pub abandoned: u64,
    /// Deleted items whose status could not be read.
    pub unknown_status: u64,
    /// Whether the run stopped at `max_items`; the next run continues.
    pub reached_max_items: bool,
    /// The UTC days (of creation) whose stats were updated.
    pub stats_days: Vec<Day>,
    /// `Query` calls.
    pub queries: u64,
    /// `DeleteItem` calls.
    pub deletes: u64,
    /// `UpdateItem` calls on stats items.
    pub stats_updates: u64,
    /// All DynamoDB calls of the run.
    pub dynamodb_calls: u64,
}

/// The result of [`delete_expired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The record had expired and was deleted.
    Deleted {
        /// Its status (`None` if unreadable).
        status: Option<Status>,
        /// When it was created, epoch ms (`None` if unreadable).
        created_at_ms: Option<i64>,
    },
    /// The record exists but is live: it was begun again since it expired.
    Rebegun,
    /// There is no such record.
    Gone,
}

/// Runs one sweep at `now_secs` (epoch seconds); see the [module docs](mod@self).
///
/// If a call fails part-way, the statistics of what was already deleted are still
/// written before the error is returned.
pub async fn sweep(
    store: &DynamoDbStore,
    now_secs: i64,
    options: &SweepOptions,
) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut per_day = BTreeMap::new();
    let swept = sweep_buckets(store, now_secs, options, &mut report, &mut per_day).await;
    let stats = add_stats(store, &per_day).await;
    report.stats_days = per_day
        .iter()
        .filter(|(_, c)| !c.is_zero())
        .map(|(d, _)| *d)
        .collect();
    if let Ok(calls) = &stats {
        report.stats_updates = *calls;
    }
    report.dynamodb_calls = report.queries + report.deletes + report.stats_updates;
    swept?;
    stats?;
    Ok(report)
}

async fn sweep_buckets(
    store: &DynamoDbStore,
    now_secs: i64,
    options: &SweepOptions,
    report: &mut SweepReport,
    per_day: &mut BTreeMap<Day, DayCounts>,
) -> Result<()> {
    let names = store.attribute_names();
    let max_items = u64::from(options.max_items);
    let page_size = options.page_size.clamp(1, 1000);
    let now_hour = now_secs.div_euclid(3600);
    let first_hour = now_secs
        .saturating_sub(i64::from(options.lookback_hours) * 3600)
        .div_euclid(3600);
    for hour in first_hour..=now_hour {
        for shard in 0..EXPIRY_SHARDS {
            let bucket = expiry_bucket_of(hour, shard);
            let mut start_key: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let room = max_items.saturating_sub(report.scanned);
                if room == 0 {
                    report.reached_max_items = true;
                    return Ok(());
                }
                let limit = u64::from(page_size).min(room);
                report.queries += 1;
                let page = store
                    .client()
                    .query()
                    .table_name(store.table_name())
                    .index_name(EXPIRY_INDEX)
                    .key_condition_expression("#bucket = :bucket AND #exp < :now_s")
                    .expression_attribute_names("#bucket", &names.expiry_bucket)
                    .expression_attribute_names("#exp", &names.expires_at)
                    .expression_attribute_values(":bucket", AttributeValue::S(bucket.clone()))
                    .expression_attribute_values(":now_s", AttributeValue::N(now_secs.to_string()))
                    .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start_key.take())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(e, store.table_name()))?;
                let keys: Vec<String> = page
                    .items()
                    .iter()
                    .filter_map(|item| store.record_key_of(item))
                    .collect();
                report.scanned += keys.len() as u64;
                let outcomes: Vec<Result<DeleteOutcome>> = futures::stream::iter(keys)
                    .map(|pk| async move { delete_expired(store, &pk, now_secs).await })
                    .buffer_unordered(DELETE_CONCURRENCY)
                    .collect()
                    .await;
                let mut first_error = None;
                for outcome in outcomes {
                    match outcome {
                        Ok(outcome) => {
                            report.deletes += 1;
                            tally(report, per_day, outcome);
                        }
                        Err(e) => {
                            report.deletes += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                if let Some(e) = first_error {
                    return Err(e);
                }
                match page.last_evaluated_key() {
                    Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

fn tally(report: &mut SweepReport, per_day: &mut BTreeMap<Day, DayCounts>, outcome: DeleteOutcome) {
    let DeleteOutcome::Deleted {
        status,
        created_at_ms,
    } = outcome
    else {
        match outcome {
            DeleteOutcome::Rebegun => report.skipped_rebegun += 1,
            _ => report.already_gone += 1,
        }
        return;
    };
    report.deleted += 1;
    let mut counts = DayCounts {
        created: 1,
        ..DayCounts::default()
    };
    match status {
        Some(Status::Completed) => {
            report.completed += 1;
            counts.completed = 1;
        }
        Some(Status::Errored) => {
            report.errored += 1;
            counts.errored = 1;
        }
        Some(Status::Pending) => {
            report.abandoned += 1;
            counts.abandoned = 1;
        }
        None => report.unknown_status += 1,
    }
    // A record without a readable creation time has no day to count under.
    if let Some(created) = created_at_ms {
        let day = per_day.entry(Day::of_millis(created)).or_default();
        day.created += counts.created;
        day.completed += counts.completed;
        day.errored += counts.errored;
        day.abandoned += counts.abandoned;
    }
}

/// Deletes one record if, and only if, it has expired at `now_secs`: one conditional
/// `DeleteItem`. A record begun again since it expired is live and is left alone.
pub async fn delete_expired(
    store: &DynamoDbStore,
    partition_key: &str,
    now_secs: i64,
) -> Result<DeleteOutcome> {
    let names = store.attribute_names();
    let result = store
        .client()
        .delete_item()
        .table_name(store.table_name())
        .set_key(Some(store.key(partition_key)))
        .condition_expression("#exp < :now_s")
        .expression_attribute_names("#exp", &names.expires_at)
        .expression_attribute_values(":now_s", AttributeValue::N(now_secs.to_string()))
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(out) => {
            let Some(old) = out.attributes().filter(|a| !a.is_empty()) else {
                return Ok(DeleteOutcome::Gone);
            };
            let status = match old.get(&names.status) {
                Some(AttributeValue::S(s)) => Status::parse(s),
                _ => None,
            };
            let created_at_ms = match old.get(&names.created_at) {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            };
            Ok(DeleteOutcome::Deleted {
                status,
                created_at_ms,
            })
        }
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
        {
            let exists = match e.err() {
                DeleteItemError::ConditionalCheckFailedException(failed) => {
                    failed.item().is_some_and(|i| !i.is_empty())
                }
                _ => false,
            };
            Ok(if exists {
                DeleteOutcome::Rebegun
            } else {
                DeleteOutcome::Gone
            })
        }
        Err(e) => Err(map_sdk_error(e, store.table_name())),
    }
}

/// The expiry index's status (`ACTIVE` once usable), or `None` when the table has no
/// expiry index.
pub async fn expiry_index_status(store: &DynamoDbStore) -> Result<Option<IndexStatus>> {
    index_status(store.client(), store.table_name(), EXPIRY_INDEX).await
}

/// Checks that the table exists and its expiry index is ready: call it at start-up so
/// a table created without the index is one clear error.
pub async fn check_expiry_index(store: &DynamoDbStore) -> Result<()> {
    let names = store.attribute_names();
    check_index(
        store,
        EXPIRY_INDEX,
        (&names.expiry_bucket, &names.expires_at),
        "the sweeper can run once it is ACTIVE",
        "the sweeper needs it",
    )
    .await
}
