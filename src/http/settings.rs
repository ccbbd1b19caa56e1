//! What the HTTP layer is configured with: the public settings types, and the
//! [`Settings`] its services share.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderName, Method, StatusCode, header};

use super::actor::{ExtractActor, UnidentifiedCaller};
use super::route::{MatchRoute, Route};
use crate::engine::Core;

/// The default largest request body, in bytes: 6 MB, AWS Lambda's limit for a
/// synchronous invocation's whole event, so no genuine API Gateway, ALB or Function
/// URL request carries a larger body. See
/// [`IdempotencyLayerBuilder::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 6_000_000;

/// Which requests the layer makes idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protect {
    /// `POST` and `PATCH`, the methods HTTP does not define as idempotent (default).
    UnsafeMethods,
    /// Every request.
    All,
    /// Only these routes (as [`IdempotencyLayer::route_for`] spells them, e.g.
    /// `POST /orders/{orderId}/refunds`, or `POST /orders` for a normalised path).
    Routes(HashSet<String>),
}

/// Which status codes the layer answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `409` for a key reused with a different request (default).
    #[default]
    Default,
    /// draft-ietf-httpapi-idempotency-key-header: `400` for a missing key, `422` for a
    /// reused key, `409` for a concurrent one, and every answer with a record carries
    /// `Idempotency-Key-Expires` (when the key's record expires, an IMF-fixdate).
    IetfDraft,
}

/// Decides whether a handler's response is final (stored and replayed) or
/// retryable (the record is marked `ERRORED` so a retry runs the handler again).
///
/// Implemented for closures `Fn(StatusCode) -> bool`.
pub trait ResponsePolicy: Send + Sync + 'static {
    /// `true` to store and replay a response with this status.
    fn is_final(&self, status: StatusCode) -> bool;
}

impl<F> ResponsePolicy for F
where
    F: Fn(StatusCode) -> bool + Send + Sync + 'static,
{
    fn is_final(&self, status: StatusCode) -> bool {
        self(status)
    }
}

/// The default policy: 2xx, 3xx and deterministic 4xx are final; 5xx and the
/// transient 4xx (`408`, `425`, `429`) may be retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponsePolicy;

impl ResponsePolicy for DefaultResponsePolicy {
    fn is_final(&self, status: StatusCode) -> bool {
        match status.as_u16() {
            408 | 425 | 429 => false,
            s => (200..500).contains(&s),
        }
    }
}

/// Headers replayed by default: the representation headers, and the CORS response
/// headers (a browser retries exactly when an answer was lost, and cannot read a
/// replay without them). `Set-Cookie` is never stored, whatever is configured.
pub const DEFAULT_REPLAY_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "content-type",
    "content-language",
    "content-encoding",
    "content-disposition",
    "content-location",
    "location",
    "etag",
    "last-modified",
    "link",
    "cache-control",
    "vary",
];

/// Everything an [`IdempotencyLayer`](super::IdempotencyLayer) was built with, shared
/// (`Arc`) by the services it makes.
pub(crate) struct Settings {
    pub(crate) core: Core,
    pub(crate) route_expiry: HashMap<String, Duration>,
    pub(crate) protect: Protect,
    pub(crate) profile: Profile,
    pub(crate) replay_headers: HashSet<HeaderName>,
    pub(crate) actor: Arc<dyn ExtractActor>,
    pub(crate) unidentified: UnidentifiedCaller,
    pub(crate) policy: Arc<dyn ResponsePolicy>,
    pub(crate) store_retry_after: u64,
    pub(crate) max_body_bytes: usize,
    pub(crate) routes: Option<Arc<dyn MatchRoute>>,
    pub(crate) on_replay: Option<ReplayHook>,
}

/// Called on every replay with the response about to be sent and its record.
pub(crate) type ReplayHook = Arc<
    dyn Fn(&mut lambda_http::Response<lambda_http::Body>, &crate::record::Record) + Send + Sync,
>;

impl Settings {
    pub(crate) fn route_of(&self, request: &lambda_http::Request) -> Route {
        super::route::resolve(request, self.routes.as_deref())
    }

    pub(crate) fn protects(&self, method: &Method, route: &str) -> bool {
        match &self.protect {
            Protect::UnsafeMethods => method == Method::POST || method == Method::PATCH,
            Protect::All => true,
            Protect::Routes(routes) => routes.contains(route),
        }
    }

    pub(crate) fn expiry_for(&self, route: &str) -> Duration {
        self.route_expiry
            .get(route)
            .copied()
            .unwrap_or(self.core.config.expiry())
    }

    pub(crate) fn replays_header(&self, name: &HeaderName) -> bool {
        name != header::SET_COOKIE && self.replay_headers.contains(name)
    }
}
