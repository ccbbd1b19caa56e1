//! Running a batch's records: grouped so that order and duplicates are respected,
//! each record through the event engine, failures collected.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::source::{BatchSource, Order};
use crate::event::service::run_idempotent;
use crate::event::settings::EventSettings;

/// A record handler's output as the engine stores it: the output itself, stored as
/// the handler's own JSON; and what a replay gives back, without reading the stored
/// output (a batch does not return it, so an output that cannot be read back, its
/// type changed or too large to keep, must not fail a record that completed).
enum Output<O> {
    Ran(O),
    Replayed,
}

impl<O: Serialize> Serialize for Output<O> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Ran(output) => output.serialize(serializer),
            Self::Replayed => serializer.serialize_unit(),
        }
    }
}

impl<'de, O> serde::Deserialize<'de> for Output<O> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Self::Replayed)
    }
}

/// One record, ready to run: its place in the batch, its JSON view, itself.
struct Item<R> {
    index: usize,
    id: String,
    view: Value,
    record: R,
}

/// Runs `records` in `order` and returns the item identifiers of those that failed
/// (or were not run because of an earlier failure), in batch order.
pub(super) async fn process<S, F, Fut, O, E>(
    settings: &EventSettings,
    concurrency: NonZeroUsize,
    order: Order,
    deadline_ms: i64,
    records: Vec<S::Record>,
    handler: &F,
) -> Vec<String>
where
    S: BatchSource,
    F: Fn(S::Record) -> Fut + Sync,
    Fut: Future<Output = Result<O, E>> + Send,
    O: Serialize,
    E: fmt::Display,
{
    let items = records.into_iter().enumerate().map(|(index, record)| Item {
        index,
        id: S::item_identifier(&record),
        // A record that cannot be seen as JSON has no key: it fails as such.
        view: serde_json::to_value(&record).unwrap_or(Value::Null),
        record,
    });
    if order == Order::Checkpoint {
        for item in items {
            if let Err(why) = run_one(settings, deadline_ms, item.view, item.record, handler).await
            {
                tracing::warn!(item_identifier = %item.id, error = %why, "batch record failed: a checkpoint; it and every record after it will be delivered again");
                return vec![item.id];
            }
        }
        return Vec::new();
    }
    let groups = match order {
        Order::PerGroup => grouped(items, |item| S::group(&item.record).map(str::to_owned)),
        _ => grouped(items, |item| {
            settings
                .key
                .key_for(&item.view)
                .ok()
                .map(|k| k.as_str().to_owned())
        }),
    };
    let stop_at_failure = order == Order::PerGroup;
    let mut failed: Vec<(usize, String)> = futures::stream::iter(groups)
        .map(|group| run_group(settings, deadline_ms, group, stop_at_failure, handler))
        .buffer_unordered(concurrency.get())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    failed.sort_by_key(|(index, _)| *index);
    failed.into_iter().map(|(_, id)| id).collect()
}

/// The items in groups by `group_of` (in order of first appearance, each group in
/// batch order); an item without a group is a group of its own.
fn grouped<R>(
    items: impl Iterator<Item = Item<R>>,
    group_of: impl Fn(&Item<R>) -> Option<String>,
) -> Vec<Vec<Item<R>>> {
    let mut groups: Vec<Vec<Item<R>>> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for item in items {
        match group_of(&item) {
            Some(name) => match by_name.get(&name) {
                Some(&i) => groups[i].push(item),
                None => {
                    by_name.insert(name, groups.len());
                    groups.push(vec![item]);
                }
            },
            None => groups.push(vec![item]),
        }
    }
    groups
}

/// Runs one group's items one after the other; with `stop_at_failure` (a FIFO
/// message group), the items after a failure are reported without running.
async fn run_group<R, F, Fut, O, E>(
    settings: &EventSettings,
    deadline_ms: i64,
    group: Vec<Item<R>>,
    stop_at_failure: bool,
    handler: &F,
) -> Vec<(usize, String)>
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Serialize,
    E: fmt::Display,
{
    let mut failed = Vec::new();
    for item in group {
        if stop_at_failure && !failed.is_empty() {
            tracing::warn!(item_identifier = %item.id, "batch record not run: an earlier message of its FIFO group failed; it will be delivered again");
            failed.push((item.index, item.id));
            continue;
        }
        if let Err(why) = run_one(settings, deadline_ms, item.view, item.record, handler).await {
            tracing::warn!(item_identifier = %item.id, error = %why, "batch record failed; it will be delivered again");
            failed.push((item.index, item.id));
        }
    }
    failed
}

/// One record through the engine; a panic in the handler is a failure of this
/// record, not of the batch (its record is `ERRORED`, so a redelivery runs again).
async fn run_one<R, F, Fut, O, E>(
    settings: &EventSettings,
    deadline_ms: i64,
    view: Value,
    record: R,
    handler: &F,
) -> Result<(), String>
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Serialize,
    E: fmt::Display,
{
    let started = Instant::now();
    let work = || async move { handler(record).await.map(Output::Ran) };
    let run = run_idempotent(
        settings,
        view,
        deadline_ms,
        started,
        work,
        Some(|| Output::Replayed),
    );
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            tracing::error!(panic = %message, "the record handler panicked");
            Err(format!("the handler panicked: {message}"))
        }
    }
}
