//! Who is asking: the actor a key is scoped to.
//!
//! Two actors using the same key must never share a record, so the actor is part
//! of the partition key. The default reads the principal API Gateway already
//! authenticated; anything else is the anonymous actor.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use crate::scope::ANONYMOUS_ACTOR;

/// Extracts the actor (principal) of a request; `None` means anonymous.
///
/// Implemented for closures, so a custom extractor is one line:
///
/// ```
/// use lambda_http::Request;
/// use lambda_idempotency::http::ExtractActor;
///
/// let by_tenant = |req: &Request| {
///     req.headers().get("x-tenant-id").and_then(|v| v.to_str().ok()).map(|t| format!("tenant:{t}"))
/// };
/// let req = lambda_http::http::Request::builder()
///     .header("x-tenant-id", "acme")
///     .body(lambda_http::Body::Empty)
///     .unwrap();
/// assert_eq!(by_tenant.extract_actor(&req).as_deref(), Some("tenant:acme"));
/// ```
pub trait ExtractActor: Send + Sync + 'static {
    /// The request's actor, or `None` for anonymous.
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

/// The default extractor: the principal API Gateway authenticated, tagged by how.
///
/// - HTTP API (v2) and Function URLs: JWT authorizer `sub` (`jwt:…`), Cognito identity
///   of an IAM caller (`cognito:…`), IAM caller ARN (`iam:…`), or a Lambda authorizer's
///   `principalId` in its context (`lambda:…`).
/// - REST API (v1): Cognito / JWT claims `sub` (`jwt:…`), Lambda authorizer
///   `principalId` (`lambda:…`), Cognito identity (`cognito:…`), IAM caller ARN (`iam:…`).
/// - ALB and anything else: anonymous.
///
/// Empty values count as absent. A Cognito identity comes before the IAM ARN because
/// every user of an identity pool calls with the same role ARN.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultActor;

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
                string_field(&auth.fields, "principalId").map(|p| format!("lambda:{p}"))
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

fn string_field(fields: &std::collections::HashMap<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The actor for `request`, or [`ANONYMOUS_ACTOR`].
pub(crate) fn actor_of(extractor: &dyn ExtractActor, request: &Request) -> String {
    extractor
        .extract_actor(request)
        .unwrap_or_else(|| ANONYMOUS_ACTOR.to_owned())
}
