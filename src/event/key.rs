//! Where an event's idempotency key comes from, and what part of it is compared.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::selector::{Evaluated, SelectError, Selector};
use crate::canonical_json::canonicalize_v1;
use crate::fingerprint::Fingerprint;
use crate::key::IdempotencyKey;

/// A function reading a value (a key, an actor) from an event payload as JSON.
pub type PayloadFn = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// Derives a key from an event payload (as JSON).
#[derive(Clone)]
pub enum KeySource {
    /// [Selectors](Selector) into the payload: JSON pointers such as `/orderId` or
    /// `/detail/paymentId`, or with decoding steps such as `/body|json/orderId`;
    /// every one must select a non-null value.
    Pointers(Vec<Selector>),
    /// A function of the payload; `None` or an empty string means "no key".
    Custom(PayloadFn),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pointers(p) => f.debug_tuple("Pointers").field(p).finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Why no key could be derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoKey(pub(crate) String);

impl KeySource {
    /// The key for `payload`.
    ///
    /// One string that is already a valid key (a UUID or slug) is used as is, and so
    /// is one integer; anything else (several values, objects, other strings) is
    /// hashed: `sha256-` and the SHA-256 of the values' canonical JSON. The raw
    /// values stay in the payload; the record keeps the key actually used.
    pub(crate) fn key_for(&self, payload: &Value) -> Result<IdempotencyKey, NoKey> {
        match self {
            Self::Pointers(selectors) => {
                let mut values = Vec::with_capacity(selectors.len());
                for selector in selectors {
                    match selector.select(payload) {
                        Err(e @ SelectError::Missing { .. }) => {
                            return Err(NoKey(format!("{e} in the payload")));
                        }
                        Err(e) => return Err(NoKey(e.to_string())),
                        Ok(v) if v.as_str() == Some("") => {
                            return Err(NoKey(format!("{selector} is an empty string")));
                        }
                        Ok(v) => values.push(v.into_owned()),
                    }
                }
                match values.as_slice() {
                    [Value::String(s)] => {
                        Ok(usable(s).unwrap_or_else(|| hashed(&Value::String(s.clone()))))
                    }
                    [Value::Number(n)] if n.is_i64() || n.is_u64() => {
                        Ok(usable(&n.to_string())
                            .unwrap_or_else(|| hashed(&Value::Number(n.clone()))))
                    }
                    _ => Ok(hashed(&Value::Array(values))),
                }
            }
            Self::Custom(f) => match f(payload) {
                Some(s) if !s.is_empty() => {
                    Ok(usable(&s).unwrap_or_else(|| hashed(&Value::String(s))))
                }
                _ => Err(NoKey(
                    "the key function found no key in the payload".to_owned(),
                )),
            },
        }
    }
}

fn usable(text: &str) -> Option<IdempotencyKey> {
    IdempotencyKey::parse(text).ok()
}

fn hashed(value: &Value) -> IdempotencyKey {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    // The first release's canonical form, forever: a key must never change, or a
    // retry would find no record and run again.
    let canonical = canonicalize_v1(&bytes).unwrap_or(bytes);
    let digest = Sha256::digest(&canonical);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256-");
    for b in digest.iter() {
        text.push_str(&format!("{b:02x}"));
    }
    IdempotencyKey::from_valid_slug(text)
}

/// The fingerprint of an event: the whole payload, or only the parts named by
/// `selectors` (so fields that legitimately differ between deliveries, such as a
/// message id or a timestamp, do not make a retry look like a different request).
///
/// A part that is missing counts as `null`. A part a step cannot decode (a body that
/// is not JSON) counts as the raw value, under a name no selector can have, so two
/// different undecodable bodies never look like the same request.
pub(crate) fn fingerprint_for(payload: &Value, selectors: Option<&[Selector]>) -> Fingerprint {
    match selectors {
        None => Fingerprint::of_json_value(payload),
        Some(selectors) => {
            let subset: serde_json::Map<String, Value> = selectors
                .iter()
                .map(|selector| match selector.evaluate(payload) {
                    Evaluated::Found(value) => (selector.to_string(), value.into_owned()),
                    Evaluated::Missing(_) => (selector.to_string(), Value::Null),
                    Evaluated::Undecodable { raw, .. } => {
                        (format!("{selector}|undecodable"), raw.into_owned())
                    }
                })
                .collect();
            Fingerprint::of_json_value(&Value::Object(subset))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(p: &[&str]) -> KeySource {
        KeySource::Pointers(p.iter().map(|s| Selector::parse(s).unwrap()).collect())
    }

    fn selectors(p: &[&str]) -> Vec<Selector> {
        p.iter().map(|s| Selector::parse(s).unwrap()).collect()
    }

    #[test]
    fn a_single_valid_string_or_integer_is_the_key() {
        let payload = json!({"orderId": "ord-1", "n": 42, "detail": {"paymentId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}});
        assert_eq!(
            pointers(&["/orderId"]).key_for(&payload).unwrap().as_str(),
            "ord-1"
        );
        assert_eq!(pointers(&["/n"]).key_for(&payload).unwrap().as_str(), "42");
        assert_eq!(
            pointers(&["/detail/paymentId"])
                .key_for(&payload)
                .unwrap()
                .as_str(),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
        );
    }

    #[test]
    fn anything_else_is_hashed_and_distinct() {
        let payload = json!({"a": "x y", "b": "x", "c": "y", "o": {"k": 1}, "f": 1.5});
        let spaced = pointers(&["/a"]).key_for(&payload).unwrap();
        assert!(spaced.as_str().starts_with("sha256-"));
        assert_eq!(spaced.as_str().len(), 71);
        let pair = pointers(&["/b", "/c"]).key_for(&payload).unwrap();
        let swapped = pointers(&["/c", "/b"]).key_for(&payload).unwrap();
        assert_ne!(pair, swapped, "order of values matters");
        assert_ne!(pair, spaced);
        assert!(
            pointers(&["/o"])
                .key_for(&payload)
                .unwrap()
                .as_str()
                .starts_with("sha256-")
        );
        assert!(
            pointers(&["/f"])
                .key_for(&payload)
                .unwrap()
                .as_str()
                .starts_with("sha256-")
        );
    }

    #[test]
    fn missing_null_or_empty_is_no_key() {
        let payload = json!({"a": null, "b": "", "c": "ok"});
        for p in ["/a", "/b", "/zzz"] {
            let err = pointers(&[p]).key_for(&payload).unwrap_err();
            assert!(err.0.contains(p), "{err:?}");
        }
        assert!(pointers(&["/c", "/a"]).key_for(&payload).is_err());
        let custom = KeySource::Custom(Arc::new(|v: &Value| {
            v.get("b").and_then(Value::as_str).map(str::to_owned)
        }));
        assert!(custom.key_for(&payload).is_err());
    }

    #[test]
    fn fingerprint_subset_ignores_other_fields() {
        let a = json!({"messageId": "m-1", "payment": {"id": "p", "amount": 5}});
        let b = json!({"messageId": "m-2", "payment": {"amount": 5, "id": "p"}});
        let c = json!({"messageId": "m-1", "payment": {"id": "p", "amount": 6}});
        let subset = selectors(&["/payment"]);
        assert_eq!(
            fingerprint_for(&a, Some(&subset)),
            fingerprint_for(&b, Some(&subset))
        );
        assert_ne!(
            fingerprint_for(&a, Some(&subset)),
            fingerprint_for(&c, Some(&subset))
        );
        assert_ne!(fingerprint_for(&a, None), fingerprint_for(&b, None));
    }

    #[test]
    fn keys_and_fingerprints_reach_into_json_strings() {
        let message = |id: &str, body: &str| json!({"messageId": id, "body": body});
        let a = message("m-1", r#"{"orderId": "o-1", "amount": 5}"#);
        let b = message("m-2", r#"{ "amount": 5,  "orderId": "o-1" }"#);
        let c = message("m-1", r#"{"orderId": "o-1", "amount": 6}"#);
        let key = pointers(&["/body|json/orderId"]);
        assert_eq!(key.key_for(&a).unwrap().as_str(), "o-1");
        assert_eq!(key.key_for(&b).unwrap().as_str(), "o-1");
        let body = selectors(&["/body|json"]);
        assert_eq!(
            fingerprint_for(&a, Some(&body)),
            fingerprint_for(&b, Some(&body)),
            "the same document, spelled differently"
        );
        assert_ne!(
            fingerprint_for(&a, Some(&body)),
            fingerprint_for(&c, Some(&body))
        );

        let poison = message("m-3", "not json");
        let err = key.key_for(&poison).unwrap_err();
        assert_eq!(err.0, "/body is not a string of JSON");
        let other_poison = message("m-3", "also not json");
        assert_ne!(
            fingerprint_for(&poison, Some(&body)),
            fingerprint_for(&other_poison, Some(&body)),
            "undecodable bodies are compared as they are"
        );
        assert_eq!(
            fingerprint_for(&poison, Some(&body)),
            fingerprint_for(&message("m-4", "not json"), Some(&body))
        );
        let lookalike = message("m-3", r#"{"/body|json|undecodable": "not json"}"#);
        assert_ne!(
            fingerprint_for(&poison, Some(&body)),
            fingerprint_for(&lookalike, Some(&body))
        );
    }
}
