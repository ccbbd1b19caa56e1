//! How the HTTP layer answers: the engine's decisions and the handler's results
//! rendered as responses (problem+json for the layer's own answers), and the
//! refusals made before the store is touched.

use lambda_http::Body;
use lambda_http::http::{HeaderValue, Response, StatusCode};

use super::problem::{ProblemKind, problem_response};
use super::request::BodyRefusal;
use super::settings::{Profile, Settings};
use super::stored::StoredResponse;
use crate::canonical_json::CanonicalJsonError;
use crate::engine::{Completion, Decision, Report, spans};
use crate::outcome::Outcome;
use crate::record::Record;

/// The header added to every replayed response.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Answers a request the engine decided not to run, and reports it.
pub(super) fn decided(
    settings: &Settings,
    report: &mut Report<'_>,
    decision: Decision,
) -> Response<Body> {
    let key = report.key;
    let (outcome, response, record) = match decision {
        Decision::Run(_) => unreachable!("a request that runs is answered by its handler"),
        Decision::Corrupt(_) => (
            Outcome::StoreError,
            problem_response(
                ProblemKind::StoredResponseUnreadable,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The record for this Idempotency-Key cannot be read, so the request was not processed; an operator must inspect it.",
                Some(key),
                None,
            ),
            None,
        ),
        Decision::Unavailable(_) => (
            Outcome::StoreError,
            problem_response(
                ProblemKind::StoreUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "The request was not processed because its idempotency record could not be checked; retry with the same Idempotency-Key.",
                Some(key),
                Some(settings.store_retry_after),
            ),
            None,
        ),
        Decision::Replay(record) => {
            let span = spans::replay(&record, &*settings.core.clock);
            let timer = spans::Timer::start(&span);
            let mut response = span.in_scope(|| replay(&record, key));
            if let Some(hook) = &settings.on_replay
                && response.headers().contains_key(IDEMPOTENT_REPLAYED)
            {
                span.in_scope(|| hook(&mut response, &record));
            }
            span.record("http_status", response.status().as_u16());
            timer.record(&span);
            (Outcome::Replayed, response, Some(record))
        }
        Decision::Mismatch(record) => {
            let status = match settings.profile {
                Profile::Default => StatusCode::CONFLICT,
                Profile::IetfDraft => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let response = problem_response(
                ProblemKind::KeyMismatch,
                status,
                "This Idempotency-Key was already used with a different request (method, path, query or body differ). Use a new key for a new request.",
                Some(key),
                None,
            );
            (Outcome::Conflict, response, Some(record))
        }
        Decision::InFlight {
            record,
            retry_after_secs,
        } => {
            let response = problem_response(
                ProblemKind::InFlight,
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still being processed. Retry after the time given in Retry-After.",
                Some(key),
                Some(retry_after_secs),
            );
            (Outcome::InFlight, response, Some(record))
        }
    };
    report.http_status = Some(response.status().as_u16());
    report.finish(outcome, record.as_ref().map(|r| r.status));
    match record {
        Some(record) => advertise_expiry(settings, response, record.expires_at),
        None => response,
    }
}

/// The stored response, marked as a replay; or a problem when it cannot be replayed.
fn replay(record: &Record, key: &str) -> Response<Body> {
    match record.response.as_deref().map(StoredResponse::decode) {
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
                Some(key),
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
                Some(key),
                None,
            )
        }
    }
}

/// The answer to a request whose handler succeeded with a final response: the
/// handler's own, unless it was atomic and nothing was committed, in which case its
/// answer must not reach the client.
pub(super) fn completed(
    settings: &Settings,
    key: &str,
    response: Response<Body>,
    completion: Completion,
    atomic: bool,
) -> Response<Body> {
    match (completion, atomic) {
        (Completion::Stored, _) | (_, false) => response,
        (Completion::LeaseLost, true) => problem_response(
            ProblemKind::InFlight,
            StatusCode::CONFLICT,
            "Another attempt of this request took over while it ran; nothing from this attempt was committed. Retry to get its result.",
            Some(key),
            Some(1),
        ),
        (Completion::StoreFailed, true) => problem_response(
            ProblemKind::StoreUnavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "The result could not be committed; nothing from this attempt was stored. Retry with the same Idempotency-Key.",
            Some(key),
            Some(settings.store_retry_after),
        ),
        (Completion::WritesTooLarge, true) => problem_response(
            ProblemKind::WritesTooLarge,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The request's writes do not fit in one DynamoDB transaction (at most 99 writes and 4 MB beside the idempotency record); nothing was committed.",
            Some(key),
            None,
        ),
        (Completion::WritesRejected, true) => problem_response(
            ProblemKind::WritesRejected,
            StatusCode::CONFLICT,
            "A concurrent change refused this request's writes; nothing was committed. Retry with the same Idempotency-Key.",
            Some(key),
            Some(1),
        ),
    }
}

/// The response header that advertises when a key's record expires (IETF profile):
/// the draft asks servers to publish their expiry policy; this makes it concrete
/// for every answer that has a record.
pub const IDEMPOTENCY_KEY_EXPIRES: &str = "idempotency-key-expires";

/// Adds [`IDEMPOTENCY_KEY_EXPIRES`] under [`Profile::IetfDraft`].
pub(super) fn advertise_expiry(
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
    use crate::day::Day;
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

pub(super) fn reject(
    route: &str,
    kind: ProblemKind,
    detail: &str,
    key: Option<&str>,
) -> Response<Body> {
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
pub(super) fn refuse_unidentified(route: &str, key: &str, how: &str) -> Response<Body> {
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
pub(super) fn refuse_body(route: &str, key: &str, refusal: &BodyRefusal) -> Response<Body> {
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
