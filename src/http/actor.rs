//! Who is asking: the actor a key is scoped to.
//!
//! Two actors using the same key must never share a record, so the actor is part
//! of the partition key. The default reads the principal the gateway already
//! authenticated. A request that went through an authorizer but names no principal
//! the extractor recognises is refused ([`UnidentifiedCaller::Refuse`]): scoping it to
//! the shared anonymous actor would let one caller replay another's response. Only a
//! request that carries no authentication at all is anonymous.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use crate::scope::ANONYMOUS_ACTOR;

/// Extracts the actor (principal) of a request; `None` means "no principal found".
///
/// Read only what the gateway sets (the authorizer's output, the IAM caller), never a
/// header or body field the client chooses: the actor decides whose stored responses
/// a request may see. When the extractor returns `None` for a request that carries
/// authentication, the layer refuses it unless told otherwise
/// ([`UnidentifiedCaller`]).
///
/// Implemented for closures, so a custom extractor is one line. Here, a user and
/// tenant that an HTTP API Lambda authorizer put in its context:
///
/// ```
/// use lambda_http::request::RequestContext;
/// use lambda_http::{Request, RequestExt};
/// use lambda_idempotency::http::ExtractActor;
///
/// let by_tenant_user = |req: &Request| match req.request_context_ref()? {
///     RequestContext::ApiGatewayV2(ctx) => {
///         let context = &ctx.authorizer.as_ref()?.fields; // authorizer.lambda
///         let tenant = context.get("tenant")?.as_str()?;
///         let user = context.get("user")?.as_str()?;
///         Some(format!("tenant:{tenant}/user:{user}"))
///     }
///     _ => None,
/// };
///
/// let event = r#"{"version":"2.0","routeKey":"POST /orders","rawPath":"/orders","rawQueryString":"",
///   "headers":{},"requestContext":{"http":{"method":"POST","path":"/orders","protocol":"HTTP/1.1",
///   "sourceIp":"1.2.3.4","userAgent":"x"},"requestId":"r","routeKey":"POST /orders","stage":"$default",
///   "time":"","timeEpoch":0,"accountId":"1","apiId":"a","domainName":"d","domainPrefix":"d",
///   "authorizer":{"lambda":{"tenant":"acme","user":"alice"}}},"isBase64Encoded":false}"#;
/// let request = lambda_http::request::from_str(event).unwrap();
/// assert_eq!(
///     by_tenant_user.extract_actor(&request).as_deref(),
///     Some("tenant:acme/user:alice")
/// );
/// ```
pub trait ExtractActor: Send + Sync + 'static {
    /// The request's actor, or `None` when it names no principal.
    fn extract_actor(&self, request: &Request) -> Option<String>;
}

impl<F> ExtractActor for F
where
    F: Fn(&Request) -> Option<String> + Send + Sync + 'static,
{
    fn extract_actor(&self, request: &Request) -> Option<String> {
        self(request)
    }
}

/// What the layer does with a request that carries authentication (an API Gateway
/// authorizer's output, an IAM caller, ALB's OIDC headers) but no principal the actor
/// extractor recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnidentifiedCaller {
    /// Answer `500` problem+json
    /// ([`ProblemKind::UnidentifiedCaller`](super::ProblemKind::UnidentifiedCaller)),
    /// log at WARN, and run nothing (default). It is a deployment problem: name the
    /// principal's field ([`DefaultActor::principal_field`]) or supply an extractor.
    #[default]
    Refuse,
    /// Scope such requests to the shared anonymous actor: every one of them shares one
    /// key space, so a caller that sends another's key gets that caller's response.
    /// Only for APIs whose keys are unguessable and whose responses are not private.
    Anonymous,
}

/// The default extractor: the principal the gateway authenticated, tagged by how.
///
/// - HTTP API (v2) and Function URLs: JWT authorizer `sub` (`jwt:…`), Cognito identity
///   of an IAM caller (`cognito:…`), IAM caller ARN (`iam:…`), a named field of a
///   Lambda authorizer's context (`lambda.<field>:…`, see
///   [`principal_field`](Self::principal_field)), or a `principalId` in that context
///   (`lambda:…`).
/// - REST API (v1): Cognito / JWT claims `sub` (`jwt:…`), a named context field
///   (`lambda.<field>:…`), the Lambda authorizer's `principalId` (`lambda:…`), Cognito
///   identity (`cognito:…`), IAM caller ARN (`iam:…`).
/// - ALB: none (its OIDC headers are signed JWTs this extractor does not verify).
///
/// Empty values count as absent. A Cognito identity comes before the IAM ARN because
/// every user of an identity pool calls with the same role ARN. An HTTP API Lambda
/// authorizer passes only the `context` it returned (in both response formats), so
/// unless that context holds `principalId` or the field you name, such a request has
/// no principal and is refused (see [`UnidentifiedCaller`]).
#[derive(Debug, Clone, Default)]
pub struct DefaultActor {
    principal_fields: Vec<String>,
}

impl DefaultActor {
    /// The default extractor, reading no named context field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also reads the principal from this field of a Lambda authorizer's context
    /// (HTTP API `requestContext.authorizer.lambda.<name>`, REST
    /// `requestContext.authorizer.<name>`), before `principalId`. May be called more
    /// than once; the first field present wins. The actor is `lambda.<name>:<value>`.
    ///
    /// ```
    /// use lambda_idempotency::http::{DefaultActor, IdempotencyLayer};
    /// use lambda_idempotency::store::MemoryStore;
    ///
    /// let layer = IdempotencyLayer::builder(MemoryStore::new())
    ///     .actor(DefaultActor::new().principal_field("userId"))
    ///     .build()?;
    /// # Ok::<(), lambda_idempotency::config::ConfigError>(())
    /// ```
    #[must_use]
    pub fn principal_field(mut self, name: impl Into<String>) -> Self {
        self.principal_fields.push(name.into());
        self
    }

    fn named_field(&self, context: &HashMap<String, Value>) -> Option<String> {
        self.principal_fields.iter().find_map(|name| {
            string_field(context, name).map(|value| format!("lambda.{name}:{value}"))
        })
    }
}

impl ExtractActor for DefaultActor {
    fn extract_actor(&self, request: &Request) -> Option<String> {
        match request.request_context_ref()? {
            RequestContext::ApiGatewayV2(ctx) => {
                let auth = ctx.authorizer.as_ref()?;
                if let Some(sub) = non_empty(auth.jwt.as_ref().and_then(|j| j.claims.get("sub"))) {
                    return Some(format!("jwt:{sub}"));
                }
                let iam = auth.iam.as_ref();
                let cognito = iam.and_then(|i| i.cognito_identity.as_ref());
                if let Some(id) = non_empty(cognito.and_then(|c| c.identity_id.as_ref())) {
                    return Some(format!("cognito:{id}"));
                }
                if let Some(arn) = non_empty(iam.and_then(|i| i.user_arn.as_ref())) {
                    return Some(format!("iam:{arn}"));
                }
                // `fields` is the Lambda authorizer's context (`authorizer.lambda`).
                self.named_field(&auth.fields).or_else(|| {
                    string_field(&auth.fields, "principalId").map(|p| format!("lambda:{p}"))
                })
            }
            RequestContext::ApiGatewayV1(ctx) => {
                let fields = &ctx.authorizer.fields;
                if let Some(sub) = fields
                    .get("claims")
                    .and_then(|c| c.get("sub"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    return Some(format!("jwt:{sub}"));
                }
                if let Some(named) = self.named_field(fields) {
                    return Some(named);
                }
                if let Some(p) = string_field(fields, "principalId") {
                    return Some(format!("lambda:{p}"));
                }
                if let Some(id) = non_empty(ctx.identity.cognito_identity_id.as_ref()) {
                    return Some(format!("cognito:{id}"));
                }
                non_empty(ctx.identity.user_arn.as_ref()).map(|arn| format!("iam:{arn}"))
            }
            _ => None,
        }
        .filter(|a| !a.is_empty())
    }
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|s| !s.is_empty())
}

fn string_field(fields: &HashMap<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Headers an ALB `authenticate-oidc` / `authenticate-cognito` action adds.
const ALB_OIDC_HEADERS: [&str; 3] = [
    "x-amzn-oidc-identity",
    "x-amzn-oidc-data",
    "x-amzn-oidc-accesstoken",
];

/// How the request was authenticated, when it was: the name of the mechanism, for
/// the refusal's message. `None` for a request with no authentication at all.
///
/// An HTTP API event carries `requestContext.authorizer` only for a route with an
/// authorizer (a Lambda authorizer that returned no context arrives as
/// `{"lambda": null}`), so its presence alone counts. ALB's OIDC headers count only on
/// an ALB event: elsewhere they are whatever the client sent.
pub(crate) fn authentication_of(request: &Request) -> Option<&'static str> {
    match request.request_context_ref()? {
        RequestContext::Alb(_) => ALB_OIDC_HEADERS
            .iter()
            .any(|h| request.headers().contains_key(*h))
            .then_some("ALB OIDC authentication"),
        RequestContext::ApiGatewayV2(ctx) => {
            let auth = ctx.authorizer.as_ref()?;
            Some(if auth.jwt.is_some() {
                "a JWT authorizer"
            } else if auth.iam.is_some() {
                "IAM authorization"
            } else {
                "a Lambda authorizer"
            })
        }
        RequestContext::ApiGatewayV1(ctx) => {
            let identity = &ctx.identity;
            let present = |v: &Value| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            };
            let fields = &ctx.authorizer.fields;
            if fields.get("claims").is_some_and(present) {
                Some("a Cognito authorizer")
            } else if fields.values().any(present) {
                Some("a Lambda authorizer")
            } else if non_empty(identity.access_key.as_ref()).is_some()
                || non_empty(identity.caller.as_ref()).is_some()
            {
                Some("IAM authorization")
            } else {
                None
            }
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whose request this is, as the layer decides it.
#[derive(Debug)]
pub(crate) enum Actor {
    /// A principal, or the anonymous actor for a request without authentication (or
    /// an unidentified one, when the layer was told to share them).
    Known(String),
    /// Authenticated by `.0`, but no principal found: refuse.
    Unidentified(&'static str),
}

/// The actor for `request`.
pub(crate) fn actor_of(
    extractor: &dyn ExtractActor,
    unidentified: UnidentifiedCaller,
    request: &Request,
) -> Actor {
    if let Some(actor) = extractor.extract_actor(request).filter(|a| !a.is_empty()) {
        return Actor::Known(actor);
    }
    match (authentication_of(request), unidentified) {
        (Some(how), UnidentifiedCaller::Refuse) => Actor::Unidentified(how),
        _ => Actor::Known(ANONYMOUS_ACTOR.to_owned()),
    }
}
