//! A `metrics` recorder that writes CloudWatch Embedded Metric Format (EMF) lines.
//!
//! Why our own exporter: the layers flush at the end of every idempotent request, so
//! each request's figures reach the log right away, one JSON document per set of
//! labels; the state is swapped out under a mutex, so concurrent invocations in one
//! process (Lambda's concurrent runtime, tests) never lose or double a count and
//! nothing here can panic; and the dimension sets are configurable per exporter.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use serde_json::{Map, Value, json};

use crate::clock::{Clock, SystemClock};

/// EMF allows at most 100 values per metric in one document.
const MAX_VALUES: usize = 100;

/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "Idempotency";
/// Environment variable overriding the namespace.
pub const ENV_NAMESPACE: &str = "IDEMPOTENCY_METRICS_NAMESPACE";

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Group {
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Vec<f64>>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<Labels, Group>,
    units: BTreeMap<String, Unit>,
}

struct Shared {
    state: Mutex<State>,
    namespace: String,
    dimensions: Vec<Vec<String>>,
    writer: Mutex<Box<dyn Write + Send>>,
    clock: Box<dyn Clock>,
}

/// Writes metrics recorded through the `metrics` facade as EMF JSON lines.
///
/// ```
/// use lambda_idempotency::metrics::EmfRecorder;
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let recorder = EmfRecorder::builder().namespace("Shop").writer(SharedBuf(out.clone())).build();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("idempotency.replay.count", "service" => "orders", "route" => "POST /orders").increment(1);
/// });
/// recorder.flush();
/// let line = String::from_utf8(out.lock().unwrap().clone()).unwrap();
/// let doc: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
/// assert_eq!(doc["idempotency.replay.count"], 1);
/// assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Shop");
///
/// # struct SharedBuf(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for SharedBuf {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// ```
#[derive(Clone)]
pub struct EmfRecorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmfRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfRecorder")
            .field("namespace", &self.shared.namespace)
            .field("dimensions", &self.shared.dimensions)
            .finish_non_exhaustive()
    }
}

/// Builds an [`EmfRecorder`].
#[must_use]
pub struct EmfRecorderBuilder {
    namespace: String,
    dimensions: Vec<Vec<String>>,
    writer: Box<dyn Write + Send>,
    clock: Box<dyn Clock>,
}

impl EmfRecorder {
    /// Namespace `Idempotency` (or `IDEMPOTENCY_METRICS_NAMESPACE`), the dimension
    /// sets `[service, route]` (per route, bounded by the route templates) and
    /// `[service]` (the function's totals, readable without a search expression),
    /// written to standard output.
    pub fn builder() -> EmfRecorderBuilder {
        EmfRecorderBuilder {
            namespace: std::env::var(ENV_NAMESPACE)
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            dimensions: vec![
                vec!["service".to_owned(), "route".to_owned()],
                vec!["service".to_owned()],
            ],
            writer: Box::new(std::io::stdout()),
            clock: Box::new(SystemClock),
        }
    }

    /// Writes every metric recorded since the last flush, one EMF document per label
    /// set, and starts over.
    pub fn flush(&self) {
        let groups = std::mem::take(&mut lock(&self.shared.state).groups);
        if groups.is_empty() {
            return;
        }
        let units = lock(&self.shared.state).units.clone();
        let timestamp = self.shared.clock.now_millis();
        let mut out = String::new();
        for (labels, group) in groups {
            for doc in self.documents(timestamp, &labels, &group, &units) {
                out.push_str(&doc.to_string());
                out.push('\n');
            }
        }
        let mut writer = lock(&self.shared.writer);
        // A log line that cannot be written is lost; metrics must never fail a request.
        let _ = writer.write_all(out.as_bytes());
        let _ = writer.flush();
    }

    fn documents(
        &self,
        timestamp: i64,
        labels: &Labels,
        group: &Group,
        units: &BTreeMap<String, Unit>,
    ) -> Vec<Value> {
        let present: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        let dimensions: Vec<&Vec<String>> = self
            .shared
            .dimensions
            .iter()
            .filter(|set| set.iter().all(|d| present.contains(&d.as_str())))
            .collect();
        let unit_of = |name: &str| units.get(name).copied().map_or("None", emf_unit);

        // Histograms with more than 100 values spill into further documents.
        let mut chunks = 1;
        for values in group.histograms.values() {
            chunks = chunks.max(values.len().div_ceil(MAX_VALUES));
        }
        (0..chunks)
            .map(|chunk| {
                let mut doc = Map::new();
                let mut definitions = Vec::new();
                for (k, v) in labels {
                    doc.insert(k.clone(), Value::String(v.clone()));
                }
                if chunk == 0 {
                    for (name, value) in &group.counters {
                        definitions.push(json!({"Name": name, "Unit": unit_of(name)}));
                        doc.insert(name.clone(), json!(value));
                    }
                    for (name, value) in &group.gauges {
                        definitions.push(json!({"Name": name, "Unit": unit_of(name)}));
                        doc.insert(name.clone(), json!(value));
                    }
                }
                for (name, values) in &group.histograms {
                    let part: Vec<f64> = values.iter().copied().skip(chunk * MAX_VALUES).take(MAX_VALUES).collect();
                    if part.is_empty() {
                        continue;
                    }
                    definitions.push(json!({"Name": name, "Unit": unit_of(name)}));
                    let value = if part.len() == 1 { json!(part[0]) } else { json!(part) };
                    doc.insert(name.clone(), value);
                }
                doc.insert(
                    "_aws".to_owned(),
                    json!({
                        "Timestamp": timestamp,
                        "CloudWatchMetrics": [{
                            "Namespace": self.shared.namespace,
                            "Dimensions": if dimensions.is_empty() { json!([[]]) } else { json!(dimensions) },
                            "Metrics": definitions,
                        }],
                    }),
                );
                Value::Object(doc)
            })
            .collect()
    }

    fn handle(&self, key: &Key) -> Arc<Handle> {
        let labels: Labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        Arc::new(Handle {
            shared: Arc::clone(&self.shared),
            name: key.name().to_owned(),
            labels,
        })
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            lock(&self.shared.state)
                .units
                .insert(key.as_str().to_owned(), unit);
        }
    }
}

impl EmfRecorderBuilder {
    /// The CloudWatch namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The dimension sets; a set is used for a document only when all its labels
    /// are present. Other labels become plain properties.
    pub fn dimensions<I, S, D>(mut self, sets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: IntoIterator<Item = D>,
        D: Into<String>,
    {
        self.dimensions = sets
            .into_iter()
            .map(|s| s.into_iter().map(Into::into).collect())
            .collect();
        self
    }

    /// Where the lines go (default standard output, which Lambda sends to CloudWatch Logs).
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.writer = Box::new(writer);
        self
    }

    /// The clock for timestamps.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Builds the recorder, with the units of this crate's metrics already described.
    pub fn build(self) -> EmfRecorder {
        let mut state = State::default();
        for (name, unit) in super::UNITS {
            state.units.insert((*name).to_owned(), *unit);
        }
        EmfRecorder {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                namespace: self.namespace,
                dimensions: self.dimensions,
                writer: Mutex::new(self.writer),
                clock: self.clock,
            }),
        }
    }
}

struct Handle {
    shared: Arc<Shared>,
    name: String,
    labels: Labels,
}

impl Handle {
    fn with_group(&self, f: impl FnOnce(&mut Group)) {
        let mut state = lock(&self.shared.state);
        f(state.groups.entry(self.labels.clone()).or_default());
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.with_group(|g| {
            let c = g.counters.entry(self.name.clone()).or_default();
            *c = c.saturating_add(value);
        });
    }

    fn absolute(&self, value: u64) {
        self.with_group(|g| {
            let c = g.counters.entry(self.name.clone()).or_default();
            *c = (*c).max(value);
        });
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.with_group(|g| *g.gauges.entry(self.name.clone()).or_default() += value);
    }

    fn decrement(&self, value: f64) {
        self.with_group(|g| *g.gauges.entry(self.name.clone()).or_default() -= value);
    }

    fn set(&self, value: f64) {
        self.with_group(|g| {
            g.gauges.insert(self.name.clone(), value);
        });
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.with_group(|g| {
            g.histograms
                .entry(self.name.clone())
                .or_default()
                .push(value)
        });
    }
}

impl Recorder for EmfRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

static INSTALLED: OnceLock<EmfRecorder> = OnceLock::new();

/// Installs `recorder` as the process's `metrics` recorder; the idempotency layers
/// then flush it at the end of every request. Call once, in `main`.
///
/// Fails if a recorder is already installed.
pub fn install(recorder: EmfRecorder) -> Result<(), crate::BoxError> {
    metrics::set_global_recorder(recorder.clone())
        .map_err(|_| "a metrics recorder is already installed")?;
    let _ = INSTALLED.set(recorder);
    Ok(())
}

/// Flushes the installed EMF recorder, if any (a no-op otherwise).
pub fn flush_installed() {
    if let Some(recorder) = INSTALLED.get() {
        recorder.flush();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state whole; a poisoned lock is still sound.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn emf_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "Count",
        Unit::Percent => "Percent",
        Unit::Seconds => "Seconds",
        Unit::Milliseconds => "Milliseconds",
        Unit::Microseconds => "Microseconds",
        Unit::Nanoseconds => "None",
        Unit::Tebibytes => "Terabytes",
        Unit::Gibibytes => "Gigabytes",
        Unit::Mebibytes => "Megabytes",
        Unit::Kibibytes => "Kilobytes",
        Unit::Bytes => "Bytes",
        Unit::TerabitsPerSecond => "Terabits/Second",
        Unit::GigabitsPerSecond => "Gigabits/Second",
        Unit::MegabitsPerSecond => "Megabits/Second",
        Unit::KilobitsPerSecond => "Kilobits/Second",
        Unit::BitsPerSecond => "Bits/Second",
        Unit::CountPerSecond => "Count/Second",
    }
}
