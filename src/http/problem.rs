//! `application/problem+json` responses (RFC 9457) for the layer's own answers.

use lambda_http::Body;
use lambda_http::http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// The media type of every error the layer answers with.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One kind of problem the layer can report; its `type` URI is stable. New kinds may
/// be added, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// No `Idempotency-Key` header on a protected route.
    MissingKey,
    /// The header is present but its value is refused.
    MalformedKey,
    /// The body declares a JSON content type (`application/json`, `*+json`) but
    /// is not JSON the layer can canonicalise (`400`).
    InvalidJsonBody,
    /// The body is larger than the layer's maximum (`413`); see
    /// [`IdempotencyLayerBuilder::max_body_bytes`](super::IdempotencyLayerBuilder::max_body_bytes).
    BodyTooLarge,
    /// The key was used for a different request.
    KeyMismatch,
    /// The same request is still being processed.
    InFlight,
    /// The store could not be reached; the handler did not run.
    StoreUnavailable,
    /// The stored response for this key cannot be read.
    StoredResponseUnreadable,
    /// The handler's writes were refused by a concurrent change; nothing was committed.
    WritesRejected,
    /// The handler's writes do not fit in one transaction; nothing was committed.
    WritesTooLarge,
    /// The request completed but its response was too large to keep.
    ResponseTooLarge,
    /// The request carries authentication but no principal the actor extractor
    /// recognises (`500`); see [`UnidentifiedCaller`](super::UnidentifiedCaller).
    UnidentifiedCaller,
}

impl ProblemKind {
    /// The problem's `type` URI.
    pub fn type_uri(self) -> &'static str {
        match self {
            Self::MissingKey => "urn:lambda-idempotency:problem:missing-key",
            Self::MalformedKey => "urn:lambda-idempotency:problem:malformed-key",
            Self::InvalidJsonBody => "urn:lambda-idempotency:problem:invalid-json-body",
            Self::BodyTooLarge => "urn:lambda-idempotency:problem:body-too-large",
            Self::KeyMismatch => "urn:lambda-idempotency:problem:key-reused",
            Self::InFlight => "urn:lambda-idempotency:problem:request-in-progress",
            Self::StoreUnavailable => "urn:lambda-idempotency:problem:store-unavailable",
            Self::StoredResponseUnreadable => {
                "urn:lambda-idempotency:problem:stored-response-unreadable"
            }
            Self::WritesRejected => "urn:lambda-idempotency:problem:writes-rejected",
            Self::WritesTooLarge => "urn:lambda-idempotency:problem:writes-too-large",
            Self::ResponseTooLarge => "urn:lambda-idempotency:problem:response-too-large",
            Self::UnidentifiedCaller => "urn:lambda-idempotency:problem:unidentified-caller",
        }
    }

    /// The problem's `title`.
    pub fn title(self) -> &'static str {
        match self {
            Self::MissingKey => "Idempotency-Key header is required",
            Self::MalformedKey => "Idempotency-Key header is malformed",
            Self::InvalidJsonBody => "The request body is declared JSON but is not valid JSON",
            Self::BodyTooLarge => "The request body is too large",
            Self::KeyMismatch => "Idempotency-Key was already used for a different request",
            Self::InFlight => "A request with this Idempotency-Key is still being processed",
            Self::StoreUnavailable => "Idempotency store is unavailable",
            Self::StoredResponseUnreadable => {
                "The stored response for this Idempotency-Key cannot be read"
            }
            Self::WritesRejected => "A concurrent change refused this request's writes",
            Self::WritesTooLarge => "This request's writes do not fit in one transaction",
            Self::ResponseTooLarge => "The response to this request was too large to keep",
            Self::UnidentifiedCaller => "The caller could not be identified",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
}

/// Builds a problem response; `retry_after` (seconds) adds a `Retry-After` header.
pub fn problem_response(
    kind: ProblemKind,
    status: StatusCode,
    detail: &str,
    key: Option<&str>,
    retry_after: Option<u64>,
) -> Response<Body> {
    let body = serde_json::to_string(&Problem {
        type_uri: kind.type_uri(),
        title: kind.title(),
        status: status.as_u16(),
        detail,
        idempotency_key: key,
    })
    // Serialising plain strings and numbers cannot fail; keep a valid body regardless.
    .unwrap_or_else(|_| format!("{{\"status\":{}}}", status.as_u16()));
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_rfc_9457_json_with_the_key() {
        let r = problem_response(
            ProblemKind::InFlight,
            StatusCode::CONFLICT,
            "try later",
            Some("k-1"),
            Some(0),
        );
        assert_eq!(r.status(), 409);
        assert_eq!(r.headers()["content-type"], PROBLEM_JSON);
        assert_eq!(r.headers()["retry-after"], "1");
        let Body::Text(text) = r.body() else { panic!() };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            v["type"],
            "urn:lambda-idempotency:problem:request-in-progress"
        );
        assert_eq!(v["status"], 409);
        assert_eq!(v["detail"], "try later");
        assert_eq!(v["idempotencyKey"], "k-1");
        assert!(
            v["title"]
                .as_str()
                .unwrap()
                .contains("still being processed")
        );
    }
}
