//! The `Idempotency-Key` parser, plain and quoted (RFC 8941 string) forms: never
//! panics, accepts only what a key may be, and both forms of a key are one key.
#![no_main]

use lambda_idempotency::key::IdempotencyKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match IdempotencyKey::parse_bytes(data) {
        Ok(key) => {
            let text = key.as_str();
            assert_eq!(text.as_bytes(), data, "a key is its bytes");
            assert!(!text.is_empty() && text.len() <= 255, "{text:?}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text:?}"
            );
            let quoted = [&b"\""[..], data, &b"\""[..]].concat();
            assert_eq!(IdempotencyKey::parse_header(&quoted).unwrap(), key);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match IdempotencyKey::parse_header(data) {
        Ok(key) => {
            let trimmed = data.trim_ascii();
            let inner = trimmed
                .strip_prefix(b"\"")
                .and_then(|rest| rest.strip_suffix(b"\""))
                .unwrap_or(data);
            assert_eq!(
                key.as_str().as_bytes(),
                inner,
                "the header's key is its content"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
