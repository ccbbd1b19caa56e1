//! Where an event's idempotency key comes from, and what part of it is compared.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical_json::canonicalize_v1;
use crate::fingerprint::Fingerprint;
use crate::key::IdempotencyKey;

/// A function reading a value (a key, an actor) from an event payload as JSON.
pub type PayloadFn = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// Derives a key from an event payload (as JSON).
#[derive(Clone)]
pub enum KeySource {
    /// JSON pointers (RFC 6901) into the payload, e.g. `/orderId` or
    /// `/detail/paymentId`; every one must resolve to a non-null value.
    Pointers(Vec<String>),
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
            Self::Pointers(pointers) => {
                let mut values = Vec::with_capacity(pointers.len());
                for pointer in pointers {
                    match payload.pointer(pointer) {
                        None | Some(Value::Null) => {
                            return Err(NoKey(format!(
                                "{pointer} is missing or null in the payload"
                            )));
                        }
                        Some(Value::String(s)) if s.is_empty() => {
                            return Err(NoKey(format!("{pointer} is an empty string")));
                        }
                        Some(v) => values.push(v.clone()),
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
/// `pointers` (so fields that legitimately differ between deliveries, such as a
/// message id or a timestamp, do not make a retry look like a different request).
pub(crate) fn fingerprint_for(payload: &Value, pointers: Option<&[String]>) -> Fingerprint {
    match pointers {
        None => Fingerprint::of_json_value(payload),
        Some(pointers) => {
            let subset: serde_json::Map<String, Value> = pointers
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        payload.pointer(p).cloned().unwrap_or(Value::Null),
                    )
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
        KeySource::Pointers(p.iter().map(|s| (*s).to_owned()).collect())
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
        let subset = ["/payment".to_owned()];
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
}
