//! The request algorithm both layers share, as decisions.
//!
//! An adapter ([`crate::http`], [`crate::event`]) extracts a request's inputs (key,
//! scope, fingerprint, deadline), asks the [`Core`] to [`begin`](Core::begin), and
//! renders the [`Decision`]: run, replay, mismatch, in flight, unavailable, corrupt.
//! To run, it hands the handler's future to [`execute`](Core::execute), which owns
//! everything around it (the atomic-writes scope, the current request, catching a
//! panic, storing the response or marking the record `ERRORED`) and returns what
//! happened ([`Executed`]) for the adapter to render. The rules themselves live in
//! [`crate::record`]; the stores translate them.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{ConfigError, ENV_DISABLED, IdempotencyConfig, disabled_by_env};
use crate::fingerprint::Fingerprint;
use crate::record::{Lease, Record, Status};
use crate::store::{BeginOutcome, BeginRequest, Store};

mod atomic;
mod begin;
mod complete;
mod report;
pub(crate) mod spans;

pub(crate) use complete::Completion;

/// A handler's own writes, committed with the completion (atomic completion).
#[cfg(feature = "dynamodb")]
pub(crate) type HandlerWrites = Vec<aws_sdk_dynamodb::types::TransactWriteItem>;
/// Without DynamoDB no handler writes exist.
#[cfg(not(feature = "dynamodb"))]
pub(crate) type HandlerWrites = std::convert::Infallible;
pub(crate) use report::{ActorHash, Report};

/// What to do with a protected request that has no idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Refuse it: `400` problem+json over HTTP, `IdempotencyError::MissingKey` for
    /// events (default).
    #[default]
    Reject,
    /// Run the handler without idempotency.
    PassThrough,
}

/// The settings both layers share.
pub(crate) struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: IdempotencyConfig,
    pub(crate) clock: SharedClock,
    pub(crate) service: String,
    pub(crate) wait_in_flight: Option<Duration>,
    pub(crate) missing_key: MissingKey,
    /// `IDEMPOTENCY_DISABLED`: every request goes straight to the handler.
    pub(crate) disabled: bool,
}

/// Answers like `std::env::var`.
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The part of both layer builders that builds a [`Core`].
pub(crate) struct CoreBuilder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: IdempotencyConfig,
    pub(crate) clock: SharedClock,
    pub(crate) service: Option<String>,
    pub(crate) wait_in_flight: Option<Duration>,
    pub(crate) missing_key: MissingKey,
    pub(crate) env: EnvLookup,
}

impl CoreBuilder {
    pub(crate) fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
            config: IdempotencyConfig::default(),
            clock: Arc::new(SystemClock),
            service: None,
            wait_in_flight: None,
            missing_key: MissingKey::Reject,
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// The core, switched off when the environment says so (and it may).
    pub(crate) fn build(self) -> Result<Core, ConfigError> {
        let disabled = disabled_by_env(&*self.env)?;
        let service = self.service.unwrap_or_else(crate::metrics::service_name);
        if disabled {
            tracing::warn!(
                service = %service,
                "IDEMPOTENCY IS DISABLED ({ENV_DISABLED}): every request runs its handler, and duplicates are NOT suppressed; never do this in production"
            );
        }
        Ok(Core {
            store: self.store,
            config: self.config,
            clock: self.clock,
            service,
            wait_in_flight: self.wait_in_flight,
            missing_key: self.missing_key,
            disabled,
        })
    }
}

/// The builder methods both layer builders share, defined once: each builder has a
/// `core: CoreBuilder` field.
macro_rules! core_builder_methods {
    () => {
        /// Expiry and lease settings (default
        /// [`IdempotencyConfig::default`](crate::config::IdempotencyConfig::default)).
        pub fn config(mut self, config: crate::config::IdempotencyConfig) -> Self {
            self.core.config = config;
            self
        }

        /// The clock (default: the system clock). Share it with the store in tests.
        pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
            self.core.clock = std::sync::Arc::new(clock);
            self
        }

        /// The `service` label on metrics and logs (default: `AWS_LAMBDA_FUNCTION_NAME`,
        /// else `lambda`).
        pub fn service_name(mut self, service: impl Into<String>) -> Self {
            self.core.service = Some(service.into());
            self
        }

        /// Instead of refusing a duplicate at once while its original is in flight,
        /// wait up to `max` (and never past the invocation's deadline less a second)
        /// for the original to finish, asking the store again with backoff (25 ms
        /// doubling to 500 ms), then answer with its stored result. Off by default:
        /// each ask is one more store call.
        pub fn wait_for_in_flight(mut self, max: std::time::Duration) -> Self {
            self.core.wait_in_flight = Some(max);
            self
        }

        /// What a protected request without a key gets (default
        /// [`MissingKey::Reject`](crate::http::MissingKey::Reject)).
        pub fn missing_key(mut self, missing_key: crate::engine::MissingKey) -> Self {
            self.core.missing_key = missing_key;
            self
        }

        /// Where `build` reads `IDEMPOTENCY_DISABLED` (see
        /// [`disabled_by_env`](crate::config::disabled_by_env)): a function that
        /// answers like `std::env::var` (default: the process environment). For tests
        /// that run the layer switched off without touching the process's
        /// environment.
        pub fn env_lookup(
            mut self,
            lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            self.core.env = std::sync::Arc::new(lookup);
            self
        }
    };
}
pub(crate) use core_builder_methods;

/// One request on its way through the engine.
pub(crate) struct Attempt<'a> {
    pub(crate) begin: BeginRequest,
    /// The invocation's deadline, epoch ms; `0` when unknown.
    pub(crate) deadline_ms: i64,
    pub(crate) report: Report<'a>,
}

/// What the engine decided when the request began.
pub(crate) enum Decision {
    /// The request holds the key: run the handler under this lease.
    Run(Lease),
    /// The same request completed earlier: replay this record.
    Replay(Box<Record>),
    /// A different request used this key.
    Mismatch(Box<Record>),
    /// The same request is running elsewhere; retry after this many seconds.
    InFlight {
        record: Box<Record>,
        retry_after_secs: u64,
    },
    /// The store could not be reached; the handler did not run.
    Unavailable(crate::Error),
    /// The key's record cannot be read by this version; the handler did not run.
    Corrupt(crate::Error),
}

impl Decision {
    /// The decision's name, for the `idempotency.begin` span.
    fn name(&self) -> &'static str {
        match self {
            Self::Run(_) => "run",
            Self::Replay(_) => "replay",
            Self::Mismatch(_) => "mismatch",
            Self::InFlight { .. } => "in_flight",
            Self::Unavailable(_) => "unavailable",
            Self::Corrupt(_) => "corrupt",
        }
    }

    /// The status of the record that decided it, if one did.
    fn record_status(&self) -> Option<Status> {
        match self {
            Self::Run(_) => Some(Status::Pending),
            Self::Replay(r) | Self::Mismatch(r) | Self::InFlight { record: r, .. } => {
                Some(r.status)
            }
            Self::Unavailable(_) | Self::Corrupt(_) => None,
        }
    }
}

/// Whether a handler's result is kept.
pub(crate) enum Verdict {
    /// Final: store these bytes and replay them to every retry.
    Store(Vec<u8>),
    /// Retryable: mark the record `ERRORED` so a retry runs again.
    Retry,
}

/// What running the handler came to.
pub(crate) enum Executed<T, E> {
    /// The handler succeeded with a final result; `completion` says whether it (and
    /// the handler's writes, when `atomic`) was stored.
    Done {
        output: T,
        completion: Completion,
        atomic: bool,
    },
    /// The handler succeeded with a retryable result; the record is `ERRORED`.
    Retryable(T),
    /// The handler failed; the record is `ERRORED`.
    Failed(E),
    /// The handler panicked; the record is `ERRORED`. Re-raise it.
    Panicked(Box<dyn Any + Send>),
}

impl Core {
    /// A request scoped and fingerprinted by its adapter, with its lease from the
    /// deadline and its expiry.
    pub(crate) fn attempt<'a>(
        &self,
        scope: crate::scope::Scope,
        fingerprint: Fingerprint,
        expiry: Duration,
        deadline_ms: i64,
        report: Report<'a>,
    ) -> Attempt<'a> {
        let lease = self.config.lease_for(self.clock.now_millis(), deadline_ms);
        Attempt {
            begin: BeginRequest {
                scope,
                fingerprint,
                lease,
                expiry,
            },
            deadline_ms,
            report,
        }
    }

    /// Begins `attempt` (waiting for an in-flight original when configured), and
    /// decides. `legacy` computes the request's fingerprint in an earlier version, to
    /// recognise records an earlier release wrote.
    pub(crate) async fn begin(
        &self,
        attempt: &mut Attempt<'_>,
        legacy: Option<&(dyn Fn() -> Fingerprint + Sync)>,
    ) -> Decision {
        let deadline = attempt.deadline_ms;
        let lease_for = |now: i64| self.config.lease_for(now, deadline);
        let mut lookup_ms = 0.0;
        let span = spans::begin();
        let timer = spans::Timer::start(&span);
        let outcome = begin::begin_waiting(
            &*self.store,
            &mut attempt.begin,
            self.wait_in_flight,
            deadline,
            &*self.clock,
            &lease_for,
            legacy,
            &mut lookup_ms,
        )
        .instrument(span.clone())
        .await;
        attempt.report.lookup_ms = Some(lookup_ms);
        let decision = Self::decide(outcome, &*self.clock);
        span.record("decision", decision.name());
        if let Some(status) = decision.record_status() {
            span.record("record_status", status.as_str());
        }
        timer.record(&span);
        decision
    }

    fn decide(outcome: crate::Result<BeginOutcome>, clock: &dyn crate::clock::Clock) -> Decision {
        match outcome {
            Ok(BeginOutcome::Started { lease, .. }) => Decision::Run(lease),
            Ok(BeginOutcome::Replay(record)) => Decision::Replay(record),
            Ok(BeginOutcome::Mismatch(record)) => Decision::Mismatch(record),
            Ok(BeginOutcome::InFlight(record)) => Decision::InFlight {
                retry_after_secs: begin::retry_after_secs(&record, clock.now_millis()),
                record,
            },
            // A record this version cannot read blocks its key: retrying will not help.
            Err(e @ crate::Error::CorruptRecord { .. }) => {
                tracing::error!(error = %e, "the key's record cannot be read; the handler did not run");
                Decision::Corrupt(e)
            }
            Err(e) => {
                tracing::error!(error = %e, "idempotency store unavailable before the handler");
                Decision::Unavailable(e)
            }
        }
    }

    /// Runs `handler` under `lease`: inside the atomic-writes scope when the store
    /// commits atomically, with [`CurrentRequest`](crate::CurrentRequest) set, a panic
    /// caught. `judge` decides whether a successful result is kept; a kept one is
    /// stored (with the handler's writes, in one transaction), anything else marks the
    /// record `ERRORED`.
    pub(crate) async fn execute<T, E>(
        &self,
        attempt: &mut Attempt<'_>,
        lease: &Lease,
        handler: impl Future<Output = Result<T, E>>,
        judge: impl FnOnce(&T) -> Verdict,
    ) -> Executed<T, E> {
        // With a transactional store, the handler's writes wait for the completion.
        let atomic = atomic::Scope::for_store(&*self.store);
        let current = crate::CurrentRequest::new(
            &lease.partition_key,
            attempt.begin.scope.key().as_str(),
            attempt.begin.fingerprint.as_str(),
        )
        .with_deadline(attempt.deadline_ms);
        let call = AssertUnwindSafe(current.scope(atomic.run(handler)));
        let span = spans::handler();
        let timer = spans::Timer::start(&span);
        let result = call.catch_unwind().instrument(span.clone()).await;
        timer.record(&span);
        let output = match result {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => {
                span.record("result", "error");
                complete::fail(&*self.store, lease).await;
                return Executed::Failed(e);
            }
            Err(panic) => {
                span.record("result", "panic");
                complete::fail(&*self.store, lease).await;
                return Executed::Panicked(panic);
            }
        };
        let bytes = match judge(&output) {
            Verdict::Retry => {
                span.record("result", "retryable");
                complete::fail(&*self.store, lease).await;
                return Executed::Retryable(output);
            }
            Verdict::Store(bytes) => {
                span.record("result", "ok");
                bytes
            }
        };
        // Only handler writes make the completion atomic; without any, the handler's
        // effects (if any) happened outside and its answer stands.
        let writes = atomic.take();
        let committed_with_writes = writes.is_some();
        let span = spans::complete(committed_with_writes, bytes.len());
        let timer = spans::Timer::start(&span);
        let completion = complete::complete(
            &*self.store,
            lease,
            &bytes,
            writes,
            &*self.clock,
            attempt.deadline_ms,
        )
        .instrument(span.clone())
        .await;
        span.record("completion", completion.name());
        timer.record(&span);
        if completion == Completion::Stored {
            attempt.report.record_size = Some(bytes.len());
        }
        Executed::Done {
            output,
            completion,
            atomic: committed_with_writes,
        }
    }
}

impl Completion {
    /// The record's status after this completion (`None` when the lease was lost and
    /// the record is another holder's).
    pub(crate) fn record_status(self, atomic: bool) -> Option<Status> {
        match self {
            Self::Stored => Some(Status::Completed),
            Self::LeaseLost => None,
            // Non-atomic: the record stays PENDING until its lease lapses.
            Self::StoreFailed if !atomic => Some(Status::Pending),
            Self::StoreFailed | Self::WritesRejected | Self::WritesTooLarge => {
                Some(Status::Errored)
            }
        }
    }
}
