//! The layer: built once, shared (`Arc`) by every service it makes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderName;
use lambda_http::{Body, Response};
use tower::Layer;

use super::actor::{DefaultActor, ExtractActor, UnidentifiedCaller};
use super::route::{MatchRoute, RouteTemplates};
use super::service::Idempotency;
use super::settings::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_HEADERS, DefaultResponsePolicy, Profile, Protect,
    ReplayHook, ResponsePolicy, Settings,
};
use crate::config::ConfigError;
use crate::engine::{CoreBuilder, core_builder_methods};
use crate::store::Store;

/// Makes a `lambda_http` handler idempotent. See the [module docs](super).
#[derive(Clone)]
pub struct IdempotencyLayer {
    pub(crate) settings: Arc<Settings>,
}

impl fmt::Debug for IdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("IdempotencyLayer")
            .field("store", &s.core.store)
            .field("config", &s.core.config)
            .field("route_expiry", &s.route_expiry)
            .field("protect", &s.protect)
            .field("missing_key", &s.core.missing_key)
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
            core: CoreBuilder::new(store),
            route_expiry: HashMap::new(),
            protect: Protect::UnsafeMethods,
            profile: Profile::Default,
            replay_headers: DEFAULT_REPLAY_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
            actor: Arc::new(DefaultActor::default()),
            unidentified: UnidentifiedCaller::Refuse,
            policy: Arc::new(DefaultResponsePolicy),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            on_replay: None,
            routes: Routes::None,
        }
    }

    /// The store records are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.settings.core.store
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

impl<S> Idempotency<S> {
    /// Wraps `inner` with `layer`'s settings (what [`Layer::layer`] does).
    pub fn new(inner: S, layer: IdempotencyLayer) -> Self {
        Self::with_settings(inner, layer.settings)
    }
}

/// Builds an [`IdempotencyLayer`]; bounds are checked in [`build`](Self::build).
#[must_use]
pub struct IdempotencyLayerBuilder {
    core: CoreBuilder,
    route_expiry: HashMap<String, Duration>,
    protect: Protect,
    profile: Profile,
    replay_headers: HashSet<HeaderName>,
    actor: Arc<dyn ExtractActor>,
    unidentified: UnidentifiedCaller,
    policy: Arc<dyn ResponsePolicy>,
    max_body_bytes: usize,
    on_replay: Option<ReplayHook>,
    routes: Routes,
}

/// Route templates as given to the builder, checked in `build`.
enum Routes {
    None,
    Templates(Vec<String>),
    Matcher(Arc<dyn MatchRoute>),
}

impl IdempotencyLayerBuilder {
    core_builder_methods!();

    /// A different expiry for one route (as [`IdempotencyLayer::route_for`] spells it,
    /// matched exactly). A record on that route still lives at least as long as its
    /// lease (see [`crate::record::expires_at_for`]).
    pub fn route_expiry(mut self, route: impl Into<String>, expiry: Duration) -> Self {
        self.route_expiry.insert(route.into(), expiry);
        self
    }

    /// Which requests are protected (default [`Protect::UnsafeMethods`]).
    pub fn protect(mut self, protect: Protect) -> Self {
        self.protect = protect;
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

    /// Called on every replay of a stored response, before it is sent: with the
    /// response (already marked `Idempotent-Replayed: true`; what `f` leaves in it
    /// is what the client gets) and its [`Record`](crate::record::Record) (when it
    /// was created, its route, key and expiry). For example to add a header, or to
    /// log. It is not called for the layer's own answers (conflicts, in flight, a
    /// response too large to replay), nor when the handler runs.
    ///
    /// ```
    /// use lambda_http::{Body, Error, Request, Response, service_fn};
    /// use lambda_idempotency::http::IdempotencyLayer;
    /// use lambda_idempotency::store::MemoryStore;
    /// use tower::{Layer, ServiceExt};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let layer = IdempotencyLayer::builder(MemoryStore::new())
    ///     .on_replay(|response, record| {
    ///         // When the request was first processed, for the client's logs.
    ///         response.headers_mut().insert("x-first-seen-ms", record.created_at_ms.into());
    ///     })
    ///     .build()?;
    /// let service = layer.layer(service_fn(|_: Request| async {
    ///     Ok::<_, Error>(Response::builder().status(201).body(Body::from("created"))?)
    /// }));
    /// let request = || {
    ///     lambda_http::http::Request::builder()
    ///         .method("POST")
    ///         .uri("/orders")
    ///         .header("idempotency-key", "order-1")
    ///         .body(Body::Empty)
    ///         .unwrap()
    /// };
    /// let first = service.clone().oneshot(request()).await?;
    /// assert!(first.headers().get("x-first-seen-ms").is_none());
    /// let replay = service.oneshot(request()).await?;
    /// assert!(replay.headers().contains_key("x-first-seen-ms"));
    /// # Ok::<(), Error>(())
    /// # })?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn on_replay(
        mut self,
        f: impl Fn(&mut Response<Body>, &crate::record::Record) + Send + Sync + 'static,
    ) -> Self {
        self.on_replay = Some(Arc::new(f));
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
            self.core.config.check_expiry(*expiry)?;
        }
        Ok(IdempotencyLayer {
            settings: Arc::new(Settings {
                core: self.core.build()?,
                route_expiry: self.route_expiry,
                protect: self.protect,
                profile: self.profile,
                replay_headers: self.replay_headers,
                actor: self.actor,
                unidentified: self.unidentified,
                policy: self.policy,
                store_retry_after: 1,
                max_body_bytes: self.max_body_bytes,
                on_replay: self.on_replay,
                routes,
            }),
        })
    }
}
