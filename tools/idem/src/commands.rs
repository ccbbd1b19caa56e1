//! The commands. Each writes its report to `out` and returns the exit code; a failure
//! is returned for `main` to print as one line.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use aws_sdk_dynamodb::types::IndexStatus;
use lambda_idempotency::Error;
use lambda_idempotency::clock::{Clock, SystemClock};
use lambda_idempotency::ops::{Day, format_utc_millis, format_utc_secs};
use lambda_idempotency::ops::{
    EXPIRY_INDEX, INFLIGHT_INDEX, TableIndexes, create_table_with, expiry_index_status, in_flight,
    inflight_index_status, read_stats,
};
use lambda_idempotency::record::{Record, Status};
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::Store;
use lambda_idempotency::store::dynamodb::DynamoDbStore;

use crate::Failure;
use crate::format::{millis_with_age, secs_with_age};

/// `idem table create`.
pub async fn table_create(
    store: &DynamoDbStore,
    with_sweeper_indexes: bool,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let names = store.attribute_names();
    let layout = store.key_layout();
    let indexes = if with_sweeper_indexes {
        TableIndexes::Sweeper
    } else {
        TableIndexes::None
    };
    create_table_with(store.client(), store.table_name(), names, layout, indexes).await?;
    let sort_key = match layout.sort_key() {
        Some(sort_key) => format!(", sort key {sort_key} (S)"),
        None => String::new(),
    };
    if !with_sweeper_indexes {
        writeln!(
            out,
            "table {:?} is ready: partition key {} (S){sort_key}, TTL on {}, no secondary index (the sweeper's: --with-sweeper-indexes)",
            store.table_name(),
            names.partition_key,
            names.expires_at,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let index = match expiry_index_status(store).await? {
        Some(IndexStatus::Active) | None => String::new(),
        // Added to an older table: DynamoDB backfills it first.
        Some(status) => format!(" (index {status}: usable by the sweeper once ACTIVE)"),
    };
    let inflight = match inflight_index_status(store).await? {
        Some(IndexStatus::Active) => String::new(),
        // DynamoDB adds one index at a time: the next `table create` adds it.
        None => " (not added yet: run this again once the expiry index is ACTIVE)".to_owned(),
        Some(status) => format!(" (index {status}: counted once ACTIVE)"),
    };
    writeln!(
        out,
        "table {:?} is ready: partition key {} (S){sort_key}, TTL on {}, index {EXPIRY_INDEX} on ({}, {}){index}, index {INFLIGHT_INDEX} on ({}, {}){inflight}",
        store.table_name(),
        names.partition_key,
        names.expires_at,
        names.expiry_bucket,
        names.expires_at,
        names.inflight_shard,
        names.lease_expires_at,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `idem inspect`.
pub async fn inspect(
    store: &DynamoDbStore,
    scope: &Scope,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let pk = scope.partition_key();
    match store.read_record(pk).await? {
        Some(record) => write_record(&record, SystemClock.now_millis(), out)?,
        None => writeln!(
            out,
            "no record for route {:?}, actor {:?}, key {:?} (partition key {pk})",
            scope.route(),
            scope.actor(),
            scope.key().as_str()
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_record(r: &Record, now_ms: i64, out: &mut impl Write) -> std::io::Result<()> {
    let expired = r.is_expired(now_ms.div_euclid(1000));
    let expiry_note = if expired {
        "; expired: reads as absent until the sweeper or TTL deletes it"
    } else {
        ""
    };
    let lease_note = match (r.status, r.lease_lapsed(now_ms)) {
        (Status::Pending, false) => "held",
        (Status::Pending, true) => "lapsed: a retry of the same request may take over",
        _ => "released",
    };
    let response = match &r.response {
        Some(bytes) => format!("{} bytes", bytes.len()),
        None => "none".to_owned(),
    };
    let rows = [
        ("partition key", r.partition_key.clone()),
        ("status", r.status.to_string()),
        ("route", r.route.clone()),
        ("actor", r.actor.clone()),
        ("key", r.key.clone()),
        ("created", millis_with_age(r.created_at_ms, now_ms)),
        ("updated", millis_with_age(r.updated_at_ms, now_ms)),
        (
            "expires",
            format!("{}{expiry_note}", secs_with_age(r.expires_at, now_ms)),
        ),
        (
            "lease until",
            format!(
                "{} [{lease_note}]",
                millis_with_age(r.lease_expires_at_ms, now_ms)
            ),
        ),
        ("fingerprint", r.fingerprint.as_str().to_owned()),
        ("response", response),
    ];
    for (label, value) in rows {
        writeln!(out, "{label:<14} {value}")?;
    }
    Ok(())
}

/// `idem purge`.
pub async fn purge(
    store: &DynamoDbStore,
    scope: &Scope,
    yes: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let pk = scope.partition_key();
    match store.read_record(pk).await {
        Ok(Some(r)) => writeln!(
            out,
            "record {pk}: {}, created {}, expires {}",
            r.status,
            format_utc_millis(r.created_at_ms),
            format_utc_secs(r.expires_at),
        )?,
        Ok(None) => {
            writeln!(out, "no record {pk}: nothing to delete")?;
            return Ok(ExitCode::SUCCESS);
        }
        // A record that cannot be read is exactly what an operator may need to purge.
        Err(Error::CorruptRecord { reason, .. }) => {
            writeln!(out, "record {pk}: unreadable ({reason})")?
        }
        Err(e) => return Err(e.into()),
    }
    out.flush()?;
    if !yes {
        eprint!("Delete record {pk}? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        if input.read_line(&mut answer)? == 0 {
            eprintln!();
            return Err(Failure::Message(format!(
                "no answer on standard input: record {pk} kept (pass --yes to delete without asking)"
            )));
        }
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Failure::Message(format!("not confirmed: record {pk} kept")));
        }
    }
    if store.delete(pk).await? {
        writeln!(out, "deleted record {pk}")?;
    } else {
        writeln!(out, "no record {pk}: nothing to delete")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `idem inflight`.
pub async fn inflight(store: &DynamoDbStore, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let count = in_flight(store, SystemClock.now_millis()).await?;
    writeln!(
        out,
        "table {:?}: {} in flight (PENDING, lease live), {} abandoned (PENDING, lease lapsed)",
        store.table_name(),
        count.live,
        count.lapsed
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `idem stats`.
pub async fn stats(
    store: &DynamoDbStore,
    days: u32,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let today = Day::of_millis(SystemClock.now_millis());
    let rows = read_stats(store, today, days).await?;
    writeln!(
        out,
        "table {:?}, last {days} days (UTC), records counted by the day they were created",
        store.table_name()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10}  {:>9}  {:>9}  {:>9}  {:>9}",
        "day", "created", "completed", "errored", "abandoned"
    )?;
    for row in &rows {
        let c = row.counts;
        writeln!(
            out,
            "{:<10}  {:>9}  {:>9}  {:>9}  {:>9}",
            row.day.to_string(),
            c.created,
            c.completed,
            c.errored,
            c.abandoned
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Counted by the sweeper as it deletes expired records, so a day fills in once its\n\
         records expire. Replays and conflicts are not stored per day: see the CloudWatch\n\
         metrics idempotency.replay.count and idempotency.conflict.count."
    )?;
    Ok(ExitCode::SUCCESS)
}
