//! The service: the begin / run / complete algorithm around one request.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::FutureExt;
use lambda_http::http::{HeaderValue, Response, StatusCode};
use lambda_http::{Body, IntoResponse, Request};
use tower::Service;
use tracing::Instrument;

use super::actor::{Actor, actor_of};
use super::layer::{IdempotencyLayer, MissingKey, Profile, Settings};
use super::problem::{ProblemKind, problem_response};
use super::request::{
    BodyRefusal, KeyHeader, checked_fingerprint_of, deadline_of, key_header, legacy_fingerprint_of,
};
use super::stored::StoredResponse;
use crate::atomic::AtomicWrites;
use crate::canonical_json::CanonicalJsonError;
use crate::clock::Clock;
use crate::engine::{
    ActorHash, Completion, Outcome, Report, begin_waiting, complete, fail, retry_after_secs,
};
use crate::key::IdempotencyKey;
use crate::record::Status;
use crate::scope::Scope;
use crate::store::{BeginOutcome, BeginRequest};

/// The header added to every replayed response.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Middleware that makes a `lambda_http` service idempotent; built by
/// [`IdempotencyLayer`]. See the [module docs](super).
#[derive(Clone)]
pub struct Idempotency<S> {
    inner: S,
    layer: IdempotencyLayer,
}

impl<S: fmt::Debug> fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S> Idempotency<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, layer: IdempotencyLayer) -> Self {
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
        let settings = self.layer.settings.clone();
        Box::pin(async move { handle(&settings, inner, request).await })
    }
}

async fn handle<S, R>(
    settings: &Settings,
    mut inner: S,
    request: Request,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request, Response = R>,
    R: IntoResponse,
{
    let started = Instant::now();
    let resolved = settings.route_of(&request);
    let route = resolved.scope.clone();
    if !settings.protects(request.method(), &route) {
        return Ok(inner.call(request).await?.into_response().await);
    }

    let key = match key_header(request.headers()) {
        KeyHeader::Missing => match settings.missing_key {
            MissingKey::PassThrough => return Ok(inner.call(request).await?.into_response().await),
            MissingKey::Reject => {
                return Ok(reject(
                    &route,
                    ProblemKind::MissingKey,
                    "This route requires an Idempotency-Key header (a UUID or a slug of letters, digits, '-' and '_', at most 255 characters).",
                    None,
                ));
            }
        },
        KeyHeader::Repeated => {
            return Ok(reject(
                &route,
                ProblemKind::MalformedKey,
                "Send exactly one Idempotency-Key header.",
                None,
            ));
        }
        KeyHeader::One(bytes) => match IdempotencyKey::parse_header(bytes) {
            Ok(key) => key,
            Err(e) => {
                return Ok(reject(
                    &route,
                    ProblemKind::MalformedKey,
                    &e.to_string(),
                    None,
                ));
            }
        },
    };

    // Refused bodies never reach the store: no record, no handler.
    let fingerprint = match checked_fingerprint_of(&request, settings.max_body_bytes) {
        Ok(fingerprint) => fingerprint,
        Err(refusal) => return Ok(refuse_body(&route, key.as_str(), &refusal)),
    };

    let actor = match actor_of(&*settings.actor, settings.unidentified, &request) {
        Actor::Known(actor) => actor,
        Actor::Unidentified(how) => return Ok(refuse_unidentified(&route, key.as_str(), how)),
    };
    // Every line logged from here on (the handler's too) carries the key, the route
    // and the actor's hash, never the raw actor or the partition key that holds it.
    let span = tracing::info_span!(
        "idempotency",
        idempotency_key = %key,
        route = %route,
        actor_hash = %ActorHash(&actor),
    );
    let scope = Scope::new(route.clone(), actor, key);
    handle_scoped(
        settings,
        inner,
        request,
        scope,
        fingerprint,
        resolved.label(),
        started,
    )
    .instrument(span)
    .await
}

/// The begin / run / complete algorithm for a request whose key, body and actor
/// were accepted.
async fn handle_scoped<S, R>(
    settings: &Settings,
    mut inner: S,
    request: Request,
    scope: Scope,
    fingerprint: crate::fingerprint::Fingerprint,
    metric_route: &str,
    started: Instant,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request, Response = R>,
    R: IntoResponse,
{
    let route = scope.route().to_owned();
    let now_ms = settings.clock.now_millis();
    let expiry = settings.expiry_for(&route);
    let mut begin = BeginRequest {
        scope,
        fingerprint,
        lease: settings.config.lease_for(now_ms, deadline_of(&request)),
        expiry,
    };
    let key = begin.scope.key().as_str().to_owned();
    let actor_text = begin.scope.actor().to_owned();
    let mut report = Report {
        service: &settings.service,
        route: &route,
        metric_route,
        key: &key,
        actor: &actor_text,
        started,
        lookup_ms: None,
        record_size: None,
        http_status: None,
    };
    let log =
        |report: &mut Report<'_>, outcome: Outcome, status: StatusCode, record: Option<Status>| {
            report.http_status = Some(status.as_u16());
            report.finish(outcome, record);
        };

    let deadline = deadline_of(&request);
    let lease_for = |now: i64| settings.config.lease_for(now, deadline);
    let mut lookup_ms = 0.0;
    let lookup = begin_waiting(
        &*settings.store,
        &mut begin,
        settings.wait_in_flight,
        deadline,
        &*settings.clock,
        &lease_for,
        Some(&|| legacy_fingerprint_of(&request)),
        &mut lookup_ms,
    )
    .await;
    report.lookup_ms = Some(lookup_ms);
    let (lease, _replaced) = match lookup {
        // A record this version cannot read blocks its key: retrying will not help.
        Err(e @ crate::Error::CorruptRecord { .. }) => {
            tracing::error!(error = %e, "the key's record cannot be read; the handler did not run");
            let response = problem_response(
                ProblemKind::StoredResponseUnreadable,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The record for this Idempotency-Key cannot be read, so the request was not processed; an operator must inspect it.",
                Some(&key),
                None,
            );
            log(&mut report, Outcome::StoreError, response.status(), None);
            return Ok(response);
        }
        Err(e) => {
            tracing::error!(error = %e, "idempotency store unavailable before the handler");
            let response = problem_response(
                ProblemKind::StoreUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "The request was not processed because its idempotency record could not be checked; retry with the same Idempotency-Key.",
                Some(&key),
                Some(settings.store_retry_after),
            );
            log(&mut report, Outcome::StoreError, response.status(), None);
            return Ok(response);
        }
        Ok(BeginOutcome::Replay(record)) => {
            let response = match record.response.as_deref().map(StoredResponse::decode) {
                None if record.response_omitted.is_some() => {
                    tracing::warn!(
                        size = record.response_omitted,
                        "replay of a response that was too large to keep"
                    );
                    problem_response(
                        ProblemKind::ResponseTooLarge,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!(
                            "The request was processed, so it is not run again, but its response ({} bytes) was too large to keep and cannot be replayed.",
                            record.response_omitted.unwrap_or_default()
                        ),
                        Some(&key),
                        None,
                    )
                }
                Some(Ok(stored)) => {
                    let mut response = stored.to_response();
                    response
                        .headers_mut()
                        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
                    response
                }
                other => {
                    tracing::error!(error = ?other.map(|r| r.err()), "stored response unreadable");
                    problem_response(
                        ProblemKind::StoredResponseUnreadable,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The request was processed, but its stored response cannot be read back. It was not processed again.",
                        Some(&key),
                        None,
                    )
                }
            };
            log(
                &mut report,
                Outcome::Replayed,
                response.status(),
                Some(record.status),
            );
            return Ok(advertise_expiry(settings, response, record.expires_at));
        }
        Ok(BeginOutcome::Mismatch(record)) => {
            let status = match settings.profile {
                Profile::Default => StatusCode::CONFLICT,
                Profile::IetfDraft => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let response = problem_response(
                ProblemKind::KeyMismatch,
                status,
                "This Idempotency-Key was already used with a different request (method, path, query or body differ). Use a new key for a new request.",
                Some(&key),
                None,
            );
            log(&mut report, Outcome::Conflict, status, Some(record.status));
            return Ok(advertise_expiry(settings, response, record.expires_at));
        }
        Ok(BeginOutcome::InFlight(record)) => {
            let retry_after = retry_after_secs(&record, settings.clock.now_millis());
            let response = problem_response(
                ProblemKind::InFlight,
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still being processed. Retry after the time given in Retry-After.",
                Some(&key),
                Some(retry_after),
            );
            log(
                &mut report,
                Outcome::InFlight,
                response.status(),
                Some(record.status),
            );
            return Ok(advertise_expiry(settings, response, record.expires_at));
        }
        Ok(BeginOutcome::Started { lease, replaced }) => (lease, replaced),
    };

    // With a transactional store, the handler's writes wait for the completion.
    let atomic = settings
        .store
        .supports_atomic_writes()
        .then(AtomicWrites::default);
    let current =
        crate::CurrentRequest::new(&lease.partition_key, &key, begin.fingerprint.as_str());
    let call = AssertUnwindSafe(current.scope(async {
        match &atomic {
            Some(writes) => writes.clone().scope(inner.call(request)).await,
            None => inner.call(request).await,
        }
    }));
    match call.catch_unwind().await {
        Ok(Ok(r)) => {
            let response = r.into_response().await;
            let status = response.status();
            if !settings.policy.is_final(status) {
                fail(&*settings.store, &lease).await;
                log(&mut report, Outcome::Errored, status, Some(Status::Errored));
                return Ok(response);
            }
            let stored = StoredResponse::capture(&response, |n| settings.replays_header(n));
            let bytes = stored.encode();
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
            let answer = match (completion, committed_with_writes) {
                (Completion::Stored, _) | (_, false) => response,
                // Nothing was committed: the handler's answer must not reach the client.
                (Completion::LeaseLost, true) => problem_response(
                    ProblemKind::InFlight,
                    StatusCode::CONFLICT,
                    "Another attempt of this request took over while it ran; nothing from this attempt was committed. Retry to get its result.",
                    Some(&key),
                    Some(1),
                ),
                (Completion::StoreFailed, true) => problem_response(
                    ProblemKind::StoreUnavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The result could not be committed; nothing from this attempt was stored. Retry with the same Idempotency-Key.",
                    Some(&key),
                    Some(settings.store_retry_after),
                ),
                (Completion::WritesTooLarge, true) => problem_response(
                    ProblemKind::WritesTooLarge,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The request's writes do not fit in one DynamoDB transaction (at most 99 writes and 4 MB beside the idempotency record); nothing was committed.",
                    Some(&key),
                    None,
                ),
                (Completion::WritesRejected, true) => problem_response(
                    ProblemKind::WritesRejected,
                    StatusCode::CONFLICT,
                    "A concurrent change refused this request's writes; nothing was committed. Retry with the same Idempotency-Key.",
                    Some(&key),
                    Some(1),
                ),
            };
            log(&mut report, completion.outcome(), answer.status(), record);
            Ok(advertise_expiry(settings, answer, lease.record_expires_at))
        }
        Ok(Err(e)) => {
            fail(&*settings.store, &lease).await;
            log(
                &mut report,
                Outcome::Errored,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Status::Errored),
            );
            Err(e)
        }
        Err(panic) => {
            fail(&*settings.store, &lease).await;
            log(
                &mut report,
                Outcome::Errored,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Status::Errored),
            );
            std::panic::resume_unwind(panic)
        }
    }
}

/// The response header that advertises when a key's record expires (IETF profile):
/// the draft asks servers to publish their expiry policy; this makes it concrete
/// for every answer that has a record.
pub const IDEMPOTENCY_KEY_EXPIRES: &str = "idempotency-key-expires";

/// Adds [`IDEMPOTENCY_KEY_EXPIRES`] under [`Profile::IetfDraft`].
fn advertise_expiry(
    settings: &Settings,
    mut response: Response<Body>,
    expires_at: i64,
) -> Response<Body> {
    if settings.profile == Profile::IetfDraft
        && let Ok(value) = HeaderValue::from_str(&http_date(expires_at))
    {
        response
            .headers_mut()
            .insert(IDEMPOTENCY_KEY_EXPIRES, value);
    }
    response
}

/// An IMF-fixdate (RFC 9110), e.g. `Sun, 29 Nov 2026 09:30:00 GMT`.
fn http_date(secs: i64) -> String {
    use crate::store::dynamodb::day::Day;
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = Day::of_secs(secs);
    let (year, month, dom) = day.ymd();
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{}, {dom:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[day.days_since_epoch().rem_euclid(7) as usize],
        MONTHS[(month as usize).saturating_sub(1).min(11)],
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

fn reject(route: &str, kind: ProblemKind, detail: &str, key: Option<&str>) -> Response<Body> {
    tracing::info!(
        route = %route,
        detail,
        outcome = Outcome::Rejected.as_str(),
        problem = kind.type_uri(),
        "idempotency key refused"
    );
    problem_response(kind, StatusCode::BAD_REQUEST, detail, key, None)
}

/// Answers a request that carries authentication but no principal: scoping it to the
/// shared anonymous actor would let it replay another caller's response.
fn refuse_unidentified(route: &str, key: &str, how: &str) -> Response<Body> {
    tracing::warn!(
        route = %route,
        authentication = how,
        outcome = Outcome::Rejected.as_str(),
        problem = ProblemKind::UnidentifiedCaller.type_uri(),
        "request authenticated by {how} names no principal the actor extractor recognises; refused rather than shared with every other such caller"
    );
    problem_response(
        ProblemKind::UnidentifiedCaller,
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "The request was authenticated by {how}, but no principal was found in it, so its idempotency record could not be scoped to the caller. The request was not processed. The API's operator must name the principal's field or supply an actor extractor."
        ),
        Some(key),
        None,
    )
}

/// Answers a body the layer will not fingerprint: too large (`413`) or declared JSON
/// but not JSON (`400`). The detail never quotes the body.
fn refuse_body(route: &str, key: &str, refusal: &BodyRefusal) -> Response<Body> {
    let (kind, status, detail) = match refusal {
        BodyRefusal::TooLarge { len, max } => (
            ProblemKind::BodyTooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request body is {len} bytes; this API accepts at most {max} bytes. The request was not processed."
            ),
        ),
        BodyRefusal::NotJson(error) => {
            let why = match error {
                CanonicalJsonError::TooDeep => {
                    "its arrays and objects nest 128 or more levels deep (at most 127 are accepted)"
                        .to_owned()
                }
                CanonicalJsonError::DuplicateKey(_) => {
                    "an object has two members with the same name".to_owned()
                }
                CanonicalJsonError::Invalid(message) => message.clone(),
            };
            (
                ProblemKind::InvalidJsonBody,
                StatusCode::BAD_REQUEST,
                format!(
                    "The Content-Type says JSON, but the body is not valid JSON: {why}. The request was not processed; send valid UTF-8 JSON or a non-JSON content type."
                ),
            )
        }
    };
    tracing::info!(
        route = %route,
        detail = %detail,
        outcome = Outcome::Rejected.as_str(),
        problem = kind.type_uri(),
        "request body refused"
    );
    problem_response(kind, status, &detail, Some(key), None)
}

#[cfg(test)]
mod tests {
    use super::http_date;

    #[test]
    fn formats_imf_fixdates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_795_944_600), "Sun, 29 Nov 2026 09:30:00 GMT");
    }
}
