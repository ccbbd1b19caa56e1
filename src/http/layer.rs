//! The layer: configuration shared by every request.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderName, Method, StatusCode, header};
use tower::Layer;

use super::actor::{DefaultActor, ExtractActor, UnidentifiedCaller};
use super::route::{MatchRoute, Route, RouteTemplates};
use super::service::Idempotency;
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::{ConfigError, IdempotencyConfig, MAX_EXPIRY, MIN_EXPIRY};
use crate::store::Store;

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

/// What to do with a protected request that has no `Idempotency-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Answer `400` problem+json (default).
    #[default]
    Reject,
    /// Run the handler without idempotency.
    PassThrough,
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

/// Makes a `lambda_http` handler idempotent. See the [module docs](super).
#[derive(Clone)]
pub struct IdempotencyLayer {
    pub(crate) settings: Arc<Settings>,
}

pub(crate) struct Settings {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: IdempotencyConfig,
    pub(crate) route_expiry: HashMap<String, Duration>,
    pub(crate) clock: SharedClock,
    pub(crate) protect: Protect,
    pub(crate) missing_key: MissingKey,
    pub(crate) profile: Profile,
    pub(crate) replay_headers: HashSet<HeaderName>,
    pub(crate) actor: Arc<dyn ExtractActor>,
    pub(crate) unidentified: UnidentifiedCaller,
    pub(crate) policy: Arc<dyn ResponsePolicy>,
    pub(crate) store_retry_after: u64,
    pub(crate) service: String,
    pub(crate) wait_in_flight: Option<Duration>,
    pub(crate) max_body_bytes: usize,
    pub(crate) routes: Option<Arc<dyn MatchRoute>>,
}

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
            .unwrap_or(self.config.expiry())
    }

    pub(crate) fn replays_header(&self, name: &HeaderName) -> bool {
        name != header::SET_COOKIE && self.replay_headers.contains(name)
    }
}

impl fmt::Debug for IdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("IdempotencyLayer")
            .field("store", &s.store)
            .field("config", &s.config)
            .field("route_expiry", &s.route_expiry)
            .field("protect", &s.protect)
            .field("missing_key", &s.missing_key)
            .field("profile", &s.profile)
            .field("replay_headers", &s.replay_headers)
            .field("max_body_bytes", &s.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl IdempotencyLayer {
    /// A builder over `store`, with every other setting at its default.
    pub fn builder(store: impl Store) -> IdempotencyLayerBuilder {
        IdempotencyLayerBuilder {
            store: Arc::new(store),
            config: IdempotencyConfig::default(),
            route_expiry: HashMap::new(),
            clock: Arc::new(SystemClock),
            protect: Protect::UnsafeMethods,
            missing_key: MissingKey::Reject,
            profile: Profile::Default,
            replay_headers: DEFAULT_REPLAY_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
            actor: Arc::new(DefaultActor::default()),
            unidentified: UnidentifiedCaller::Refuse,
            policy: Arc::new(DefaultResponsePolicy),
            service: None,
            wait_in_flight: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            routes: Routes::None,
        }
    }

    /// The store records are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.settings.store
    }

    /// The route this layer scopes `request` to (and matches [`Protect::Routes`] and
    /// [`IdempotencyLayerBuilder::route_expiry`] against): the event's template, else
    /// a configured template matching the normalised path, else method and normalised
    /// path. See [`IdempotencyLayerBuilder::route_templates`].
    pub fn route_for(&self, request: &lambda_http::Request) -> String {
        self.settings.route_of(request).scope
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Idempotency::new(inner, self.clone())
    }
}

/// Builds an [`IdempotencyLayer`]; bounds are checked in [`build`](Self::build).
#[must_use]
pub struct IdempotencyLayerBuilder {
    store: Arc<dyn Store>,
    config: IdempotencyConfig,
    route_expiry: HashMap<String, Duration>,
    clock: SharedClock,
    protect: Protect,
    missing_key: MissingKey,
    profile: Profile,
    replay_headers: HashSet<HeaderName>,
    actor: Arc<dyn ExtractActor>,
    unidentified: UnidentifiedCaller,
    policy: Arc<dyn ResponsePolicy>,
    service: Option<String>,
    wait_in_flight: Option<Duration>,
    max_body_bytes: usize,
    routes: Routes,
}

/// Route templates as given to the builder, checked in `build`.
enum Routes {
    None,
    Templates(Vec<String>),
    Matcher(Arc<dyn MatchRoute>),
}

impl IdempotencyLayerBuilder {
    /// Instead of answering `409` at once when the same request is in flight, wait up
    /// to `max` (and never past the invocation's deadline less a second) for it to
    /// finish, asking the store again with backoff (25 ms doubling to 500 ms), then
    /// replay its response. Off by default: each ask is one more DynamoDB call.
    pub fn wait_for_in_flight(mut self, max: Duration) -> Self {
        self.wait_in_flight = Some(max);
        self
    }

    /// The `service` label on metrics and logs (default: `AWS_LAMBDA_FUNCTION_NAME`).
    pub fn service_name(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Expiry and lease settings (default [`IdempotencyConfig::default`]).
    pub fn config(mut self, config: IdempotencyConfig) -> Self {
        self.config = config;
        self
    }

    /// A different expiry for one route (as [`IdempotencyLayer::route_for`] spells it,
    /// matched exactly). A record on that route still lives at least as long as its
    /// lease (see [`crate::record::expires_at_for`]).
    pub fn route_expiry(mut self, route: impl Into<String>, expiry: Duration) -> Self {
        self.route_expiry.insert(route.into(), expiry);
        self
    }

    /// The clock (default: the system clock). Share it with the store in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Which requests are protected (default [`Protect::UnsafeMethods`]).
    pub fn protect(mut self, protect: Protect) -> Self {
        self.protect = protect;
        self
    }

    /// What a protected request without a key gets (default [`MissingKey::Reject`]).
    pub fn missing_key(mut self, missing_key: MissingKey) -> Self {
        self.missing_key = missing_key;
        self
    }

    /// Status-code profile (default [`Profile::Default`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Replaces the header allow-list for replays. `Set-Cookie` is never replayed.
    pub fn replay_headers<I, H>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: Into<HeaderName>,
    {
        self.replay_headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// A custom actor extractor (default [`DefaultActor`]). It must read only what
    /// the gateway sets: see [`ExtractActor`].
    pub fn actor(mut self, actor: impl ExtractActor) -> Self {
        self.actor = Arc::new(actor);
        self
    }

    /// What a request gets when it carries authentication but the actor extractor
    /// finds no principal in it (default [`UnidentifiedCaller::Refuse`]: `500`
    /// problem+json, nothing runs). Requests with no authentication at all are always
    /// scoped to the shared anonymous actor.
    pub fn unidentified_caller(mut self, unidentified: UnidentifiedCaller) -> Self {
        self.unidentified = unidentified;
        self
    }

    /// A custom response policy (default [`DefaultResponsePolicy`]).
    pub fn response_policy(mut self, policy: impl ResponsePolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// The largest request body, in bytes, of a request the layer makes idempotent
    /// (default [`DEFAULT_MAX_BODY_BYTES`], 6 MB). A larger body is answered `413`
    /// problem+json ([`ProblemKind::BodyTooLarge`](super::ProblemKind::BodyTooLarge))
    /// before the store is touched or the handler runs, so it is never hashed or
    /// parsed. Requests the layer does not protect, and those passed through without
    /// a key ([`MissingKey::PassThrough`]), are not checked.
    ///
    /// ```
    /// use lambda_http::{Body, Error, Request, Response, service_fn};
    /// use lambda_idempotency::http::IdempotencyLayer;
    /// use lambda_idempotency::store::MemoryStore;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// let layer = IdempotencyLayer::builder(store.clone())
    ///     .max_body_bytes(1024)
    ///     .build()?;
    /// let service = layer.layer(service_fn(|_req: Request| async {
    ///     Ok::<_, Error>(Response::new(Body::from("created")))
    /// }));
    ///
    /// let upload = lambda_http::http::Request::builder()
    ///     .method("POST")
    ///     .uri("/uploads")
    ///     .header("idempotency-key", "upload-1")
    ///     .body(Body::from(vec![0u8; 1025]))?;
    /// let response = service.oneshot(upload).await?;
    /// assert_eq!(response.status(), 413);
    /// assert_eq!(response.headers()["content-type"], "application/problem+json");
    /// assert!(store.is_empty());
    /// # Ok::<(), Error>(())
    /// # })?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The route templates of an API whose events carry none (ALB, Function URLs, an
    /// HTTP API `$default` route) or only a greedy one (`/{proxy+}`): `/orders`,
    /// `/orders/{orderId}/refunds` (any method), `POST /orders` (that method only),
    /// `/files/{path+}` (one or more segments, last only). A request's normalised path
    /// is matched against them, the most specific first (a literal segment beats
    /// `{name}`, which beats `{name+}`), and its route becomes `METHOD template`: one
    /// record per key whatever the path's spelling, and one metric `route` label per
    /// template. A request matching none is scoped by `METHOD /normalised/path` and
    /// labelled [`UNMATCHED_ROUTE`](super::UNMATCHED_ROUTE) in metrics. A template that
    /// is not a path is a [`ConfigError::InvalidRouteTemplate`] from
    /// [`build`](Self::build).
    ///
    /// ```
    /// use lambda_idempotency::http::IdempotencyLayer;
    /// use lambda_idempotency::store::MemoryStore;
    ///
    /// let layer = IdempotencyLayer::builder(MemoryStore::new())
    ///     .route_templates(["/orders", "/orders/{orderId}/refunds"])
    ///     .build()?;
    /// let request = lambda_http::http::Request::builder()
    ///     .method("POST")
    ///     .uri("/orders/o-1/refunds/")
    ///     .body(lambda_http::Body::Empty)?;
    /// assert_eq!(layer.route_for(&request), "POST /orders/{orderId}/refunds");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn route_templates<I, T>(mut self, templates: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.routes = Routes::Templates(templates.into_iter().map(Into::into).collect());
        self
    }

    /// Like [`route_templates`](Self::route_templates), with your own matcher: a
    /// closure `Fn(&Method, &str) -> Option<String>` given the method and the
    /// normalised path, returning the template path (`/orders/{orderId}`). It must
    /// return a bounded set of values: they label metrics.
    pub fn route_matcher(mut self, matcher: impl MatchRoute) -> Self {
        self.routes = Routes::Matcher(Arc::new(matcher));
        self
    }

    /// Checks the bounds and builds the layer.
    pub fn build(self) -> Result<IdempotencyLayer, ConfigError> {
        let routes: Option<Arc<dyn MatchRoute>> = match self.routes {
            Routes::None => None,
            Routes::Templates(templates) => Some(Arc::new(RouteTemplates::parse(templates)?)),
            Routes::Matcher(matcher) => Some(matcher),
        };
        for expiry in self.route_expiry.values() {
            if !(MIN_EXPIRY..=MAX_EXPIRY).contains(expiry) {
                return Err(ConfigError::ExpiryOutOfRange {
                    value: *expiry,
                    min: MIN_EXPIRY,
                    max: MAX_EXPIRY,
                });
            }
        }
        Ok(IdempotencyLayer {
            settings: Arc::new(Settings {
                store: self.store,
                config: self.config,
                route_expiry: self.route_expiry,
                clock: self.clock,
                protect: self.protect,
                missing_key: self.missing_key,
                profile: self.profile,
                replay_headers: self.replay_headers,
                actor: self.actor,
                unidentified: self.unidentified,
                policy: self.policy,
                store_retry_after: 1,
                service: self.service.unwrap_or_else(crate::metrics::service_name),
                wait_in_flight: self.wait_in_flight,
                max_body_bytes: self.max_body_bytes,
                routes,
            }),
        })
    }
}
