//! The sweeper function: on a schedule, deletes idempotency records that have expired
//! but that DynamoDB's TTL has not removed yet, adds what it deleted to the per-day
//! statistics, measures how many requests are in flight, and reports its counts as
//! CloudWatch EMF lines.
//!
//! The work is [`lambda_idempotency::ops::sweep()`] and
//! [`lambda_idempotency::ops::in_flight()`]; their module docs explain how records
//! are found and what a run costs. This crate adds the settings (`SWEEP_MAX_ITEMS`,
//! `SWEEP_LOOKBACK_HOURS`), the metrics and the Lambda handler. An event whose
//! `task` is `"in-flight"` only measures the in-flight gauge (the template sends one
//! every minute); any other event without a `task` (an EventBridge schedule sends a
//! `Scheduled Event`) sweeps, then measures.
//!
//! ```no_run
//! use lambda_idempotency::store::dynamodb::{DynamoDbStore};
//! use lambda_idempotency::ops::{SweepOptions};
//! use sweeper::Sweeper;
//!
//! # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), sweeper::SweepError> {
//! let sweeper = Sweeper::new(DynamoDbStore::new(client, "idempotency"), SweepOptions::default());
//! let report = sweeper.run().await?;
//! println!("{}", sweeper.emf_line(&report));
//! # Ok(()) }
//! ```

use std::sync::Arc;

use lambda_idempotency::clock::{Clock, SharedClock, SystemClock};
use lambda_idempotency::metrics::{INFLIGHT, INFLIGHT_LAPSED};
use lambda_idempotency::ops::{
    InFlight, SweepOptions, SweepReport, check_inflight_index, in_flight, sweep,
};
use lambda_idempotency::store::dynamodb::DynamoDbStore;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::{Value, json};

/// Environment variable: most expired keys deleted per run (default 1000).
pub const ENV_MAX_ITEMS: &str = "SWEEP_MAX_ITEMS";
/// Environment variable: how many hours of expiry time a run looks back (default 73).
pub const ENV_LOOKBACK_HOURS: &str = "SWEEP_LOOKBACK_HOURS";

/// The largest accepted `SWEEP_MAX_ITEMS`: a run deletes about 1 000 keys a second,
/// and a Lambda runs for at most 15 minutes.
pub const MAX_MAX_ITEMS: u32 = 500_000;
/// The largest accepted `SWEEP_LOOKBACK_HOURS` (31 days): each hour costs 8 queries
/// per run.
pub const MAX_LOOKBACK_HOURS: u32 = 744;

/// The EMF namespace.
pub const NAMESPACE: &str = "Idempotency";
/// The value of the `service` dimension.
pub const SERVICE: &str = "sweeper";
/// Records deleted by a run.
pub const METRIC_DELETED: &str = "idempotency.sweep.deleted.count";
/// Expired keys left alone because their record was begun again.
pub const METRIC_SKIPPED: &str = "idempotency.sweep.skipped.count";
/// Deleted records that were still `PENDING` (abandoned requests).
pub const METRIC_ABANDONED: &str = "idempotency.sweep.abandoned.count";
/// The event `task` that only measures the in-flight gauge.
pub const TASK_IN_FLIGHT: &str = "in-flight";

/// Why the sweeper could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// A setting is missing or out of range.
    #[error("environment variable {name} {problem}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// DynamoDB failed (missing table or index, unreachable, refused).
    #[error(transparent)]
    Store(#[from] lambda_idempotency::Error),
    /// The event asked for a task the sweeper does not know.
    #[error(
        "unknown task {0:?}: the sweeper knows \"in-flight\" (or no task: sweep, then measure)"
    )]
    Task(String),
}

impl SweepError {
    /// A stable name for logs and Lambda diagnostics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Setting { .. } => "Sweeper.Setting",
            Self::Task(_) => "Sweeper.Task",
            Self::Store(e) => e.error_type(),
        }
    }
}

impl From<SweepError> for Diagnostic {
    fn from(e: SweepError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Reads a required variable naming a table.
pub fn required_table(name: &'static str) -> Result<String, SweepError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(SweepError::Setting {
            name,
            problem: "must name a DynamoDB table".into(),
        }),
    }
}

/// The sweep bounds from `SWEEP_MAX_ITEMS` and `SWEEP_LOOKBACK_HOURS`, each optional.
pub fn options_from_env() -> Result<SweepOptions, SweepError> {
    let var = |name| std::env::var(name).ok();
    options_from(
        var(ENV_MAX_ITEMS).as_deref(),
        var(ENV_LOOKBACK_HOURS).as_deref(),
    )
}

/// The sweep bounds from the two settings' values (`None` or empty: the default).
pub fn options_from(
    max_items: Option<&str>,
    lookback_hours: Option<&str>,
) -> Result<SweepOptions, SweepError> {
    let mut options = SweepOptions::default();
    if let Some(value) = max_items.filter(|v| !v.trim().is_empty()) {
        options.max_items = parse_bounded(ENV_MAX_ITEMS, value, 1, MAX_MAX_ITEMS)?;
    }
    if let Some(value) = lookback_hours.filter(|v| !v.trim().is_empty()) {
        options.lookback_hours = parse_bounded(ENV_LOOKBACK_HOURS, value, 0, MAX_LOOKBACK_HOURS)?;
    }
    Ok(options)
}

fn parse_bounded(name: &'static str, value: &str, min: u32, max: u32) -> Result<u32, SweepError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SweepError::Setting {
            name,
            problem: format!("must be a whole number from {min} to {max}, not {value:?}"),
        }),
    }
}

/// What one invocation did: the sweep's report (absent for an `in-flight` task) and
/// the in-flight count (absent when the table has no in-flight index).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The sweep, its counts at the top level of the JSON.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// The records `PENDING` after the sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

/// One sweep per invocation over one table.
#[derive(Debug, Clone)]
pub struct Sweeper {
    store: DynamoDbStore,
    options: SweepOptions,
    clock: SharedClock,
    in_flight: InFlightCounting,
}

/// Whether runs count the requests in flight.
#[derive(Debug, Clone)]
enum InFlightCounting {
    On,
    Off,
    /// Off until the table's in-flight index is `ACTIVE`, checked at each run (an
    /// index added to an existing table is built while the sweeper runs).
    WhenIndexActive(Arc<std::sync::atomic::AtomicBool>),
}

impl Sweeper {
    /// A sweeper over `store`'s table, on the system clock.
    pub fn new(store: DynamoDbStore, options: SweepOptions) -> Self {
        Self {
            store,
            options,
            clock: Arc::new(SystemClock),
            in_flight: InFlightCounting::On,
        }
    }

    /// Whether runs count the requests in flight (default yes).
    #[must_use]
    pub fn with_in_flight(mut self, count: bool) -> Self {
        self.in_flight = if count {
            InFlightCounting::On
        } else {
            InFlightCounting::Off
        };
        self
    }

    /// Counts the requests in flight once the table's in-flight index is `ACTIVE`,
    /// checking at each run until it is (one free `DescribeTable`): for a table whose
    /// index is missing or still being built when the function starts.
    #[must_use]
    pub fn with_in_flight_when_index_active(mut self) -> Self {
        self.in_flight = InFlightCounting::WhenIndexActive(Arc::default());
        self
    }

    /// Reads time from `clock` (tests move it forward to make records expire).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The bounds of each run.
    pub fn options(&self) -> &SweepOptions {
        &self.options
    }

    /// Runs one sweep now.
    pub async fn run(&self) -> Result<SweepReport, SweepError> {
        Ok(sweep(&self.store, self.clock.now_secs(), &self.options).await?)
    }

    /// Counts the requests in flight now, unless counting is off.
    pub async fn measure_in_flight(&self) -> Result<Option<InFlight>, SweepError> {
        use std::sync::atomic::Ordering;
        match &self.in_flight {
            InFlightCounting::On => {}
            InFlightCounting::Off => return Ok(None),
            InFlightCounting::WhenIndexActive(active) if !active.load(Ordering::Relaxed) => {
                if let Err(e) = check_inflight_index(&self.store).await {
                    tracing::warn!(error = %e, "the in-flight gauge is not measured");
                    return Ok(None);
                }
                active.store(true, Ordering::Relaxed);
            }
            InFlightCounting::WhenIndexActive(_) => {}
        }
        Ok(Some(in_flight(&self.store, self.clock.now_millis()).await?))
    }

    /// The Lambda handler. `{"task": "in-flight"}`: measures the in-flight gauge;
    /// any event without a `task`: one sweep, then the gauge. Each part writes its EMF
    /// line on standard output; the report is the function's result.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<RunReport, SweepError> {
        let sweep = match event.payload.get("task") {
            None | Some(Value::Null) => {
                let report = self.run().await?;
                println!("{}", self.emf_line(&report));
                Some(report)
            }
            Some(Value::String(task)) if task == TASK_IN_FLIGHT => None,
            Some(other) => return Err(SweepError::Task(other.to_string())),
        };
        let in_flight = self.measure_in_flight().await?;
        if let Some(count) = &in_flight {
            println!(
                "{}",
                in_flight_emf_line(self.store.table_name(), count, self.clock.now_millis())
            );
        }
        Ok(RunReport { sweep, in_flight })
    }

    /// The report as one CloudWatch Embedded Metric Format line, timestamped now.
    pub fn emf_line(&self, report: &SweepReport) -> String {
        emf_line(report, self.clock.now_millis())
    }
}

/// A report as one CloudWatch Embedded Metric Format line: namespace `Idempotency`,
/// dimension `service` = `sweeper`, the three sweep metrics (unit `Count`), and the
/// other counts as plain properties for CloudWatch Logs Insights.
///
/// ```
/// use lambda_idempotency::ops::SweepReport;
///
/// let line = sweeper::emf_line(&SweepReport { deleted: 3, ..SweepReport::default() }, 1_717_326_000_000);
/// let json: serde_json::Value = serde_json::from_str(&line)?;
/// assert_eq!(json["idempotency.sweep.deleted.count"], 3);
/// assert_eq!(json["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Idempotency");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn emf_line(report: &SweepReport, timestamp_ms: i64) -> String {
    let metrics = [
        (METRIC_DELETED, report.deleted),
        (METRIC_SKIPPED, report.skipped_rebegun),
        (METRIC_ABANDONED, report.abandoned),
    ];
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["service"]],
                "Metrics": metrics
                    .iter()
                    .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
                    .collect::<Vec<_>>(),
            }],
        },
        "service": SERVICE,
        "scanned": report.scanned,
        "completed": report.completed,
        "errored": report.errored,
        "already_gone": report.already_gone,
        "reached_max_items": report.reached_max_items,
        "dynamodb_calls": report.dynamodb_calls,
    });
    if let Value::Object(map) = &mut line {
        for (name, value) in metrics {
            map.insert(name.to_owned(), json!(value));
        }
    }
    line.to_string()
}

/// The in-flight count as one CloudWatch EMF line: namespace `Idempotency`,
/// dimension `table`, the gauges `idempotency.inflight.gauge` (records `PENDING`
/// with a live lease: requests in flight) and `idempotency.inflight_lapsed.gauge`
/// (`PENDING` with a lapsed lease: abandoned requests), unit `Count`.
///
/// ```
/// use lambda_idempotency::ops::InFlight;
///
/// let count = InFlight::default();
/// let line = sweeper::in_flight_emf_line("idempotency", &count, 1_717_326_000_000);
/// let json: serde_json::Value = serde_json::from_str(&line)?;
/// assert_eq!(json["idempotency.inflight.gauge"], 0);
/// assert_eq!(json["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["table"]]));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn in_flight_emf_line(table: &str, count: &InFlight, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["table"]],
                "Metrics": [
                    {"Name": INFLIGHT, "Unit": "Count"},
                    {"Name": INFLIGHT_LAPSED, "Unit": "Count"},
                ],
            }],
        },
        "table": table,
        "service": SERVICE,
        INFLIGHT: count.live,
        INFLIGHT_LAPSED: count.lapsed,
        "dynamodb_calls": count.dynamodb_calls,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_has_the_aws_block_dimension_and_metrics() {
        let report = SweepReport {
            scanned: 9,
            deleted: 7,
            skipped_rebegun: 2,
            abandoned: 3,
            dynamodb_calls: 20,
            ..SweepReport::default()
        };
        let line = emf_line(&report, 1_717_326_000_123);
        assert!(!line.contains('\n'));
        let json: Value = serde_json::from_str(&line).unwrap();
        let aws = &json["_aws"];
        assert_eq!(aws["Timestamp"], 1_717_326_000_123_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Idempotency");
        assert_eq!(directive["Dimensions"], json!([["service"]]));
        assert_eq!(json["service"], "sweeper");
        let names: Vec<_> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["Unit"], "Count");
                m["Name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "idempotency.sweep.deleted.count",
                "idempotency.sweep.skipped.count",
                "idempotency.sweep.abandoned.count"
            ]
        );
        // Every metric named in the directive has a numeric value at the top level.
        assert_eq!(json["idempotency.sweep.deleted.count"], 7);
        assert_eq!(json["idempotency.sweep.skipped.count"], 2);
        assert_eq!(json["idempotency.sweep.abandoned.count"], 3);
        assert_eq!(json["scanned"], 9);
    }

    #[test]
    fn settings_default_and_bounds() {
        let d = options_from(None, None).unwrap();
        assert_eq!((d.max_items, d.lookback_hours), (1000, 73));
        let o = options_from(Some("50"), Some(" 0 ")).unwrap();
        assert_eq!((o.max_items, o.lookback_hours), (50, 0));
        assert_eq!(options_from(Some(""), None).unwrap(), d);
        for (max, lookback, message) in [
            (
                Some("0"),
                None,
                "environment variable SWEEP_MAX_ITEMS must be a whole number from 1 to 500000, not \"0\"",
            ),
            (
                None,
                Some("-1"),
                "environment variable SWEEP_LOOKBACK_HOURS must be a whole number from 0 to 744, not \"-1\"",
            ),
            (
                Some("many"),
                None,
                "environment variable SWEEP_MAX_ITEMS must be a whole number from 1 to 500000, not \"many\"",
            ),
        ] {
            let err = options_from(max, lookback).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(Diagnostic::from(err).error_type, "Sweeper.Setting");
        }
    }
}
