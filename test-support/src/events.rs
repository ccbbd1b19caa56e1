//! The sample events in the repository's `events/` folder, as the tests read them.
//!
//! One set of fixtures serves the demo, `sam local invoke`, the functions' tests and
//! the library's own: an event that stops matching what API Gateway, ALB or SQS
//! send is fixed once, everywhere.

use std::path::PathBuf;

use lambda_http::{Context, Request};
use serde_json::Value;

/// The `events/` folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The text of `events/<name>.json`.
pub fn text(name: &str) -> String {
    let path = dir().join(format!("{name}.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the sample event {}: {e}", path.display()))
}

/// `events/<name>.json` as JSON, to edit before it is parsed.
pub fn json(name: &str) -> Value {
    serde_json::from_str(&text(name))
        .unwrap_or_else(|e| panic!("events/{name}.json is not JSON: {e}"))
}

/// `events/<name>.json` as the request `lambda_http` hands a handler, without a
/// Lambda context (see [`with_deadline`]).
pub fn http_request(name: &str) -> Request {
    lambda_http::request::from_str(&text(name))
        .unwrap_or_else(|e| panic!("events/{name}.json is not an HTTP event: {e}"))
}

/// `request` with a Lambda context whose invocation ends at `deadline_ms` (Unix
/// milliseconds), as the runtime attaches it.
pub fn with_deadline(mut request: Request, deadline_ms: i64) -> Request {
    let mut context = Context::default();
    context.deadline = u64::try_from(deadline_ms).expect("a deadline after 1970");
    request.extensions_mut().insert(context);
    request
}
