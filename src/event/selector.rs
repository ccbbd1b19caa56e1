//! Selecting a value inside an event: JSON pointers that can step into JSON (or
//! base64) carried as a string.
//!
//! SQS bodies, API Gateway's `body`, SNS's `Message`, EventBridge events delivered
//! through SQS and Kinesis `data` all carry a JSON document as a string. A plain JSON
//! pointer (RFC 6901) stops at that string; a [`Selector`] goes on into it:
//!
//! | selector | selects |
//! |---|---|
//! | `/orderId` | the `orderId` member (a plain JSON pointer) |
//! | `/body\|json/orderId` | `orderId` inside the JSON document that the string `body` holds |
//! | `/Records/0/Sns/Message\|json/detail/id` | a pointer, a decode, and a pointer into the decoded document |
//! | `/kinesis/data\|base64\|json/orderId` | `orderId` inside base64-encoded JSON |
//! | `/body\|json` | the decoded document itself (e.g. to compare only the body) |
//! | (empty) | the whole payload |
//!
//! The grammar: a JSON pointer, then any number of steps, each `|` followed by a step
//! name and another pointer (which may be empty). The steps are `json` (the string is
//! parsed as JSON) and `base64` (the string is decoded from standard base64, padded
//! or not, and must be UTF-8 text). A pointer's tokens escape `~` as `~0` and `/` as
//! `~1` (RFC 6901) and, since `|` starts a step, a literal `|` in a member name as
//! `~2`. Selectors are checked when a layer is built: a step name other than `json`
//! or `base64`, a pointer that does not start with `/`, or a `~` escape other than
//! `~0`, `~1` or `~2` is a [`ConfigError::InvalidJsonPointer`].
//!
//! ```
//! use lambda_idempotency::event::Selector;
//! use serde_json::json;
//!
//! let message = json!({"messageId": "m-1", "body": "{\"orderId\": \"o-42\"}"});
//! let order_id: Selector = "/body|json/orderId".parse()?;
//! assert_eq!(order_id.select(&message)?.as_ref(), &json!("o-42"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde_json::Value;

use crate::config::ConfigError;

/// A JSON pointer that can decode JSON or base64 held in a string on its way; see
/// the [module docs](self) for the syntax.
#[derive(Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    /// The first pointer's tokens, then each step with its pointer's tokens.
    first: Vec<String>,
    steps: Vec<(Step, Vec<String>)>,
}

/// A decoding step inside a [`Selector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Json,
    Base64,
}

/// Why a [`Selector`] selected nothing in a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// A pointer leads nowhere (a missing member or index), or to `null`.
    #[error("{at} is missing or null")]
    Missing {
        /// The selector up to the point that is missing.
        at: String,
    },
    /// A step found something it cannot decode.
    #[error("{at} is not {expected}")]
    NotDecodable {
        /// The selector up to the value that could not be decoded.
        at: String,
        /// What the step expected: "a string of JSON", "a string of base64 UTF-8 text".
        expected: &'static str,
    },
}

impl Selector {
    /// Parses `text` (see the [module docs](self) for the syntax).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidJsonPointer {
            pointer: text.to_owned(),
            reason,
        };
        let mut parts = text.split('|');
        let first = tokens(parts.next().unwrap_or_default()).map_err(invalid)?;
        let mut steps = Vec::new();
        for part in parts {
            let (name, rest) = part.split_at(part.find('/').unwrap_or(part.len()));
            let step = match name {
                "json" => Step::Json,
                "base64" => Step::Base64,
                _ => {
                    return Err(invalid(format!(
                        "unknown step {name:?} after '|': the steps are `json` and `base64` (a literal '|' in a member name is written ~2)"
                    )));
                }
            };
            steps.push((step, tokens(rest).map_err(invalid)?));
        }
        Ok(Self {
            text: text.to_owned(),
            first,
            steps,
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a plain JSON pointer, without steps.
    pub fn is_plain_pointer(&self) -> bool {
        self.steps.is_empty()
    }

    /// The value this selector finds in `payload`: borrowed where no step decoded
    /// anything, owned after a decode. `null` counts as missing.
    pub fn select<'a>(&self, payload: &'a Value) -> Result<Cow<'a, Value>, SelectError> {
        match self.evaluate(payload) {
            Evaluated::Found(value) => Ok(value),
            Evaluated::Missing(error) | Evaluated::Undecodable { error, .. } => Err(error),
        }
    }

    /// Follows the selector as far as it goes.
    pub(crate) fn evaluate<'a>(&self, payload: &'a Value) -> Evaluated<'a> {
        let mut at = Prefix::new(&self.text);
        let mut current = match walk(Cow::Borrowed(payload), &self.first, &at) {
            Ok(value) => value,
            Err(missing) => return Evaluated::Missing(missing),
        };
        for (step, pointer) in &self.steps {
            at.enter_step();
            let Some(decoded) = decode(*step, &current) else {
                return Evaluated::Undecodable {
                    error: SelectError::NotDecodable {
                        at: at.before_step(),
                        expected: match step {
                            Step::Json => "a string of JSON",
                            Step::Base64 => "a string of base64-encoded UTF-8 text",
                        },
                    },
                    raw: current,
                };
            };
            current = match walk(Cow::Owned(decoded), pointer, &at) {
                Ok(value) => value,
                Err(missing) => return Evaluated::Missing(missing),
            };
        }
        if current.is_null() {
            return Evaluated::Missing(SelectError::Missing {
                at: self.text.clone(),
            });
        }
        Evaluated::Found(current)
    }
}

/// How far a selector got in one payload.
pub(crate) enum Evaluated<'a> {
    /// The selected value.
    Found(Cow<'a, Value>),
    /// A pointer led nowhere, or to `null`.
    Missing(SelectError),
    /// A step could not decode `raw`, the value it was given.
    Undecodable {
        error: SelectError,
        raw: Cow<'a, Value>,
    },
}

/// The selector text up to the part being evaluated, for error messages.
struct Prefix<'s> {
    text: &'s str,
    /// How many `|` steps have been entered.
    steps: usize,
}

impl<'s> Prefix<'s> {
    fn new(text: &'s str) -> Self {
        Self { text, steps: 0 }
    }

    fn enter_step(&mut self) {
        self.steps += 1;
    }

    /// The selector before the step being decoded.
    fn before_step(&self) -> String {
        let end = self
            .text
            .match_indices('|')
            .nth(self.steps - 1)
            .map_or(self.text.len(), |(i, _)| i);
        let before = &self.text[..end];
        if before.is_empty() {
            "the payload".to_owned()
        } else {
            before.to_owned()
        }
    }

    /// The selector up to the end of the current step's pointer.
    fn through_step(&self) -> String {
        let end = self
            .text
            .match_indices('|')
            .nth(self.steps)
            .map_or(self.text.len(), |(i, _)| i);
        let through = &self.text[..end];
        if through.is_empty() {
            "the payload".to_owned()
        } else {
            through.to_owned()
        }
    }
}

/// Follows `tokens` from `value`; `null` on the way counts as missing.
fn walk<'a>(
    value: Cow<'a, Value>,
    tokens: &[String],
    at: &Prefix<'_>,
) -> Result<Cow<'a, Value>, SelectError> {
    let missing = || SelectError::Missing {
        at: at.through_step(),
    };
    match value {
        Cow::Borrowed(mut v) => {
            for token in tokens {
                v = child(v, token).ok_or_else(missing)?;
            }
            Ok(Cow::Borrowed(v))
        }
        Cow::Owned(mut v) => {
            for token in tokens {
                v = take_child(v, token).ok_or_else(missing)?;
            }
            Ok(Cow::Owned(v))
        }
    }
}

fn child<'a>(value: &'a Value, token: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(token),
        Value::Array(items) => index(token).and_then(|i| items.get(i)),
        _ => None,
    }
}

fn take_child(value: Value, token: &str) -> Option<Value> {
    match value {
        Value::Object(mut map) => map.remove(token),
        Value::Array(mut items) => {
            let i = index(token)?;
            (i < items.len()).then(|| items.swap_remove(i))
        }
        _ => None,
    }
}

/// An array index as RFC 6901 writes it: digits, no leading zero (except `0`).
fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn decode(step: Step, value: &Value) -> Option<Value> {
    let Value::String(text) = value else {
        return None;
    };
    match step {
        Step::Json => serde_json::from_str(text).ok(),
        Step::Base64 => {
            let trimmed = text.trim_end_matches('=');
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .ok()?;
            String::from_utf8(bytes).ok().map(Value::String)
        }
    }
}

/// The unescaped reference tokens of one pointer (empty for the whole value).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (RFC 6901), which must be empty or start with '/'"
        ));
    };
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            Some('2') => out.push('|'),
            other => {
                return Err(format!(
                    "{token:?} has '~{}', which is not an escape: write '~' as ~0, '/' as ~1 and '|' as ~2",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

impl FromStr for Selector {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(selector: &str, payload: &Value) -> Result<Value, SelectError> {
        Selector::parse(selector)
            .unwrap()
            .select(payload)
            .map(Cow::into_owned)
    }

    #[test]
    fn a_plain_pointer_selects_as_rfc_6901_does() {
        let payload = json!({"a": {"b": [10, 20]}, "m~n": 1, "x/y": 2, "p|q": 3, "": 4});
        for pointer in ["", "/a", "/a/b", "/a/b/1", "/m~0n", "/x~1y", "/"] {
            assert_eq!(
                select(pointer, &payload).unwrap(),
                *payload.pointer(pointer).unwrap(),
                "{pointer}"
            );
        }
        assert_eq!(select("/p~2q", &payload).unwrap(), json!(3));
        for missing in ["/zz", "/a/b/2", "/a/b/01", "/a/b/-", "/a/b/x", "/a/b/1/c"] {
            assert!(
                matches!(select(missing, &payload), Err(SelectError::Missing { .. })),
                "{missing}"
            );
        }
    }

    #[test]
    fn json_steps_decode_strings_on_the_way() {
        let sns_in_sqs = json!({
            "body": json!({"Message": json!({"detail": {"orderId": "o-1", "n": [1, 2]}}).to_string()}).to_string()
        });
        assert_eq!(
            select("/body|json/Message|json/detail/orderId", &sns_in_sqs).unwrap(),
            json!("o-1")
        );
        assert_eq!(
            select("/body|json/Message|json/detail/n/1", &sns_in_sqs).unwrap(),
            json!(2)
        );
        assert_eq!(
            select("/body|json/Message|json", &sns_in_sqs).unwrap(),
            json!({"detail": {"orderId": "o-1", "n": [1, 2]}})
        );
    }

    #[test]
    fn base64_steps_decode_kinesis_data() {
        // {"orderId":"o-7"} in standard base64, with and without padding.
        let padded = json!({"kinesis": {"data": "eyJvcmRlcklkIjoiby03In0="}});
        let bare = json!({"kinesis": {"data": "eyJvcmRlcklkIjoiby03In0"}});
        for payload in [&padded, &bare] {
            assert_eq!(
                select("/kinesis/data|base64|json/orderId", payload).unwrap(),
                json!("o-7")
            );
        }
        assert_eq!(
            select("/kinesis/data|base64", &padded).unwrap(),
            json!(r#"{"orderId":"o-7"}"#)
        );
    }

    #[test]
    fn what_cannot_be_selected_says_where() {
        let payload =
            json!({"body": "not json", "n": 5, "b": "%%%", "empty": null, "doc": "{\"a\": null}"});
        assert_eq!(
            select("/body|json/orderId", &payload)
                .unwrap_err()
                .to_string(),
            "/body is not a string of JSON"
        );
        assert_eq!(
            select("/n|json", &payload).unwrap_err().to_string(),
            "/n is not a string of JSON"
        );
        assert_eq!(
            select("/b|base64", &payload).unwrap_err().to_string(),
            "/b is not a string of base64-encoded UTF-8 text"
        );
        assert_eq!(
            select("/missing|json/a", &payload).unwrap_err().to_string(),
            "/missing is missing or null"
        );
        assert_eq!(
            select("/doc|json/b/c", &payload).unwrap_err().to_string(),
            "/doc|json/b/c is missing or null"
        );
        assert_eq!(
            select("/doc|json/a", &payload).unwrap_err().to_string(),
            "/doc|json/a is missing or null"
        );
        assert!(matches!(
            select("/empty", &payload),
            Err(SelectError::Missing { .. })
        ));
        assert_eq!(
            select("|json", &json!("[1]")).unwrap(),
            json!([1]),
            "a step on the whole payload"
        );
        assert_eq!(
            select("|json", &json!(1)).unwrap_err().to_string(),
            "the payload is not a string of JSON"
        );
    }

    #[test]
    fn bad_selectors_are_configuration_errors() {
        for (text, reason) in [
            ("orderId", "must be empty or start with '/'"),
            ("/body|json2/a", "unknown step \"json2\""),
            ("/body|jsonx", "unknown step \"jsonx\""),
            ("/body|yaml/a", "unknown step \"yaml\""),
            ("/body|", "unknown step \"\""),
            ("/body|json|", "unknown step \"\""),
            ("/a~3b", "not an escape"),
            ("/a~", "not an escape"),
        ] {
            match Selector::parse(text) {
                Err(ConfigError::InvalidJsonPointer { pointer, reason: r }) => {
                    assert_eq!(pointer, text);
                    assert!(r.contains(reason), "{text}: {r}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["/a|json/b", "/a|base64|json/b", "|json", "/a|json"] {
            assert_eq!(Selector::parse(text).unwrap().to_string(), text);
        }
        assert!(Selector::parse("/a").unwrap().is_plain_pointer());
        assert!(!Selector::parse("/a|json").unwrap().is_plain_pointer());
    }
}
