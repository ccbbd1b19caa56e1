//! The service: one event through the engine, as an event adapter.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::Service;
use tracing::Instrument;

use super::error::IdempotencyError;
use super::key::fingerprint_for;
use super::settings::EventSettings;
use crate::engine::{ActorHash, Completion, Decision, Executed, MissingKey, Report, Verdict};
use crate::fingerprint::Fingerprint;
use crate::outcome::Outcome;
use crate::record::{Record, Status};
use crate::scope::{ANONYMOUS_ACTOR, Scope};

/// Middleware that makes a `Service<LambdaEvent<T>>` idempotent; built by
/// [`EventIdempotencyLayer`](super::EventIdempotencyLayer). See the [module
/// docs](super).
#[derive(Clone)]
pub struct EventIdempotency<S> {
    inner: S,
    settings: Arc<EventSettings>,
}

impl<S: fmt::Debug> fmt::Debug for EventIdempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventIdempotency")
            .field("inner", &self.inner)
            .field("name", &self.settings.name)
            .finish_non_exhaustive()
    }
}

impl<S> EventIdempotency<S> {
    pub(crate) fn with_settings(inner: S, settings: Arc<EventSettings>) -> Self {
        Self { inner, settings }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T, O> Service<LambdaEvent<T>> for EventIdempotency<S>
where
    S: Service<LambdaEvent<T>, Response = O> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    T: Serialize + Send + 'static,
    O: Serialize + DeserializeOwned + Send + 'static,
{
    type Response = O;
    type Error = IdempotencyError<S::Error>;
    type Future = futures::future::BoxFuture<'static, Result<O, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(IdempotencyError::Handler)
    }

    fn call(&mut self, event: LambdaEvent<T>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        Box::pin(async move { handle(&settings, inner, event).await })
    }
}

/// The event as JSON, then through [`run_idempotent`].
async fn handle<S, T, O>(
    settings: &EventSettings,
    mut inner: S,
    event: LambdaEvent<T>,
) -> Result<O, IdempotencyError<S::Error>>
where
    S: Service<LambdaEvent<T>, Response = O>,
    T: Serialize,
    O: Serialize + DeserializeOwned,
{
    if settings.core.disabled {
        return inner.call(event).await.map_err(IdempotencyError::Handler);
    }
    let started = Instant::now();
    let payload = serde_json::to_value(&event.payload)
        .map_err(|e| IdempotencyError::InvalidPayload(e.to_string()))?;
    let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
    let work = move || inner.call(event);
    run_idempotent(settings, payload, deadline, started, work, None).await
}

/// One payload through the engine: draws the key, actor and fingerprint from
/// `payload` (as JSON), then begins the scoped request inside a span that names its
/// key, scope and actor hash (never the raw actor), and calls `work` at most once.
/// What the event layer, idempotent functions and batches share. `deadline_ms` is
/// the invocation's deadline (epoch ms, `0` when unknown). `replay_as`, for a caller
/// that does not use a replayed output (a batch), answers every replay without
/// reading the stored output, so an output that cannot be read back (its type
/// changed, or it was too large to keep) never fails a request that completed.
pub(crate) async fn run_idempotent<O, E, F, Fut>(
    settings: &EventSettings,
    payload: serde_json::Value,
    deadline_ms: i64,
    started: Instant,
    work: F,
    replay_as: Option<fn() -> O>,
) -> Result<O, IdempotencyError<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Serialize + DeserializeOwned,
{
    if settings.core.disabled {
        return work().await.map_err(IdempotencyError::Handler);
    }
    let key = match settings.key.key_for(&payload) {
        Ok(key) => key,
        Err(no_key) => {
            return match settings.core.missing_key {
                MissingKey::PassThrough => work().await.map_err(IdempotencyError::Handler),
                MissingKey::Reject => {
                    tracing::warn!(route = %settings.name, outcome = Outcome::Rejected.as_str(), detail = %no_key.0, "event has no idempotency key");
                    Err(IdempotencyError::MissingKey { detail: no_key.0 })
                }
            };
        }
    };
    let actor = settings
        .actor
        .as_ref()
        .and_then(|f| f(&payload))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| ANONYMOUS_ACTOR.to_owned());
    let fingerprint = fingerprint_for(&payload, settings.payload.as_deref());
    drop(payload);
    let span = crate::engine::spans::request(key.as_str(), &settings.name, &ActorHash(&actor));
    let scope = Scope::new(settings.name.clone(), actor, key);
    run(
        settings,
        work,
        replay_as,
        deadline_ms,
        scope,
        fingerprint,
        started,
    )
    .instrument(span)
    .await
}

/// Begins the scoped event, answers the engine's decision, or runs the handler and
/// answers with its output.
async fn run<O, E, Fut>(
    settings: &EventSettings,
    work: impl FnOnce() -> Fut,
    replay_as: Option<fn() -> O>,
    deadline: i64,
    scope: Scope,
    fingerprint: Fingerprint,
    started: Instant,
) -> Result<O, IdempotencyError<E>>
where
    Fut: Future<Output = Result<O, E>>,
    O: Serialize + DeserializeOwned,
{
    let (key, actor) = (scope.key().as_str().to_owned(), scope.actor().to_owned());
    let name = &settings.name;
    let report = Report::new(&settings.core.service, name, name, &key, &actor, started);
    let core = &settings.core;
    let expiry = core.config.expiry();
    let mut attempt = core.attempt(scope, fingerprint, expiry, deadline, report);
    let lease = match core.begin(&mut attempt, None).await {
        Decision::Run(lease) => lease,
        decision => return decided(settings, &mut attempt.report, decision, replay_as),
    };

    // The handler succeeded, so its record must complete whatever happens: an output
    // that cannot be serialised is kept as an empty response, so a retry is answered
    // StoredResponseUnreadable and never runs the handler again.
    let judge = |output: &O| {
        Verdict::Store(serde_json::to_vec(output).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the handler's output cannot be serialised; it is completed without a replayable output");
            Vec::new()
        }))
    };
    // Only now is the handler called (calling it may already act: a service's `call`
    // can do work before its future is polled), and inside the engine's panic guard,
    // so a handler that panics before its future starts still marks the record.
    let executed = core
        .execute(&mut attempt, &lease, async move { work().await }, judge)
        .await;
    let report = &attempt.report;
    match executed {
        Executed::Done {
            output,
            completion,
            atomic,
        } => {
            report.finish(completion.outcome(), completion.record_status(atomic));
            completed(key, output, completion, atomic)
        }
        Executed::Retryable(output) => {
            report.finish(Outcome::Errored, Some(Status::Errored));
            Ok(output)
        }
        Executed::Failed(e) => {
            report.finish(Outcome::Errored, Some(Status::Errored));
            Err(IdempotencyError::Handler(e))
        }
        Executed::Panicked(panic) => {
            report.finish(Outcome::Errored, Some(Status::Errored));
            std::panic::resume_unwind(panic)
        }
    }
}

/// The error or replayed output for an event the engine decided not to run.
fn decided<O, E>(
    settings: &EventSettings,
    report: &mut Report<'_>,
    decision: Decision,
    replay_as: Option<fn() -> O>,
) -> Result<O, IdempotencyError<E>>
where
    O: DeserializeOwned,
{
    let key = report.key.to_owned();
    match decision {
        Decision::Run(_) => unreachable!("an event that runs is answered by its handler"),
        Decision::Corrupt(e) => {
            report.finish(Outcome::StoreError, None);
            Err(IdempotencyError::StoredResponseUnreadable {
                key,
                reason: e.to_string(),
            })
        }
        Decision::Unavailable(e) => {
            report.finish(Outcome::StoreError, None);
            Err(IdempotencyError::StoreUnavailable(e))
        }
        Decision::Replay(record) => {
            report.finish(Outcome::Replayed, Some(record.status));
            let span = crate::engine::spans::replay(&record, &*settings.core.clock);
            let timer = crate::engine::spans::Timer::start(&span);
            let replayed = span.in_scope(|| replay(settings, &record, key, replay_as));
            timer.record(&span);
            replayed
        }
        Decision::Mismatch(record) => {
            report.finish(Outcome::Conflict, Some(record.status));
            Err(IdempotencyError::KeyMismatch { key })
        }
        Decision::InFlight {
            record,
            retry_after_secs,
        } => {
            report.finish(Outcome::InFlight, Some(record.status));
            Err(IdempotencyError::AlreadyInProgress {
                key,
                retry_after_secs,
            })
        }
    }
}

/// The stored output (through the replay hook, if any), or why it cannot be
/// replayed.
fn replay<O: DeserializeOwned, E>(
    settings: &EventSettings,
    record: &Record,
    key: String,
    replay_as: Option<fn() -> O>,
) -> Result<O, IdempotencyError<E>> {
    if let Some(replayed) = replay_as {
        if let (Some(hook), Some(bytes)) = (&settings.on_replay, record.response.as_deref())
            && let Ok(mut output) = serde_json::from_slice(bytes)
        {
            hook(&mut output, record);
        }
        return Ok(replayed());
    }
    if let (None, Some(size)) = (&record.response, record.response_omitted) {
        tracing::warn!(size, "replay of an output that was too large to keep");
        return Err(IdempotencyError::StoredResponseUnreadable {
            key,
            reason: format!("the output ({size} bytes) was too large to keep, even compressed"),
        });
    }
    let bytes = record.response.as_deref().unwrap_or_default();
    let unreadable = |e: serde_json::Error| IdempotencyError::StoredResponseUnreadable {
        key: key.clone(),
        reason: e.to_string(),
    };
    match &settings.on_replay {
        None => serde_json::from_slice(bytes).map_err(unreadable),
        Some(hook) => {
            let mut output: serde_json::Value =
                serde_json::from_slice(bytes).map_err(unreadable)?;
            hook(&mut output, record);
            serde_json::from_value(output).map_err(unreadable)
        }
    }
}

/// The handler's output, unless it was atomic and nothing was committed: then it
/// must not be returned.
fn completed<O, E>(
    key: String,
    output: O,
    completion: Completion,
    atomic: bool,
) -> Result<O, IdempotencyError<E>> {
    match (completion, atomic) {
        (Completion::Stored, _) | (_, false) => Ok(output),
        (Completion::LeaseLost, true) => Err(IdempotencyError::AlreadyInProgress {
            key,
            retry_after_secs: 1,
        }),
        (Completion::StoreFailed, true) => Err(IdempotencyError::NotCommitted {
            key,
            reason: "the store could not commit the output and the handler's writes".to_owned(),
        }),
        (Completion::WritesTooLarge, true) => Err(IdempotencyError::NotCommitted {
            key,
            reason: "the handler's writes do not fit in one DynamoDB transaction (at most 99 writes and 4 MB)".to_owned(),
        }),
        (Completion::WritesRejected, true) => Err(IdempotencyError::NotCommitted {
            key,
            reason: "a concurrent change refused the handler's writes".to_owned(),
        }),
    }
}
