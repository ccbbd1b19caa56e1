//! The canonical JSON fingerprint's canonicaliser: never panics; in the form whose
//! numbers go through doubles (fingerprint v1, RFC 8785's own rule) it agrees with
//! the tree-based oracle on every input (the same kind of refusal, or the same
//! bytes); the exact form (v2, numbers kept exact) is its own canonical form, and the
//! same JSON value re-serialised with other whitespace, key order and string escapes
//! canonicalises to the same bytes.
#![no_main]

use lambda_idempotency::__internals::{canonicalize, canonicalize_reference, canonicalize_v1};
use lambda_idempotency::fingerprint::Fingerprint;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let v1 = canonicalize_v1(data);
    let tree = canonicalize_reference(data);
    match (&v1, &tree) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "one-pass and tree outputs differ"),
        // The same kind of refusal; except that on bytes that are not UTF-8 the
        // one-pass parser reports that first, where the tree may first meet the
        // nesting limit (both refuse; found by this target, see VERIFICATION.md).
        (Err(a), Err(b)) if std::str::from_utf8(data).is_ok() => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "one-pass {a:?} but tree {b:?}"
        ),
        (Err(_), Err(_)) => {}
        _ => panic!("one-pass {v1:?} but tree {tree:?}"),
    }
    let Ok(canonical) = canonicalize(data) else {
        return;
    };
    assert_eq!(
        canonicalize(&canonical).as_ref(),
        Ok(&canonical),
        "not a fixed point"
    );
    // serde_json's Value keeps only f64 for non-integers, which may change a number's
    // value: re-serialise only documents whose numbers are all integers it keeps.
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if exact_in_value(&value) {
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert_eq!(
            canonicalize(&pretty).unwrap(),
            canonical,
            "same value, other form"
        );
        assert_eq!(
            Fingerprint::of_json_value(&value),
            Fingerprint::of_json_value(&serde_json::from_slice(&pretty).unwrap())
        );
    }
});

fn exact_in_value(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Array(items) => items.iter().all(exact_in_value),
        Value::Object(members) => members.values().all(exact_in_value),
        _ => true,
    }
}
