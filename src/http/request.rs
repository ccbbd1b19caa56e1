//! What the layer reads from a request: route, key header, fingerprint, deadline.

use lambda_http::http::{HeaderMap, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};

use crate::fingerprint::{BodyKind, Fingerprint, FingerprintInput};

/// The header clients send their key in (matched case-insensitively).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The route a request belongs to: method + route template where the event carries
/// one (HTTP API `routeKey`, REST `resource`), else method + path.
///
/// ```
/// let event = r#"{"version":"2.0","routeKey":"POST /orders/{orderId}/refunds","rawPath":"/orders/o-1/refunds",
///   "rawQueryString":"","headers":{},"requestContext":{"http":{"method":"POST","path":"/orders/o-1/refunds",
///   "protocol":"HTTP/1.1","sourceIp":"1.2.3.4","userAgent":"x"},"requestId":"r","routeKey":"POST /orders/{orderId}/refunds",
///   "stage":"$default","time":"","timeEpoch":0,"accountId":"1","apiId":"a","domainName":"d","domainPrefix":"d"},
///   "isBase64Encoded":false}"#;
/// let request = lambda_http::request::from_str(event).unwrap();
/// assert_eq!(lambda_idempotency::http::route_of(&request), "POST /orders/{orderId}/refunds");
/// ```
pub fn route_of(request: &Request) -> String {
    let method = request.method().as_str();
    let template = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .route_key
            .as_deref()
            .filter(|k| !k.is_empty() && *k != "$default")
            .map(str::to_owned),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx
            .resource_path
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| format!("{method} {r}")),
        _ => None,
    };
    template.unwrap_or_else(|| format!("{method} {}", request.uri().path()))
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

/// The request's fingerprint: method, path, query (order-independent) and body,
/// with JSON bodies canonicalised (RFC 8785).
pub fn fingerprint_of(request: &Request) -> Fingerprint {
    let query: Vec<(String, String)> = request
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let body: &[u8] = match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    Fingerprint::v1(&FingerprintInput {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: &query,
        body,
        body_kind: body_kind(request.headers()),
    })
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
