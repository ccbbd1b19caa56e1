//! What the layer reads from a request: route, key header, fingerprint, deadline.

use lambda_http::http::{HeaderMap, header};
use lambda_http::{Body, Request, RequestExt};

use super::route::normalize_path;
use crate::canonical_json::CanonicalJsonError;
use crate::fingerprint::{BodyKind, Fingerprint, FingerprintInput};

/// The header clients send their key in (matched case-insensitively).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The route a request belongs to: method + route template where the event carries
/// one (HTTP API `routeKey`, REST `resource`), else method + normalised path
/// (repeated and trailing slashes dropped, `.` and `..` resolved, percent-encoded
/// letters, digits and `-._~` decoded). A layer with route templates
/// ([`IdempotencyLayer::route_for`](super::IdempotencyLayer::route_for)) matches the
/// normalised path against them too.
///
/// ```
/// let event = r#"{"version":"2.0","routeKey":"POST /orders/{orderId}/refunds","rawPath":"/orders/o-1/refunds",
///   "rawQueryString":"","headers":{},"requestContext":{"http":{"method":"POST","path":"/orders/o-1/refunds",
///   "protocol":"HTTP/1.1","sourceIp":"1.2.3.4","userAgent":"x"},"requestId":"r","routeKey":"POST /orders/{orderId}/refunds",
///   "stage":"$default","time":"","timeEpoch":0,"accountId":"1","apiId":"a","domainName":"d","domainPrefix":"d"},
///   "isBase64Encoded":false}"#;
/// let request = lambda_http::request::from_str(event).unwrap();
/// assert_eq!(lambda_idempotency::http::route_of(&request), "POST /orders/{orderId}/refunds");
///
/// let plain = lambda_http::http::Request::builder()
///     .method("POST")
///     .uri("https://example.com//orders/")
///     .body(lambda_http::Body::Empty)
///     .unwrap();
/// assert_eq!(lambda_idempotency::http::route_of(&plain), "POST /orders");
/// ```
pub fn route_of(request: &Request) -> String {
    super::route::resolve(request, None).scope
}

/// What the `Idempotency-Key` header holds.
pub(crate) enum KeyHeader<'a> {
    Missing,
    One(&'a [u8]),
    Repeated,
}

pub(crate) fn key_header(headers: &HeaderMap) -> KeyHeader<'_> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    match (values.next(), values.next()) {
        (None, _) => KeyHeader::Missing,
        (Some(v), None) => KeyHeader::One(v.as_bytes()),
        (Some(_), Some(_)) => KeyHeader::Repeated,
    }
}

/// The request's fingerprint ([`Fingerprint::v2`]): method, normalised path, query
/// (names in any order, one name's values in order) and body, with JSON bodies
/// canonicalised (RFC 8785, numbers by exact value).
///
/// A body that declares a JSON content type but is not JSON is hashed byte for
/// byte here; the layer itself refuses such a request (`400`
/// [`ProblemKind::InvalidJsonBody`](super::ProblemKind::InvalidJsonBody)) before
/// it reaches the store, so no record ever holds that fallback. For this
/// repository's tests and benches (feature `testing`); the layer uses
/// `checked_fingerprint_of`.
#[cfg(any(test, feature = "testing"))]
pub fn fingerprint_of(request: &Request) -> Fingerprint {
    let query = query_of(request);
    let path = normalize_path(request.uri().path());
    Fingerprint::v2(&input_of(request, &path, &query))
}

/// The request's fingerprint as the first release computed it (`v1`: the raw path,
/// query pairs sorted by value too, numbers through a double), to recognise the
/// records that release wrote.
pub(crate) fn legacy_fingerprint_of(request: &Request) -> Fingerprint {
    let query = query_of(request);
    Fingerprint::v1(&input_of(request, request.uri().path(), &query))
}

/// Why the layer refuses a request's body before touching the store.
#[derive(Debug)]
pub(crate) enum BodyRefusal {
    /// Larger than the layer's maximum.
    TooLarge { len: usize, max: usize },
    /// Declared JSON, but not JSON the canonicaliser accepts.
    NotJson(CanonicalJsonError),
}

/// The fingerprint the layer stores: `Fingerprint::v2` of the request, refusing a body
/// over `max_body_bytes` and a body declared JSON that is not JSON.
pub(crate) fn checked_fingerprint_of(
    request: &Request,
    max_body_bytes: usize,
) -> Result<Fingerprint, BodyRefusal> {
    let len = body_of(request).len();
    if len > max_body_bytes {
        return Err(BodyRefusal::TooLarge {
            len,
            max: max_body_bytes,
        });
    }
    let query = query_of(request);
    let path = normalize_path(request.uri().path());
    Fingerprint::try_v2(&input_of(request, &path, &query)).map_err(BodyRefusal::NotJson)
}

fn query_of(request: &Request) -> Vec<(String, String)> {
    request
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn body_of(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The parts of `request` its fingerprint covers; `path` is the normalised path, so
/// every spelling that reaches the same record is the same request.
fn input_of<'a>(
    request: &'a Request,
    path: &'a str,
    query: &'a [(String, String)],
) -> FingerprintInput<'a> {
    FingerprintInput {
        method: request.method().as_str(),
        path,
        query,
        body: body_of(request),
        body_kind: body_kind(request.headers()),
    }
}

/// JSON media types are canonicalised; no content type means "try JSON"; anything
/// else is hashed byte for byte.
fn body_kind(headers: &HeaderMap) -> BodyKind {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return BodyKind::Auto;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        BodyKind::Json
    } else {
        BodyKind::Raw
    }
}

/// The invocation deadline in epoch ms, `0` when unknown.
pub(crate) fn deadline_of(request: &Request) -> i64 {
    request
        .lambda_context_ref()
        .map(|c| i64::try_from(c.deadline).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
