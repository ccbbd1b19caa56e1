//! Which route a request belongs to: a template, never a raw path.
//!
//! The route scopes a record and labels its metrics. Where the event names the
//! route's template (an HTTP API `routeKey`, a REST `resource`) that is the route.
//! Elsewhere (ALB, Function URLs, an HTTP API's `$default` route) only the path is
//! known, and one resource has many spellings: `/orders`, `/orders/`, `//orders` and
//! `/%6Frders` reach the same handler through a router that trims slashes. So the path
//! is normalised first (one key, one record, whatever the spelling), then matched
//! against the templates the layer was given; a request that matches none is scoped
//! by its normalised path and counted under one fixed metric label, so random paths
//! cannot create unbounded CloudWatch metrics.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::config::ConfigError;

/// The metric `route` label of a request whose route has no template.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Finds the route template a request path belongs to.
///
/// Given the request's method and its normalised path (see
/// [`IdempotencyLayerBuilder::route_templates`](super::IdempotencyLayerBuilder::route_templates)),
/// return the template path (`/orders/{orderId}`), or `None` when none applies.
/// Implemented for closures `Fn(&Method, &str) -> Option<String>`, so a router's own
/// matcher can be plugged in.
pub trait MatchRoute: Send + Sync + 'static {
    /// The template `path` matches, if any.
    fn match_route(&self, method: &Method, path: &str) -> Option<String>;
}

impl<F> MatchRoute for F
where
    F: Fn(&Method, &str) -> Option<String> + Send + Sync + 'static,
{
    fn match_route(&self, method: &Method, path: &str) -> Option<String> {
        self(method, path)
    }
}

/// A request's route, as the layer scopes and labels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `METHOD template`, or `METHOD /normalised/path` when no template applies.
    pub(crate) scope: String,
    /// Whether `scope` is a template (bounded), so it may be a metric label.
    pub(crate) templated: bool,
}

impl Route {
    /// The metric `route` label: the template, or [`UNMATCHED_ROUTE`].
    pub(crate) fn label(&self) -> &str {
        if self.templated {
            &self.scope
        } else {
            UNMATCHED_ROUTE
        }
    }
}

/// Resolves a request's route: the event's own template, else a configured one,
/// else the normalised path.
pub(crate) fn resolve(request: &Request, matcher: Option<&dyn MatchRoute>) -> Route {
    let method = request.method();
    let gateway = gateway_template(request);
    // A greedy gateway template (`/{proxy+}`) says little: a configured matcher may
    // still find the real one.
    let greedy = gateway.as_deref().is_some_and(|t| t.contains("+}"));
    if let Some(template) = &gateway
        && !(greedy && matcher.is_some())
    {
        return Route {
            scope: template.clone(),
            templated: true,
        };
    }
    let path = normalize_path(routing_path(request));
    if let Some(template) = matcher.and_then(|m| m.match_route(method, &path)) {
        return Route {
            scope: format!("{method} {template}"),
            templated: true,
        };
    }
    match gateway {
        Some(template) => Route {
            scope: template,
            templated: true,
        },
        None => Route {
            scope: format!("{method} {path}"),
            templated: false,
        },
    }
}

/// The template API Gateway names for the request, with its method.
fn gateway_template(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .route_key
            .as_deref()
            .filter(|k| !k.is_empty() && *k != "$default")
            .map(str::to_owned),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx
            .resource_path
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| format!("{} {r}", request.method())),
        _ => None,
    }
}

/// The path as the function's routes see it: the event's raw path where it has one
/// (REST's `path` has no stage; an HTTP API's `rawPath` starts with a named stage,
/// which is stripped), else the URI's path.
pub(crate) fn routing_path(request: &Request) -> &str {
    let raw = match request.raw_http_path() {
        "" => return request.uri().path(),
        raw => raw,
    };
    if let Some(RequestContext::ApiGatewayV2(ctx)) = request.request_context_ref()
        && let Some(stage) = ctx
            .stage
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "$default")
        && let Some(rest) = raw
            .strip_prefix('/')
            .and_then(|r| r.strip_prefix(stage))
            .filter(|r| r.is_empty() || r.starts_with('/'))
    {
        return if rest.is_empty() { "/" } else { rest };
    }
    raw
}

/// Normalises a path so every spelling of one resource compares equal: percent-
/// encoded unreserved characters (RFC 3986 `ALPHA DIGIT - . _ ~`) are decoded, other
/// escapes uppercased, and a `%` that starts no escape written `%25`; `.` and `..` segments are resolved; repeated slashes
/// collapse and a trailing slash is dropped. Reserved characters stay encoded, so
/// `%2F` is never a segment boundary. The result starts with `/`.
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len().max(1));
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Whether `path` is already normal: the common case costs one scan, no allocation.
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.contains(&b'%') {
        return false;
    }
    if path == "/" {
        return true;
    }
    if bytes.last() == Some(&b'/') {
        return false;
    }
    !path[1..]
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
}

fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            let byte = hi << 4 | lo;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1]).to_ascii_uppercase());
                out.push(char::from(bytes[i + 2]).to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        // A '%' that starts no escape is a literal percent sign: written as `%25`, so
        // it can never combine with what follows into an escape (`%%30a` is the
        // literal `%` then `0a`, `%250a`, not the escape `%0a`), and normalising
        // twice changes nothing.
        let start = if bytes[i] == b'%' {
            out.push_str("%25");
            i + 1
        } else {
            i
        };
        // Then copy up to the next '%' in one piece. `start` is a char boundary (the
        // start, or just after an ASCII byte) and so is `next` ('%' is ASCII); search
        // the bytes, as a string index inside a multi-byte character would panic.
        let next = bytes[start..]
            .iter()
            .position(|b| *b == b'%')
            .map_or(bytes.len(), |n| start + n);
        out.push_str(&path[start..next]);
        i = next;
    }
    Cow::Owned(out)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A list of route templates, parsed and checked once:
/// `/orders/{orderId}/refunds` (any method) or `POST /orders` (that method only).
#[derive(Clone)]
pub(crate) struct RouteTemplates(Arc<[Template]>);

#[derive(Debug)]
struct Template {
    /// As given, for `Debug`.
    text: String,
    method: Option<Method>,
    /// The path, normalised: what a matching request's route names.
    path: String,
    segments: Vec<Segment>,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable,
    /// `{name+}`: one or more segments; only last.
    Greedy,
}

impl RouteTemplates {
    /// Parses every template; the first bad one is a typed error.
    pub(crate) fn parse<I, T>(templates: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let parsed = templates
            .into_iter()
            .map(|t| Template::parse(t.into()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(parsed.into()))
    }
}

impl fmt::Debug for RouteTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|t| &t.text))
            .finish()
    }
}

impl MatchRoute for RouteTemplates {
    /// The most specific matching template: at the first segment where two matching
    /// templates differ, a literal beats a variable, which beats a greedy variable (as
    /// API Gateway chooses).
    fn match_route(&self, method: &Method, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.0
            .iter()
            .filter(|t| t.method.as_ref().is_none_or(|m| m == method))
            .filter(|t| t.matches(&segments))
            .min_by(|a, b| a.rank().cmp(&b.rank()))
            .map(|t| t.path.clone())
    }
}

impl Template {
    fn parse(text: String) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidRouteTemplate {
            template: text.clone(),
            reason: reason.to_owned(),
        };
        let (method, path) = match text.split_once(' ') {
            // API Gateway's spelling of "every method".
            Some(("ANY", path)) => (None, path),
            Some((method, path)) => {
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|_| invalid("the method is not an HTTP method"))?;
                (Some(method), path)
            }
            None => (None, text.as_str()),
        };
        if !path.starts_with('/') {
            return Err(invalid("the path must start with '/'"));
        }
        let normal = normalize_path(path);
        let parts: Vec<&str> = normal.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let (name, greedy) = match name.strip_suffix('+') {
                        Some(name) => (name, true),
                        None => (name, false),
                    };
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(invalid(
                            "a variable is {name} or {name+}, with letters, digits and '_'",
                        ));
                    }
                    if greedy && i + 1 != parts.len() {
                        return Err(invalid(
                            "a greedy variable {name+} must be the last segment",
                        ));
                    }
                    if greedy {
                        Segment::Greedy
                    } else {
                        Segment::Variable
                    }
                }
                None if part.contains(['{', '}']) => {
                    return Err(invalid("a variable must be a whole segment"));
                }
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        let path = normal.into_owned();
        Ok(Self {
            text,
            method,
            path,
            segments,
        })
    }

    fn matches(&self, segments: &[&str]) -> bool {
        let mut rest = segments;
        for segment in &self.segments {
            match segment {
                Segment::Greedy => return !rest.is_empty(),
                Segment::Literal(l) => match rest.split_first() {
                    Some((first, tail)) if first == l => rest = tail,
                    _ => return false,
                },
                Segment::Variable => match rest.split_first() {
                    Some((_, tail)) => rest = tail,
                    None => return false,
                },
            }
        }
        rest.is_empty()
    }

    /// Sorts more specific templates first.
    fn rank(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Variable => 1,
                Segment::Greedy => 2,
            })
            .chain(std::iter::once(u8::from(self.method.is_none())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_spellings_of_one_path() {
        for (raw, normal) in [
            ("/orders", "/orders"),
            ("/orders/", "/orders"),
            ("//orders", "/orders"),
            ("/orders//", "/orders"),
            ("/%6Frders", "/orders"),
            ("/%6frders", "/orders"),
            ("/./orders", "/orders"),
            ("/a/../orders", "/orders"),
            ("/../orders", "/orders"),
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb/", "/a%2Fb"),
            ("/%7Euser/%41%42", "/~user/AB"),
            ("/50%", "/50%25"),
            ("/%zz", "/%25zz"),
            ("/%%30a", "/%250a"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/é//x", "/é/x"),
            ("/%41é", "/Aé"),
            ("/é%41é%2fé", "/éAé%2Fé"),
            ("/%é", "/%25é"),
            ("/%4é", "/%254é"),
            ("/%2E%2E/x", "/x"),
        ] {
            assert_eq!(normalize_path(raw), normal, "{raw:?}");
            assert_eq!(normalize_path(normal), normal, "{normal:?} is stable");
        }
        assert!(matches!(normalize_path("/orders/o-1"), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::with_cases(512)
        })]

        /// Any path (escapes cut short, multi-byte characters next to escapes, dots)
        /// normalises without panicking, to a path that is already normal.
        #[test]
        fn any_path_normalises_once_and_for_all(path in "[/%a-fA-F0-9.~_é€😀-]{0,32}") {
            let once = normalize_path(&path).into_owned();
            proptest::prop_assert!(once.starts_with('/'), "{:?} -> {:?}", path, once);
            proptest::prop_assert_eq!(normalize_path(&once).into_owned(), once);
        }
    }

    #[test]
    fn the_most_specific_template_wins() {
        let templates = RouteTemplates::parse([
            "/orders/{orderId}",
            "/orders/summary",
            "/{proxy+}",
            "POST /orders/{orderId}/refunds",
            "ANY /files/{name}",
        ])
        .unwrap();
        let m = |method: Method, path: &str| templates.match_route(&method, path);
        assert_eq!(
            m(Method::GET, "/orders/o-1").as_deref(),
            Some("/orders/{orderId}")
        );
        assert_eq!(
            m(Method::GET, "/orders/summary").as_deref(),
            Some("/orders/summary")
        );
        assert_eq!(m(Method::GET, "/x/y").as_deref(), Some("/{proxy+}"));
        assert_eq!(
            m(Method::POST, "/orders/o-1/refunds").as_deref(),
            Some("/orders/{orderId}/refunds")
        );
        assert_eq!(
            m(Method::GET, "/orders/o-1/refunds").as_deref(),
            Some("/{proxy+}")
        );
        assert_eq!(m(Method::GET, "/").as_deref(), None);
        assert_eq!(
            m(Method::DELETE, "/files/a").as_deref(),
            Some("/files/{name}")
        );
    }
}
