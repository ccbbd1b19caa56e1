//! Per-day statistics, kept in the idempotency table itself.
//!
//! One item per UTC day under the partition key `s1|YYYY-MM-DD` (record keys start
//! `k1|` or `h1|`, so the two can never collide), with the attributes `day` (S) and
//! the counters `created`, `completed`, `errored`, `abandoned` (N), each raised with
//! `ADD` so concurrent sweeps add up. A stats item carries the table's TTL attribute
//! (the end of its day plus [`STATS_RETENTION_DAYS`] days) and no expiry bucket, so
//! TTL removes it and the sweeper's index never sees it.
//!
//! The counters are written by the [sweeper](mod@super::sweep) as it deletes expired
//! records, under the UTC day each record was *created*: a day's row fills in once its
//! records expire (after the configured expiry, 24 hours by default).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde::Serialize;

use crate::day::{Day, SECS_PER_DAY};
use crate::error::{Error, Result};
use crate::store::dynamodb::DynamoDbStore;
use crate::store::dynamodb::errors::map_sdk_error;

/// The partition-key prefix of stats items.
pub const STATS_PREFIX: &str = "s1|";

/// How many days after its own day a stats item lives before TTL removes it (so a
/// week of statistics can always be read).
pub const STATS_RETENTION_DAYS: i64 = 8;

const ATTR_DAY: &str = "day";
const ATTR_CREATED: &str = "created";
const ATTR_COMPLETED: &str = "completed";
const ATTR_ERRORED: &str = "errored";
const ATTR_ABANDONED: &str = "abandoned";

/// DynamoDB's limit of keys per `BatchGetItem`.
const BATCH_GET_MAX: usize = 100;
/// How often unprocessed keys of a `BatchGetItem` are asked for again.
const BATCH_GET_ROUNDS: usize = 5;

/// The partition key of a day's stats item: `s1|YYYY-MM-DD`.
///
/// ```
/// use lambda_idempotency::ops::{Day, stats_key};
///
/// assert_eq!(stats_key(Day::parse("2024-06-02").unwrap()), "s1|2024-06-02");
/// ```
pub fn stats_key(day: Day) -> String {
    format!("{STATS_PREFIX}{day}")
}

/// Counters for one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// Records created that day (and since swept).
    pub created: u64,
    /// ... of which had completed.
    pub completed: u64,
    /// ... of which had errored.
    pub errored: u64,
    /// ... of which were still `PENDING`: the request was abandoned (timeout, crash).
    pub abandoned: u64,
}

impl DayCounts {
    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// A day's statistics, as read by [`read_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayStats {
    /// The UTC day.
    pub day: Day,
    /// Its counters (zero when the day has no stats item).
    #[serde(flatten)]
    pub counts: DayCounts,
}

/// Adds `counts` to the stats items of their days: one `UpdateItem` per day.
/// Returns the number of calls made.
pub(crate) async fn add_stats(
    store: &DynamoDbStore,
    per_day: &BTreeMap<Day, DayCounts>,
) -> Result<u64> {
    let names = store.attribute_names();
    let n = |v: u64| AttributeValue::N(v.to_string());
    let mut calls = 0;
    for (day, counts) in per_day.iter().filter(|(_, c)| !c.is_zero()) {
        let expires_at = stats_expires_at(*day);
        calls += 1;
        store
            .client()
            .update_item()
            .table_name(store.table_name())
            .set_key(Some(store.key(&stats_key(*day))))
            .update_expression(
                "SET #day = :day, #exp = :exp \
                 ADD #created :created, #completed :completed, #errored :errored, #abandoned :abandoned",
            )
            .expression_attribute_names("#day", ATTR_DAY)
            .expression_attribute_names("#exp", &names.expires_at)
            .expression_attribute_names("#created", ATTR_CREATED)
            .expression_attribute_names("#completed", ATTR_COMPLETED)
            .expression_attribute_names("#errored", ATTR_ERRORED)
            .expression_attribute_names("#abandoned", ATTR_ABANDONED)
            .expression_attribute_values(":day", AttributeValue::S(day.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":created", n(counts.created))
            .expression_attribute_values(":completed", n(counts.completed))
            .expression_attribute_values(":errored", n(counts.errored))
            .expression_attribute_values(":abandoned", n(counts.abandoned))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, store.table_name()))?;
    }
    Ok(calls)
}

/// Reads the statistics of `days` days ending with `today`, today first; a day
/// without a stats item reads as zeros. One `BatchGetItem` per 100 days.
///
/// ```no_run
/// use lambda_idempotency::clock::{Clock, SystemClock};
/// use lambda_idempotency::ops::{Day, read_stats};
/// use lambda_idempotency::store::dynamodb::DynamoDbStore;
///
/// # async fn example(store: DynamoDbStore) -> Result<(), lambda_idempotency::Error> {
/// for day in read_stats(&store, Day::of_secs(SystemClock.now_secs()), 7).await? {
///     println!("{} created {} abandoned {}", day.day, day.counts.created, day.counts.abandoned);
/// }
/// # Ok(()) }
/// ```
pub async fn read_stats(store: &DynamoDbStore, today: Day, days: u32) -> Result<Vec<DayStats>> {
    let wanted: Vec<Day> = (0..i64::from(days)).map(|i| today.minus_days(i)).collect();
    let mut found: HashMap<String, DayCounts> = HashMap::new();
    for chunk in wanted.chunks(BATCH_GET_MAX) {
        let keys = chunk.iter().map(|d| store.key(&stats_key(*d))).collect();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| Error::StoreRejected {
                    message: e.to_string(),
                    source: None,
                })?,
        );
        for round in 0..BATCH_GET_ROUNDS {
            let Some(keys) = request.take() else { break };
            if round > 0 {
                // Unprocessed keys mean throttling: back off a little.
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
            let out = store
                .client()
                .batch_get_item()
                .request_items(store.table_name(), keys)
                .send()
                .await
                .map_err(|e| map_sdk_error(e, store.table_name()))?;
            for item in out
                .responses()
                .and_then(|r| r.get(store.table_name()))
                .into_iter()
                .flatten()
            {
                if let Some(AttributeValue::S(day)) = item.get(ATTR_DAY) {
                    found.insert(day.clone(), counts_of(item));
                }
            }
            request = out
                .unprocessed_keys()
                .and_then(|u| u.get(store.table_name()))
                .filter(|k| !k.keys().is_empty())
                .cloned();
        }
        if request.is_some() {
            return Err(Error::StoreUnavailable {
                message: format!(
                    "DynamoDB left stats keys unprocessed after {BATCH_GET_ROUNDS} attempts"
                ),
                source: None,
            });
        }
    }
    Ok(wanted
        .into_iter()
        .map(|day| DayStats {
            day,
            counts: found.get(&day.to_string()).copied().unwrap_or_default(),
        })
        .collect())
}

fn counts_of(item: &HashMap<String, AttributeValue>) -> DayCounts {
    let get = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    };
    DayCounts {
        created: get(ATTR_CREATED),
        completed: get(ATTR_COMPLETED),
        errored: get(ATTR_ERRORED),
        abandoned: get(ATTR_ABANDONED),
    }
}

/// The TTL of `day`'s stats item, epoch seconds: the end of the day plus
/// [`STATS_RETENTION_DAYS`] days.
pub fn stats_expires_at(day: Day) -> i64 {
    day.start_secs() + SECS_PER_DAY * (1 + STATS_RETENTION_DAYS)
}
