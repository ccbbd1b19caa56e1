//! The generic service: begin / run / complete around one `LambdaEvent<T>`.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::FutureExt;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::Service;
use tracing::Instrument;

use super::error::IdempotencyError;
use super::key::fingerprint_for;
use super::layer::{EventIdempotencyLayer, EventSettings};
use crate::atomic::AtomicWrites;
use crate::clock::Clock;
use crate::engine::{
    ActorHash, Completion, Outcome, Report, begin_waiting, complete, fail, retry_after_secs,
};
use crate::http::MissingKey;
use crate::record::Status;
use crate::scope::{ANONYMOUS_ACTOR, Scope};
use crate::store::{BeginOutcome, BeginRequest};

/// Middleware that makes a `Service<LambdaEvent<T>>` idempotent; built by
/// [`EventIdempotencyLayer`]. See the [module docs](super).
#[derive(Clone)]
pub struct EventIdempotency<S> {
    inner: S,
    layer: EventIdempotencyLayer,
}

impl<S: fmt::Debug> fmt::Debug for EventIdempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventIdempotency")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S> EventIdempotency<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, layer: EventIdempotencyLayer) -> Self {
        Self { inner, layer }
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
        let settings = self.layer.settings.clone();
        Box::pin(async move { handle(&settings, inner, event).await })
    }
}

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
    let started = Instant::now();
    let payload = serde_json::to_value(&event.payload)
        .map_err(|e| IdempotencyError::InvalidPayload(e.to_string()))?;
    let key = match settings.key.key_for(&payload) {
        Ok(key) => key,
        Err(no_key) => {
            return match settings.missing_key {
                MissingKey::PassThrough => {
                    inner.call(event).await.map_err(IdempotencyError::Handler)
                }
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
    // Every line logged from here on (the handler's too) carries the key, the scope
    // name and the actor's hash, never the raw actor.
    let span = tracing::info_span!(
        "idempotency",
        idempotency_key = %key,
        route = %settings.name,
        actor_hash = %ActorHash(&actor),
    );
    async move {
        let key_text = key.as_str().to_owned();
        let now_ms = settings.clock.now_millis();
        let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let mut begin = BeginRequest {
            scope: Scope::new(settings.name.clone(), actor, key),
            fingerprint: fingerprint_for(&payload, settings.payload.as_deref()),
            lease: settings.config.lease_for(now_ms, deadline),
            expiry: settings.config.expiry(),
        };
        drop(payload);
        let actor_text = begin.scope.actor().to_owned();
        let mut report = Report {
            service: &settings.service,
            route: &settings.name,
            metric_route: &settings.name,
            key: &key_text,
            actor: &actor_text,
            started,
            lookup_ms: None,
            record_size: None,
            http_status: None,
        };

        let lease_for = |now: i64| settings.config.lease_for(now, deadline);
        let mut lookup_ms = 0.0;
        let lookup = begin_waiting(
            &*settings.store,
            &mut begin,
            settings.wait_in_flight,
            deadline,
            &*settings.clock,
            &lease_for,
            None,
            &mut lookup_ms,
        )
        .await;
        report.lookup_ms = Some(lookup_ms);
        let lease = match lookup {
            Err(e @ crate::Error::CorruptRecord { .. }) => {
                report.finish(Outcome::StoreError, None);
                return Err(IdempotencyError::StoredResponseUnreadable {
                    key: key_text.clone(),
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                report.finish(Outcome::StoreError, None);
                return Err(IdempotencyError::StoreUnavailable(e));
            }
            Ok(BeginOutcome::Replay(record)) => {
                report.finish(Outcome::Replayed, Some(record.status));
                if let (None, Some(size)) = (&record.response, record.response_omitted) {
                    tracing::warn!(size, "replay of an output that was too large to keep");
                    return Err(IdempotencyError::StoredResponseUnreadable {
                        key: key_text.clone(),
                        reason: format!(
                            "the output ({size} bytes) was too large to keep, even compressed"
                        ),
                    });
                }
                let bytes = record.response.unwrap_or_default();
                return serde_json::from_slice(&bytes).map_err(|e| {
                    IdempotencyError::StoredResponseUnreadable {
                        key: key_text.clone(),
                        reason: e.to_string(),
                    }
                });
            }
            Ok(BeginOutcome::Mismatch(record)) => {
                report.finish(Outcome::Conflict, Some(record.status));
                return Err(IdempotencyError::KeyMismatch {
                    key: key_text.clone(),
                });
            }
            Ok(BeginOutcome::InFlight(record)) => {
                report.finish(Outcome::InFlight, Some(record.status));
                return Err(IdempotencyError::AlreadyInProgress {
                    key: key_text.clone(),
                    retry_after_secs: retry_after_secs(&record, settings.clock.now_millis()),
                });
            }
            Ok(BeginOutcome::Started { lease, .. }) => lease,
        };

        // With a transactional store, the handler's writes wait for the completion.
        let atomic = settings
            .store
            .supports_atomic_writes()
            .then(AtomicWrites::default);
        let current =
            crate::CurrentRequest::new(&lease.partition_key, &key_text, begin.fingerprint.as_str());
        let call = AssertUnwindSafe(current.scope(async {
            match &atomic {
                Some(writes) => writes.clone().scope(inner.call(event)).await,
                None => inner.call(event).await,
            }
        }));
        match call.catch_unwind().await {
            Ok(Ok(output)) => {
                // The handler succeeded, so its record must complete whatever happens: an
                // output that cannot be serialised is kept as an empty response, so a retry
                // is answered StoredResponseUnreadable and never runs the handler again.
                let bytes = serde_json::to_vec(&output).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "the handler's output cannot be serialised; it is completed without a replayable output");
                    Vec::new()
                });
                // Only handler writes make the completion atomic; without any, the handler's
                // effects (if any) happened outside and its answer stands.
                let writes = atomic
                    .as_ref()
                    .map(AtomicWrites::take)
                    .filter(|w| !w.is_empty());
                let committed_with_writes = writes.is_some();
                let completion = complete(
                    &*settings.store,
                    &lease,
                    &bytes,
                    writes,
                    &*settings.clock,
                    deadline,
                )
                .await;
                let record = match completion {
                    Completion::Stored => {
                        report.record_size = Some(bytes.len());
                        Some(Status::Completed)
                    }
                    Completion::LeaseLost => None,
                    Completion::StoreFailed if !committed_with_writes => Some(Status::Pending),
                    Completion::StoreFailed
                    | Completion::WritesRejected
                    | Completion::WritesTooLarge => Some(Status::Errored),
                };
                report.finish(completion.outcome(), record);
                match (completion, committed_with_writes) {
                    (Completion::Stored, _) | (_, false) => Ok(output),
                    // Nothing was committed: the handler's output must not be returned.
                    (Completion::LeaseLost, true) => Err(IdempotencyError::AlreadyInProgress {
                        key: key_text.clone(),
                        retry_after_secs: 1,
                    }),
                    (Completion::StoreFailed, true) => Err(IdempotencyError::NotCommitted {
                        key: key_text.clone(),
                        reason: "the store could not commit the output and the handler's writes"
                            .to_owned(),
                    }),
                    (Completion::WritesTooLarge, true) => Err(IdempotencyError::NotCommitted {
                        key: key_text.clone(),
                        reason: "the handler's writes do not fit in one DynamoDB transaction (at most 99 writes and 4 MB)".to_owned(),
                    }),
                    (Completion::WritesRejected, true) => Err(IdempotencyError::NotCommitted {
                        key: key_text.clone(),
                        reason: "a concurrent change refused the handler's writes".to_owned(),
                    }),
                }
            }
            Ok(Err(e)) => {
                fail(&*settings.store, &lease).await;
                report.finish(Outcome::Errored, Some(Status::Errored));
                Err(IdempotencyError::Handler(e))
            }
            Err(panic) => {
                fail(&*settings.store, &lease).await;
                report.finish(Outcome::Errored, Some(Status::Errored));
                std::panic::resume_unwind(panic)
            }
        }
    }
    .instrument(span)
    .await
}
