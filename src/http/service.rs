//! The service: one request through the engine, as an HTTP adapter.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use lambda_http::http::{Response, StatusCode};
use lambda_http::{Body, IntoResponse, Request};
use tower::Service;
use tracing::Instrument;

use super::actor::{Actor, actor_of};
use super::answer::{
    advertise_expiry, completed, decided, refuse_body, refuse_unidentified, reject,
};
use super::problem::ProblemKind;
use super::request::{
    KeyHeader, checked_fingerprint_of, deadline_of, key_header, legacy_fingerprint_of,
};
use super::settings::Settings;
use super::stored::StoredResponse;
use crate::engine::{ActorHash, Decision, Executed, MissingKey, Report, Verdict};
use crate::fingerprint::Fingerprint;
use crate::key::IdempotencyKey;
use crate::outcome::Outcome;
use crate::record::Status;
use crate::scope::Scope;

/// Middleware that makes a `lambda_http` service idempotent; built by
/// [`IdempotencyLayer`](super::IdempotencyLayer). See the [module docs](super).
#[derive(Clone)]
pub struct Idempotency<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Idempotency<S> {
    pub(crate) fn with_settings(inner: S, settings: Arc<Settings>) -> Self {
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

impl<S, R> Service<Request> for Idempotency<S>
where
    S: Service<Request, Response = R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: IntoResponse + Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = lambda_http::BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        Box::pin(async move { handle(&settings, inner, request).await })
    }
}

/// Extracts the request's inputs, refusing what cannot be scoped or fingerprinted
/// before the store is touched, then runs it inside a span that names its key,
/// route and actor hash (never the raw actor).
async fn handle<S, R>(
    settings: &Settings,
    mut inner: S,
    request: Request,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request, Response = R>,
    R: IntoResponse,
{
    if settings.core.disabled {
        return Ok(inner.call(request).await?.into_response().await);
    }
    let started = Instant::now();
    let route = settings.route_of(&request);
    if !settings.protects(request.method(), &route.scope) {
        return Ok(inner.call(request).await?.into_response().await);
    }
    let key = match key_header(request.headers()) {
        KeyHeader::One(bytes) => match IdempotencyKey::parse_header(bytes) {
            Ok(key) => key,
            Err(e) => {
                return Ok(reject(
                    &route.scope,
                    ProblemKind::MalformedKey,
                    &e.to_string(),
                    None,
                ));
            }
        },
        KeyHeader::Repeated => {
            let detail = "Send exactly one Idempotency-Key header.";
            return Ok(reject(
                &route.scope,
                ProblemKind::MalformedKey,
                detail,
                None,
            ));
        }
        KeyHeader::Missing => match settings.core.missing_key {
            MissingKey::PassThrough => return Ok(inner.call(request).await?.into_response().await),
            MissingKey::Reject => {
                let detail = "This route requires an Idempotency-Key header (a UUID or a slug of letters, digits, '-' and '_', at most 255 characters).";
                return Ok(reject(&route.scope, ProblemKind::MissingKey, detail, None));
            }
        },
    };
    // Refused bodies never reach the store: no record, no handler.
    let fingerprint = match checked_fingerprint_of(&request, settings.max_body_bytes) {
        Ok(fingerprint) => fingerprint,
        Err(refusal) => return Ok(refuse_body(&route.scope, key.as_str(), &refusal)),
    };
    let actor = match actor_of(&*settings.actor, settings.unidentified, &request) {
        Actor::Known(actor) => actor,
        Actor::Unidentified(how) => {
            return Ok(refuse_unidentified(&route.scope, key.as_str(), how));
        }
    };
    let span = crate::engine::spans::request(key.as_str(), &route.scope, &ActorHash(&actor));
    let scope = Scope::new(route.scope.clone(), actor, key);
    run(
        settings,
        inner,
        request,
        scope,
        fingerprint,
        route.label(),
        started,
    )
    .instrument(span)
    .await
}

/// Begins the scoped request, answers the engine's decision, or runs the handler and
/// answers with its result.
async fn run<S, R>(
    settings: &Settings,
    mut inner: S,
    request: Request,
    scope: Scope,
    fingerprint: Fingerprint,
    metric_route: &str,
    started: Instant,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request, Response = R>,
    R: IntoResponse,
{
    let (route, key, actor) = (
        scope.route().to_owned(),
        scope.key().as_str().to_owned(),
        scope.actor().to_owned(),
    );
    let report = Report::new(
        &settings.core.service,
        &route,
        metric_route,
        &key,
        &actor,
        started,
    );
    let expiry = settings.expiry_for(&route);
    let deadline = deadline_of(&request);
    let core = &settings.core;
    let mut attempt = core.attempt(scope, fingerprint, expiry, deadline, report);
    let legacy = || legacy_fingerprint_of(&request);
    let lease = match core.begin(&mut attempt, Some(&legacy)).await {
        Decision::Run(lease) => lease,
        decision => return Ok(decided(settings, &mut attempt.report, decision)),
    };

    let handler = async { Ok(inner.call(request).await?.into_response().await) };
    let judge = |response: &Response<Body>| {
        if settings.policy.is_final(response.status()) {
            let stored = StoredResponse::capture(response, |n| settings.replays_header(n));
            Verdict::Store(stored.encode())
        } else {
            Verdict::Retry
        }
    };
    let report = |attempt: &mut crate::engine::Attempt<'_>, outcome, status: StatusCode, record| {
        attempt.report.http_status = Some(status.as_u16());
        attempt.report.finish(outcome, record);
    };
    match core.execute(&mut attempt, &lease, handler, judge).await {
        Executed::Done {
            output,
            completion,
            atomic,
        } => {
            let answer = completed(settings, &key, output, completion, atomic);
            let record = completion.record_status(atomic);
            report(&mut attempt, completion.outcome(), answer.status(), record);
            Ok(advertise_expiry(settings, answer, lease.record_expires_at))
        }
        Executed::Retryable(response) => {
            report(
                &mut attempt,
                Outcome::Errored,
                response.status(),
                Some(Status::Errored),
            );
            Ok(response)
        }
        Executed::Failed(e) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            report(
                &mut attempt,
                Outcome::Errored,
                status,
                Some(Status::Errored),
            );
            Err(e)
        }
        Executed::Panicked(panic) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            report(
                &mut attempt,
                Outcome::Errored,
                status,
                Some(Status::Errored),
            );
            std::panic::resume_unwind(panic)
        }
    }
}
