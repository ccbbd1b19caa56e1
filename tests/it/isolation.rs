//! Actor isolation: one caller never receives another caller's response, whatever
//! key, route or encoding trick the second caller tries.
//!
//! Every request carries an `x-caller` tag (headers are not part of the
//! fingerprint), and the handler answers with that tag and its run number. For each
//! case, caller A sends its request first; then each of caller B's requests must run
//! the handler itself (a fresh run whose body carries B's own tag, never A's body).
//! Finally every request is sent again and must replay its *own* first answer.
//!
//! Requests are real Lambda events (HTTP API v2 and REST v1, with JWT, Cognito, IAM
//! and Lambda authorizers, or none), from `events/refund.via-*.json` edited per
//! shape. The suite runs over the in-memory store and over DynamoDB Local (needs
//! `AWS_ENDPOINT_URL_DYNAMODB`: `scripts/with-dynamodb-local.sh cargo test --test it
//! isolation::`).

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::events;
use lambda_http::{Body, Request, Response};
use lambda_idempotency::http::{IdempotencyLayer, Protect};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

/// The role every user of a Cognito identity pool calls with.
const COGNITO_ROLE: &str =
    "arn:aws:sts::123456789012:assumed-role/Cognito_OrdersAuth_Role/CognitoIdentityCredentials";
const CAROL: &str = "arn:aws:iam::123456789012:user/carol";
const DAVE: &str = "arn:aws:iam::123456789012:user/dave";
const COGNITO_X: &str = "eu-west-1:11111111-2222-3333-4444-555555555555";
const COGNITO_Y: &str = "eu-west-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const BODY: &str = r#"{"amountCents":100,"currency":"EUR"}"#;
/// The host of every request, whichever API it comes through.
const HOST: &str = "api.example.com";

// ---------------------------------------------------------------------------------
// Who is asking, and through which API
// ---------------------------------------------------------------------------------

/// A principal as API Gateway presents it to the function.
#[derive(Debug, Clone)]
enum Principal {
    Anonymous,
    /// A JWT authorizer's (HTTP API) or Cognito user pool authorizer's (REST) `sub`.
    Jwt(String),
    /// An IAM caller authenticated through a Cognito identity pool.
    Cognito(&'static str),
    /// An IAM caller.
    Iam(&'static str),
    /// A Lambda authorizer's `principalId`.
    Lambda(String),
}

use Principal::{Anonymous, Cognito, Iam};

fn jwt(sub: &str) -> Principal {
    Principal::Jwt(sub.to_owned())
}

fn lambda(principal: &str) -> Principal {
    Principal::Lambda(principal.to_owned())
}

/// One request shape: which API, method, route and path, and who sends it.
#[derive(Debug, Clone)]
struct Shape {
    event: Value,
}

impl Shape {
    /// An HTTP API (v2) request; `route_key` `None` is the `$default` route, where
    /// the layer's route is the method and the (client-chosen) path.
    fn http_api(method: &str, route_key: Option<&str>, path: &str, who: &Principal) -> Self {
        let route_key = route_key.unwrap_or("$default");
        let mut event = events::json("refund.via-http-api");
        event["routeKey"] = json!(route_key);
        event["rawPath"] = json!(path);
        event["pathParameters"] = Value::Null;
        // One host for every shape: callers differ only in who they are.
        event["headers"]["host"] = json!(HOST);
        let ctx = &mut event["requestContext"];
        ctx["domainName"] = json!(HOST);
        ctx["routeKey"] = json!(route_key);
        ctx["http"]["method"] = json!(method);
        ctx["http"]["path"] = json!(path);
        event["body"] = json!(BODY);
        let authorizer = match who {
            Anonymous => None,
            Principal::Jwt(sub) => {
                Some(json!({ "jwt": { "claims": { "sub": sub }, "scopes": null } }))
            }
            Cognito(id) => Some(json!({ "iam": {
                "accessKey": "ASIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "callerId": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials",
                "cognitoIdentity": {
                    "amr": ["authenticated"],
                    "identityId": id,
                    "identityPoolId": "eu-west-1:99999999-8888-7777-6666-555555555555"
                },
                "principalOrgId": null,
                "userArn": COGNITO_ROLE,
                "userId": "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials"
            }})),
            Iam(arn) => Some(json!({ "iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": arn,
                "userId": "AIDACKCEVSQ6C2EXAMPLE"
            }})),
            Principal::Lambda(id) => {
                Some(json!({ "lambda": { "principalId": id, "tenant": "acme" } }))
            }
        };
        if let Some(authorizer) = authorizer {
            event["requestContext"]["authorizer"] = authorizer;
        }
        Self { event }
    }

    /// A REST API (v1) request on stage `prod` for `resource` at `path`.
    fn rest(method: &str, resource: &str, path: &str, who: &Principal) -> Self {
        let mut event = events::json("refund.via-rest-api");
        event["resource"] = json!(resource);
        event["path"] = json!(path);
        event["httpMethod"] = json!(method);
        event["pathParameters"] = Value::Null;
        event["headers"]["Host"] = json!(HOST);
        event["multiValueHeaders"]["Host"] = json!([HOST]);
        let ctx = &mut event["requestContext"];
        ctx["domainName"] = json!(HOST);
        ctx["httpMethod"] = json!(method);
        ctx["path"] = json!(format!("/prod{path}"));
        ctx["resourcePath"] = json!(resource);
        event["body"] = json!(BODY);
        let ctx = &mut event["requestContext"];
        match who {
            Anonymous => {}
            Principal::Jwt(sub) => {
                ctx["authorizer"] = json!({ "claims": { "sub": sub, "token_use": "id" } });
            }
            Cognito(id) => {
                ctx["identity"]["cognitoIdentityId"] = json!(id);
                ctx["identity"]["cognitoAuthenticationType"] = json!("authenticated");
                ctx["identity"]["userArn"] = json!(COGNITO_ROLE);
            }
            Iam(arn) => ctx["identity"]["userArn"] = json!(arn),
            Principal::Lambda(id) => {
                ctx["authorizer"] = json!({ "principalId": id, "integrationLatency": 12 });
            }
        }
        Self { event }
    }

    /// The request with this key and caller tag.
    fn request(&self, key: &str, caller: &str) -> Request {
        let mut event = self.event.clone();
        let rest = event.get("version").is_none();
        event["headers"]["Idempotency-Key"] = json!(key);
        event["headers"]["X-Caller"] = json!(caller);
        if rest {
            event["multiValueHeaders"]["Idempotency-Key"] = json!([key]);
            event["multiValueHeaders"]["X-Caller"] = json!([caller]);
        }
        lambda_http::request::from_str(&event.to_string())
            .unwrap_or_else(|e| panic!("{caller}: not a valid Lambda event ({e}): {event}"))
    }
}

/// The refund route through an HTTP API.
fn refund(who: &Principal) -> Shape {
    Shape::http_api(
        "POST",
        Some("POST /orders/{orderId}/refunds"),
        "/orders/o-1/refunds",
        who,
    )
}

/// The refund route through a REST API (the same route string as [`refund`]).
fn rest_refund(who: &Principal) -> Shape {
    Shape::rest(
        "POST",
        "/orders/{orderId}/refunds",
        "/orders/o-1/refunds",
        who,
    )
}

/// `method path` on an HTTP API's `$default` route: the path is the route.
fn default_route(method: &str, path: &str, who: &Principal) -> Shape {
    Shape::http_api(method, None, path, who)
}

// ---------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------

/// A key in the form B sends it.
#[derive(Debug, Clone, Copy)]
enum KeyForm {
    /// Exactly A's key.
    Same,
    /// A's UUID key upper-cased.
    Upper,
}

/// One isolation case: A's request, then B's attempts.
struct Case {
    name: String,
    a: Shape,
    b: Vec<(String, Shape, KeyForm)>,
}

fn case(name: impl Into<String>, a: Shape, b: Vec<(&str, Shape, KeyForm)>) -> Case {
    Case {
        name: name.into(),
        a,
        b: b.into_iter()
            .map(|(n, s, k)| (n.to_owned(), s, k))
            .collect(),
    }
}

/// B's request is A's, from another principal.
fn pair(name: &str, a: Shape, b: Shape) -> Case {
    case(name, a, vec![("same route, same key", b, KeyForm::Same)])
}

fn cases() -> Vec<Case> {
    let alice = jwt("alice");
    let bob = jwt("bob");
    let mut cases = vec![
        // Different principals, same route, same key.
        pair("JWT alice / JWT bob", refund(&alice), refund(&bob)),
        pair(
            "HTTP API JWT alice / REST JWT bob",
            refund(&alice),
            rest_refund(&bob),
        ),
        pair("JWT alice / anonymous", refund(&alice), refund(&Anonymous)),
        pair("anonymous / JWT alice", refund(&Anonymous), refund(&alice)),
        pair(
            "JWT sub 'anonymous' / anonymous",
            refund(&jwt("anonymous")),
            refund(&Anonymous),
        ),
        pair(
            "anonymous / JWT sub 'anonymous'",
            refund(&Anonymous),
            refund(&jwt("anonymous")),
        ),
        pair(
            "two Cognito identities under one role",
            refund(&Cognito(COGNITO_X)),
            refund(&Cognito(COGNITO_Y)),
        ),
        pair(
            "the Cognito role's IAM ARN / a Cognito identity",
            refund(&Iam(COGNITO_ROLE)),
            refund(&Cognito(COGNITO_X)),
        ),
        pair(
            "REST Cognito identities",
            rest_refund(&Cognito(COGNITO_X)),
            rest_refund(&Cognito(COGNITO_Y)),
        ),
        pair(
            "REST anonymous / REST Cognito",
            rest_refund(&Anonymous),
            rest_refund(&Cognito(COGNITO_X)),
        ),
        pair(
            "HTTP API IAM carol / REST IAM dave",
            refund(&Iam(CAROL)),
            rest_refund(&Iam(DAVE)),
        ),
        pair(
            "REST Lambda authorizer erin / frank",
            rest_refund(&lambda("erin")),
            rest_refund(&lambda("frank")),
        ),
        pair(
            "HTTP API Lambda authorizer erin / frank",
            refund(&lambda("erin")),
            refund(&lambda("frank")),
        ),
        // Principals whose text mimics another kind's tag.
        pair(
            "Lambda principal 'jwt:alice' / JWT alice",
            rest_refund(&lambda("jwt:alice")),
            refund(&alice),
        ),
        pair(
            "JWT sub 'lambda:erin' / Lambda principal erin",
            refund(&jwt("lambda:erin")),
            rest_refund(&lambda("erin")),
        ),
        pair(
            "JWT sub 'iam:<carol's ARN>' / IAM carol",
            refund(&jwt(&format!("iam:{CAROL}"))),
            refund(&Iam(CAROL)),
        ),
        pair(
            "JWT sub 'cognito:<id>' / Cognito <id>",
            refund(&jwt(&format!("cognito:{COGNITO_X}"))),
            refund(&Cognito(COGNITO_X)),
        ),
        // Principals that differ only in ways a sloppy comparison would drop.
        pair(
            "sub 'a#b' / sub 'a'",
            refund(&jwt("a#b")),
            refund(&jwt("a")),
        ),
        pair(
            "sub 'a' / sub 'a#b'",
            refund(&jwt("a")),
            refund(&jwt("a#b")),
        ),
        pair(
            "sub with a trailing space",
            refund(&alice),
            refund(&jwt("alice ")),
        ),
        pair("sub case", refund(&alice), refund(&jwt("Alice"))),
        pair(
            "sub in NFC / NFD",
            refund(&jwt("jos\u{e9}")),
            refund(&jwt("jose\u{301}")),
        ),
        pair(
            "sub holding the partition key's syntax",
            refund(&jwt("a|5:jwt:b")),
            refund(&jwt("a")),
        ),
        pair(
            "sub with a newline",
            refund(&jwt("alice\nbob")),
            refund(&alice),
        ),
        pair(
            "600-character subs one character apart (hashed partition keys)",
            refund(&jwt(&"x".repeat(600))),
            refund(&jwt(&("x".repeat(599) + "y"))),
        ),
        // Route and actor that collide when joined naively ("route|actor|key",
        // "route#actor#key", "route:actor:key"): the path is the client's to choose
        // on a $default route.
        pair(
            "naive '|' join: path '/p|jwt:x' + sub 'y' / path '/p' + sub 'x|jwt:y'",
            default_route("POST", "/p|jwt:x", &jwt("y")),
            default_route("POST", "/p", &jwt("x|jwt:y")),
        ),
        pair(
            "naive ':' join: path '/p:jwt:x' + sub 'y' / path '/p' + sub 'x:jwt:y'",
            default_route("POST", "/p:jwt:x", &jwt("y")),
            default_route("POST", "/p", &jwt("x:jwt:y")),
        ),
        pair(
            "naive '#' join: path '/p%23jwt:x' + sub 'y' / path '/p' + sub 'x#jwt:y'",
            default_route("POST", "/p%23jwt:x", &jwt("y")),
            default_route("POST", "/p", &jwt("x#jwt:y")),
        ),
        pair(
            "partition-key syntax in the path",
            default_route("POST", "/p", &jwt("a")),
            default_route("POST", "/p|5:jwt:a", &Anonymous),
        ),
        pair(
            "a 1,000-character path",
            default_route("POST", &format!("/{}", "a".repeat(1000)), &alice),
            default_route("POST", &format!("/{}", "a".repeat(1000)), &bob),
        ),
    ];

    // One principal pair, every route, method and key trick B can try.
    for (pair_name, a_who, b_who) in [
        ("JWT alice / JWT bob", alice.clone(), bob.clone()),
        ("JWT alice / anonymous", alice.clone(), Anonymous),
        ("anonymous / IAM carol", Anonymous, Iam(CAROL)),
    ] {
        let on = |method: &str, path: &str| default_route(method, path, &b_who);
        cases.push(case(
            format!("{pair_name}: route, method and key tricks"),
            default_route("POST", "/orders", &a_who),
            vec![
                ("same request", on("POST", "/orders"), KeyForm::Same),
                ("upper-case UUID key", on("POST", "/orders"), KeyForm::Upper),
                ("path case", on("POST", "/Orders"), KeyForm::Same),
                ("trailing slash", on("POST", "/orders/"), KeyForm::Same),
                ("double slash", on("POST", "//orders"), KeyForm::Same),
                (
                    "percent-encoded letter",
                    on("POST", "/%6Frders"),
                    KeyForm::Same,
                ),
                (
                    "percent-encoded slash",
                    on("POST", "/orders%2F"),
                    KeyForm::Same,
                ),
                ("encoded space", on("POST", "/orders%20"), KeyForm::Same),
                ("matrix parameter", on("POST", "/orders;v=1"), KeyForm::Same),
                ("PATCH", on("PATCH", "/orders"), KeyForm::Same),
                ("PUT", on("PUT", "/orders"), KeyForm::Same),
                ("lower-case method", on("post", "/orders"), KeyForm::Same),
                (
                    "another route, same key",
                    on("POST", "/payments"),
                    KeyForm::Same,
                ),
                (
                    "a proxy route template, same key",
                    Shape::http_api("POST", Some("POST /{proxy+}"), "/orders", &b_who),
                    KeyForm::Same,
                ),
                (
                    "REST API proxy resource, same key",
                    Shape::rest("POST", "/v1/{proxy+}", "/v1/orders", &b_who),
                    KeyForm::Same,
                ),
            ],
        ));
    }
    cases
}

// ---------------------------------------------------------------------------------
// Running them
// ---------------------------------------------------------------------------------

/// Echoes the caller tag and counts its runs.
fn echo_handler(
    runs: &Arc<AtomicUsize>,
) -> impl tower::Service<
    Request,
    Response = Response<Body>,
    Error = lambda_http::Error,
    Future = std::future::Ready<Result<Response<Body>, lambda_http::Error>>,
> + Clone
+ Send
+ 'static {
    let runs = Arc::clone(runs);
    tower::service_fn(move |request: Request| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let caller = request
            .headers()
            .get("x-caller")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        std::future::ready(
            Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({ "caller": caller, "run": run }).to_string(),
                ))
                .map_err(lambda_http::Error::from),
        )
    })
}

fn body_text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

fn is_replay(response: &Response<Body>) -> bool {
    response.headers().contains_key("idempotent-replayed")
}

/// Runs every case over `store`.
async fn run_cases(store: impl Store + Clone) {
    let runs = Arc::new(AtomicUsize::new(0));
    let service = IdempotencyLayer::builder(store)
        .protect(Protect::All)
        .build()
        .expect("a valid layer")
        .layer(echo_handler(&runs));
    let cases = cases();
    let mut attempts = 0;

    for (index, case) in cases.iter().enumerate() {
        let key = uuid::Uuid::new_v4().to_string();
        let name = &case.name;
        let send = |request: Request| {
            let service = service.clone();
            async move { service.oneshot(request).await.expect("a response") }
        };

        let a_tag = format!("A{index}");
        let a = send(case.a.request(&key, &a_tag)).await;
        assert_eq!(a.status(), 201, "{name}: A: {}", body_text(&a));
        assert!(!is_replay(&a), "{name}: A's first request was replayed");
        let a_body = body_text(&a);
        assert!(a_body.contains(&format!("\"{a_tag}\"")), "{name}: {a_body}");

        let mut b_bodies = Vec::new();
        for (i, (attempt, shape, form)) in case.b.iter().enumerate() {
            let b_tag = format!("B{index}.{i}");
            let b_key = match form {
                KeyForm::Same => key.clone(),
                KeyForm::Upper => key.to_uppercase(),
            };
            let before = runs.load(Ordering::SeqCst);
            let b = send(shape.request(&b_key, &b_tag)).await;
            let b_body = body_text(&b);
            let what = format!("{name} / {attempt}");
            assert_eq!(b.status(), 201, "{what}: {b_body}");
            assert_ne!(b_body, a_body, "{what}: B received A's response");
            assert!(
                !b_body.contains(&format!("\"{a_tag}\"")),
                "{what}: {b_body}"
            );
            if is_replay(&b) {
                // Another spelling of one of B's own requests (a trailing slash, a
                // double slash: the path is normalised): B's own answer, never A's.
                assert!(
                    b_bodies.iter().any(
                        |(.., earlier): &(String, &Shape, String, String, String)| *earlier
                            == b_body
                    ),
                    "{what}: B's request was replayed with an answer B never got: {b_body}"
                );
                assert_eq!(runs.load(Ordering::SeqCst), before, "{what}");
            } else {
                assert_eq!(
                    runs.load(Ordering::SeqCst),
                    before + 1,
                    "{what}: B's request did not run the handler"
                );
                assert!(b_body.contains(&format!("\"{b_tag}\"")), "{what}: {b_body}");
            }
            b_bodies.push((what, shape, b_key, b_tag, b_body));
            attempts += 1;
        }

        // Everyone's retry replays their own first answer.
        let again = send(case.a.request(&key, "A-retry")).await;
        assert!(is_replay(&again), "{name}: A's retry was not replayed");
        assert_eq!(body_text(&again), a_body, "{name}: A's retry");
        for (what, shape, b_key, _, b_body) in &b_bodies {
            let again = send(shape.request(b_key, "B-retry")).await;
            assert!(is_replay(&again), "{what}: B's retry was not replayed");
            assert_eq!(&body_text(&again), b_body, "{what}: B's retry");
        }
    }
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(attempts >= 70, "{attempts} attempts");
}

#[tokio::test]
async fn no_actor_receives_another_actors_response_over_the_memory_store() {
    run_cases(MemoryStore::new()).await;
}

#[tokio::test]
async fn no_actor_receives_another_actors_response_over_dynamodb_local() {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    run_cases(DynamoDbStore::new(client, table)).await;
}

/// The control for the cases above: the caller tag is only a header, so the same
/// principal sending the same request with another tag is replayed. B's requests
/// above run because B is another actor, not because their records never match.
#[tokio::test]
async fn the_same_principal_with_another_caller_tag_is_replayed() {
    let store = MemoryStore::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let service = IdempotencyLayer::builder(store.clone())
        .build()
        .unwrap()
        .layer(echo_handler(&runs));
    let key = uuid::Uuid::new_v4().to_string();

    for shape in [refund(&jwt("alice")), rest_refund(&lambda("erin"))] {
        let first = service
            .clone()
            .oneshot(shape.request(&key, "first"))
            .await
            .unwrap();
        let again = service
            .clone()
            .oneshot(shape.request(&key, "second"))
            .await
            .unwrap();
        assert!(!is_replay(&first));
        assert!(is_replay(&again));
        assert_eq!(body_text(&again), body_text(&first));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(store.len(), 2);
}
