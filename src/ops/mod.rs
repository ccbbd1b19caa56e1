//! Operator code, off the request path (the `ops` feature): the sweeper that deletes
//! expired records before TTL does, the per-day statistics it keeps in the same
//! table, the count of requests in flight, creating a table (for DynamoDB Local,
//! tests and tools; in production the SAM template does), and the calendar helpers
//! they use. The `sweeper` function and
//! the `idem` CLI are built on it; a request never runs any of it.

mod in_flight;
mod stats;
mod sweep;
mod table;

pub use crate::day::{Day, SECS_PER_DAY, format_utc_millis, format_utc_secs};
pub use crate::store::dynamodb::codec::{
    EXPIRY_SHARDS, FORMAT_VERSION, expiry_bucket, expiry_bucket_of, expiry_shard,
};
pub use in_flight::{InFlight, check_inflight_index, in_flight, inflight_index_status};
pub use stats::{
    DayCounts, DayStats, STATS_PREFIX, STATS_RETENTION_DAYS, read_stats, stats_expires_at,
    stats_key,
};
pub use sweep::{
    DeleteOutcome, SweepOptions, SweepReport, check_expiry_index, delete_expired,
    expiry_index_status, sweep,
};
pub use table::{
    EXPIRY_INDEX, INFLIGHT_INDEX, TableIndexes, create_table, create_table_with,
    create_table_with_layout,
};
