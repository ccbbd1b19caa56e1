//! Property tests (proptest): the key parser, the RFC 8785 canonicaliser, the stored
//! response format (plain and compressed) and the record's DynamoDB item format.
//!
//! The record round trip runs against DynamoDB Local (needs
//! `AWS_ENDPOINT_URL_DYNAMODB`: `scripts/with-dynamodb-local.sh cargo test --test
//! properties`); everything else is pure. Case counts are modest so the file runs in
//! seconds in a debug build.

use crate::support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_http::http::{HeaderName, HeaderValue, StatusCode};
use lambda_idempotency::__internals::fit::{self, Fitted, MAX_PLAIN_RESPONSE};
use lambda_idempotency::__internals::{StoredBody, StoredResponse, canonicalize};
use lambda_idempotency::clock::{Clock, ManualClock, SystemClock};
use lambda_idempotency::fingerprint::Fingerprint;
use lambda_idempotency::http::DEFAULT_REPLAY_HEADERS;
use lambda_idempotency::key::{IdempotencyKey, KeyError, KeyKind, MAX_KEY_LEN};
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{BeginOutcome, BeginRequest, MemoryStore, Store, WriteOutcome};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn uuid_shaped(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Modest case counts, and no regression files written next to the tests.
fn config(cases: u32) -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_uuid_is_accepted_byte_exact(
        text in "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    ) {
        let key = IdempotencyKey::parse(&text).unwrap();
        prop_assert_eq!(key.kind(), KeyKind::Uuid);
        prop_assert_eq!(key.as_str(), text.as_str());
        prop_assert_eq!(IdempotencyKey::parse_bytes(text.as_bytes()).unwrap(), key);
    }

    #[test]
    fn every_slug_is_accepted_byte_exact(text in "[A-Za-z0-9_-]{1,255}") {
        let key = IdempotencyKey::parse(&text).unwrap();
        prop_assert_eq!(key.as_str(), text.as_str());
        let kind = if uuid_shaped(&text) { KeyKind::Uuid } else { KeyKind::Slug };
        prop_assert_eq!(key.kind(), kind);
        prop_assert_eq!(IdempotencyKey::parse_bytes(text.as_bytes()).unwrap(), key);
    }

    #[test]
    fn a_character_outside_the_set_is_named_with_its_position(
        prefix in "[A-Za-z0-9_-]{0,120}",
        bad in any::<char>().prop_filter("outside the allowed set", |c| !allowed(*c)),
        suffix in any::<String>().prop_map(|s| s.chars().take(120).collect::<String>()),
    ) {
        let text = format!("{prefix}{bad}{suffix}");
        let expected = if text.len() > MAX_KEY_LEN {
            KeyError::TooLong { len: text.len(), max: MAX_KEY_LEN }
        } else {
            KeyError::InvalidCharacter { position: prefix.chars().count() + 1, character: bad }
        };
        prop_assert_eq!(IdempotencyKey::parse(&text), Err(expected.clone()));
        prop_assert_eq!(IdempotencyKey::parse_bytes(text.as_bytes()), Err(expected));
    }

    #[test]
    fn longer_than_255_is_too_long(text in "[A-Za-z0-9_-]{256,700}") {
        let expected = KeyError::TooLong { len: text.len(), max: MAX_KEY_LEN };
        prop_assert_eq!(IdempotencyKey::parse(&text), Err(expected.clone()));
        prop_assert_eq!(IdempotencyKey::parse_bytes(text.as_bytes()), Err(expected));
    }

    #[test]
    fn any_string_is_parsed_or_refused_without_panicking(text in any::<String>()) {
        match IdempotencyKey::parse(&text) {
            Ok(key) => {
                prop_assert!(!text.is_empty() && text.len() <= MAX_KEY_LEN);
                prop_assert!(text.chars().all(allowed));
                prop_assert_eq!(key.as_str(), text.as_str());
            }
            Err(KeyError::Empty) => prop_assert!(text.is_empty()),
            Err(KeyError::TooLong { len, .. }) => prop_assert_eq!(len, text.len()),
            Err(KeyError::InvalidCharacter { character, position }) => {
                prop_assert!(!allowed(character));
                prop_assert_eq!(text.chars().nth(position - 1), Some(character));
                prop_assert!(text.chars().take(position - 1).all(allowed));
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn any_bytes_are_parsed_or_refused_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..320)
    ) {
        let parsed = IdempotencyKey::parse_bytes(&bytes);
        match std::str::from_utf8(&bytes) {
            Ok(text) => prop_assert_eq!(parsed, IdempotencyKey::parse(text)),
            Err(_) => prop_assert!(parsed.is_err()),
        }
    }
}

// ---------------------------------------------------------------------------------
// Canonical JSON
// ---------------------------------------------------------------------------------

/// JSON values as `serde_json` holds them, with every kind of number.
fn json_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        (-1_000_000i64..1_000_000, 0u32..6)
            .prop_map(|(m, e)| Value::from(m as f64 / 10f64.powi(e as i32))),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number,
        any::<String>().prop_map(|s| Value::String(s.chars().take(12).collect())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    any::<String>().prop_map(|s| s.chars().take(6).collect::<String>()),
                    inner
                ),
                0..6
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Whether two doubles are equal or a few units in the last place apart:
/// `serde_json` without its `float_roundtrip` feature may read a decimal a couple of
/// ULPs off (seen: 2 ULPs near 1e-227), so the parse of the canonical text is
/// compared with that tolerance here. That the canonical numbers themselves are
/// exact is checked with Rust's correctly rounding parser by
/// `canonical_numbers_are_exact`.
fn close(a: f64, b: f64) -> bool {
    a == b || (a.signum() == b.signum() && a.to_bits().abs_diff(b.to_bits()) <= 8)
}

/// JSON equality where numbers are compared by value (RFC 8785 writes `2.0` as `2`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                close(x.as_f64().unwrap(), y.as_f64().unwrap())
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// A tiny deterministic generator, so one `u64` seed drives the reshuffling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writes `value` as JSON with members shuffled, random insignificant whitespace and
/// some characters written as `\u` escapes.
fn write_shuffled(value: &Value, rng: &mut Rng, out: &mut String) {
    const SPACE: [&str; 6] = ["", "", " ", "\n", "\t", "\r\n  "];
    let ws = |rng: &mut Rng, out: &mut String| out.push_str(SPACE[rng.below(SPACE.len())]);
    ws(rng, out);
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_shuffled(item, rng, out);
            }
            ws(rng, out);
            out.push(']');
        }
        Value::Object(members) => {
            let mut members: Vec<_> = members.iter().collect();
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i + 1));
            }
            out.push('{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                write_string(name, rng, out);
                ws(rng, out);
                out.push(':');
                write_shuffled(item, rng, out);
            }
            ws(rng, out);
            out.push('}');
        }
        Value::String(s) => write_string(s, rng, out),
        other => out.push_str(&other.to_string()),
    }
    ws(rng, out);
}

fn write_string(s: &str, rng: &mut Rng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let must_escape = c == '"' || c == '\\' || c < ' ';
        if must_escape || rng.below(4) == 0 {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

fn canon(bytes: &[u8]) -> Vec<u8> {
    canonicalize(bytes).unwrap_or_else(|e| {
        panic!(
            "canonicalize({:?}) failed: {e}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Token soup: mostly-JSON byte strings that reach the parser's odd corners.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\"a\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"\\\"",
        "0",
        "-0",
        "1.5e300",
        "1e-400",
        "01",
        "-",
        "1.",
        "true",
        "null",
        "nul",
        "\"",
        "\\",
        "\u{7f}",
        "\u{feff}",
        "9007199254740993",
        "1E+2",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat().into_bytes())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn canonical_output_is_json_with_the_same_value(value in json_value()) {
        let canonical = canon(&serde_json::to_vec(&value).unwrap());
        let parsed: Value = serde_json::from_slice(&canonical).unwrap();
        prop_assert!(
            same_json(&parsed, &value),
            "{} parsed back as {}", value, parsed
        );
    }

    #[test]
    fn canonicalising_is_idempotent(value in json_value()) {
        let once = canon(&serde_json::to_vec(&value).unwrap());
        let twice = canon(&once);
        prop_assert_eq!(String::from_utf8(twice).unwrap(), String::from_utf8(once).unwrap());
    }

    #[test]
    fn member_order_whitespace_and_escapes_do_not_matter(
        value in json_value(),
        seed in any::<u64>(),
    ) {
        let mut reshuffled = String::new();
        write_shuffled(&value, &mut Rng(seed | 1), &mut reshuffled);
        let from_reshuffled = String::from_utf8(canon(reshuffled.as_bytes())).unwrap();
        let from_serde = String::from_utf8(canon(&serde_json::to_vec(&value).unwrap())).unwrap();
        prop_assert_eq!(from_reshuffled, from_serde, "reshuffled as {}", reshuffled);
    }

    #[test]
    fn canonical_numbers_are_exact(
        float in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        signed in any::<i64>(),
        unsigned in any::<u64>(),
    ) {
        // Doubles: the canonical text reads back as the same double (-0 becomes 0),
        // whichever way the input spelt it.
        for text in [format!("{float:e}"), format!("{float:?}"), serde_json::to_string(&float).unwrap()] {
            let canonical = String::from_utf8(canon(text.as_bytes())).unwrap();
            let back: f64 = canonical.parse().unwrap();
            prop_assert!(back == float, "{} -> {} -> {}", text, canonical, back);
            prop_assert!(!canonical.starts_with("-0") || canonical.len() > 2, "{}", canonical);
        }
        // Integers: their exact digits (the documented deviation above 2^53).
        prop_assert_eq!(String::from_utf8(canon(signed.to_string().as_bytes())).unwrap(), signed.to_string());
        prop_assert_eq!(String::from_utf8(canon(unsigned.to_string().as_bytes())).unwrap(), unsigned.to_string());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(canonical) = canonicalize(&bytes) {
            prop_assert_eq!(canon(&canonical), canonical);
        }
    }

    #[test]
    fn json_like_soup_never_panics_and_what_passes_is_stable(bytes in json_soup()) {
        if let Ok(canonical) = canonicalize(&bytes) {
            prop_assert!(is_json(&canonical), "{}", String::from_utf8_lossy(&canonical));
            prop_assert_eq!(canon(&canonical), canonical);
        }
    }
}

/// Whether `bytes` is one JSON document by the grammar. Numbers keep their exact value
/// however large (`1.5e3000`), which `serde_json` would refuse to read into a `Value`
/// (an f64); skipping the document checks the grammar without reading numbers.
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

#[test]
fn numbers_beyond_a_double_are_canonical_json() {
    // Found by json_like_soup_never_panics_and_what_passes_is_stable.
    for (text, canonical) in [("1.5e3000", "1.5e+3000"), ("-2E-4000", "-2e-4000")] {
        assert_eq!(
            String::from_utf8(canon(text.as_bytes())).unwrap(),
            canonical
        );
        assert!(is_json(canonical.as_bytes()), "{canonical}");
    }
    assert!(!is_json(b"1.5e"), "the grammar check refuses a bad number");
}

// ---------------------------------------------------------------------------------
// Numbers in fingerprints: equal values match, different values never do
// ---------------------------------------------------------------------------------

/// A JSON number: sign, significant digits, a decimal point somewhere (or none),
/// an exponent (or none). Exponents stay within ±400 so the oracle's arithmetic
/// stays small.
fn json_number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "[0-9]{1,24}",
        0usize..26,
        prop::option::of(-400i32..400),
        any::<bool>(),
    )
        .prop_map(|(negative, digits, point, exponent, upper)| {
            number_text(negative, &digits, point, exponent, upper)
        })
}

/// Writes `digits` with the decimal point after `point` digits, as JSON allows it
/// (no leading zeros in the integer part, at least one digit after a point).
fn number_text(
    negative: bool,
    digits: &str,
    point: usize,
    exponent: Option<i32>,
    upper: bool,
) -> String {
    let point = point.min(digits.len());
    let (int, frac) = digits.split_at(point);
    let int = int.trim_start_matches('0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if let Some(e) = exponent {
        out.push(if upper { 'E' } else { 'e' });
        out.push_str(&e.to_string());
    }
    out
}

/// Pairs of numbers that are often equal in value but spelt differently, or differ
/// in one place: the pairs a lossy comparison gets wrong.
fn number_pair() -> impl Strategy<Value = (String, String)> {
    let respelt = (
        any::<bool>(),
        "[1-9][0-9]{0,22}",
        0usize..24,
        -30i32..30,
        0usize..4,
    )
        .prop_map(|(negative, digits, point, exponent, zeros)| {
            // The same value: the point moved right by `shift` and the exponent down.
            let a = number_text(negative, &digits, point, Some(exponent), false);
            let padded = format!("{digits}{}", "0".repeat(zeros));
            let shift = 1.min(padded.len() - point.min(padded.len()));
            let b = number_text(
                negative,
                &padded,
                point + shift,
                Some(exponent - i32::try_from(shift).unwrap()),
                true,
            );
            (a, b)
        });
    let nudged = (
        any::<bool>(),
        "[1-9][0-9]{15,22}",
        0usize..24,
        prop::option::of(-20i32..20),
    )
        .prop_map(|(negative, digits, point, exponent)| {
            // One unit in the last place apart: below a double's precision.
            let mut other = digits.clone().into_bytes();
            let last = other.len() - 1;
            other[last] = if other[last] == b'9' {
                b'8'
            } else {
                other[last] + 1
            };
            let other = String::from_utf8(other).unwrap();
            (
                number_text(negative, &digits, point, exponent, false),
                number_text(negative, &other, point, exponent, false),
            )
        });
    prop_oneof![
        (json_number(), json_number()),
        respelt,
        nudged,
        Just((
            "18446744073709551616".to_owned(),
            "18446744073709551617".to_owned()
        )),
        Just((
            "9007199254740993.0".to_owned(),
            "9007199254740992".to_owned()
        )),
        Just(("0.1".to_owned(), "0.10000000000000001".to_owned())),
        Just(("1.0".to_owned(), "1".to_owned())),
        Just(("-0".to_owned(), "0.0e7".to_owned())),
    ]
}

fn amount_fingerprint(number: &str) -> Fingerprint {
    use lambda_idempotency::fingerprint::{BodyKind, FingerprintInput};
    let body = format!(r#"{{"amount":{number},"currency":"EUR"}}"#);
    Fingerprint::try_v2(&FingerprintInput {
        method: "POST",
        path: "/payments",
        query: &[],
        body: body.as_bytes(),
        body_kind: BodyKind::Json,
    })
    .unwrap_or_else(|e| panic!("{body}: {e}"))
}

proptest! {
    #![proptest_config(config(1024))]

    /// The fingerprints of two amounts are equal exactly when the amounts are
    /// (compared by an independent arbitrary-precision decimal), and the canonical
    /// text keeps the value.
    #[test]
    fn two_amounts_share_a_fingerprint_exactly_when_their_values_are_equal(
        (a, b) in number_pair(),
    ) {
        use std::str::FromStr;
        let (x, y) = (
            bigdecimal::BigDecimal::from_str(&a).unwrap(),
            bigdecimal::BigDecimal::from_str(&b).unwrap(),
        );
        prop_assert_eq!(
            amount_fingerprint(&a) == amount_fingerprint(&b),
            x == y,
            "{} vs {}", a, b
        );
        for (text, value) in [(&a, &x), (&b, &y)] {
            let canonical = String::from_utf8(canon(text.as_bytes())).unwrap();
            prop_assert_eq!(&bigdecimal::BigDecimal::from_str(&canonical).unwrap(), value, "{} -> {}", text, canonical);
        }
    }
}

// ---------------------------------------------------------------------------------
// Stored responses
// ---------------------------------------------------------------------------------

fn header_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        prop::sample::select(DEFAULT_REPLAY_HEADERS.to_vec()).prop_map(HeaderName::from_static),
        "x-[a-z0-9-]{1,24}".prop_map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()),
    ]
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    // Every byte a header value may hold: visible ASCII, space, tab and obs-text.
    let byte = prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')];
    prop::collection::vec(byte, 0..48).prop_map(|b| HeaderValue::from_bytes(&b).unwrap())
}

fn stored_response(
    body: impl Strategy<Value = StoredBody>,
) -> impl Strategy<Value = StoredResponse> {
    (
        (100u16..=999).prop_map(|s| StatusCode::from_u16(s).unwrap()),
        prop::collection::vec((header_name(), header_value()), 0..8),
        body,
    )
        .prop_map(|(status, headers, body)| StoredResponse {
            status,
            headers,
            body,
        })
}

/// Each header name's values, in order.
fn by_name(headers: &[(HeaderName, HeaderValue)]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut map: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.to_string())
            .or_default()
            .push(value.as_bytes().to_vec());
    }
    map
}

fn small_body() -> impl Strategy<Value = StoredBody> {
    prop_oneof![
        Just(StoredBody::Empty),
        any::<String>().prop_map(StoredBody::Text),
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(StoredBody::Binary),
    ]
}

/// Bodies past the plain limit: repetitive (compressible) text and binary, and
/// incompressible bytes that cannot be kept at all.
fn large_body() -> impl Strategy<Value = StoredBody> {
    let size = MAX_PLAIN_RESPONSE + 1..MAX_PLAIN_RESPONSE + 64 * 1024;
    prop_oneof![
        ("[ -~é€😀]{1,64}", size.clone()).prop_map(|(chunk, size)| {
            let mut text = chunk.repeat(size / chunk.len() + 1);
            let mut end = size;
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.truncate(end);
            StoredBody::Text(text)
        }),
        (prop::collection::vec(any::<u8>(), 1..64), size.clone()).prop_map(|(chunk, size)| {
            let mut bytes = chunk.repeat(size / chunk.len() + 1);
            bytes.truncate(size);
            StoredBody::Binary(bytes)
        }),
        (any::<u64>(), size).prop_map(|(seed, size)| {
            let mut rng = Rng(seed | 1);
            StoredBody::Binary((0..size).map(|_| rng.next() as u8).collect())
        }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn stored_responses_round_trip(response in stored_response(small_body())) {
        let encoded = response.encode();
        prop_assert_eq!(StoredResponse::decode(&encoded), Ok(response.clone()));
        // And a replay sends the stored status, body and headers (a header map
        // groups values by name, keeping each name's values in order).
        let replayed = StoredResponse::capture(&response.to_response(), |_| true);
        prop_assert_eq!(replayed.status, response.status);
        prop_assert_eq!(&replayed.body, &response.body);
        prop_assert_eq!(by_name(&replayed.headers), by_name(&response.headers));
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        with_magic in any::<bool>(),
    ) {
        let bytes = if with_magic { [b"LIR1".as_slice(), &bytes].concat() } else { bytes };
        if let Ok(response) = StoredResponse::decode(&bytes) {
            prop_assert_eq!(StoredResponse::decode(&response.encode()), Ok(response));
        }
    }
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn large_stored_responses_round_trip_through_compression(
        response in stored_response(large_body())
    ) {
        let encoded = response.encode();
        match fit::fit(&encoded) {
            Fitted::Plain => prop_assert!(false, "{} bytes stayed plain", encoded.len()),
            Fitted::Zstd(compressed) => {
                prop_assert!(compressed.len() <= fit::MAX_STORED_RESPONSE);
                let decompressed = fit::decompress(&compressed).unwrap();
                prop_assert_eq!(StoredResponse::decode(&decompressed), Ok(response));
            }
            // Incompressible and too large to keep: nothing to round-trip, but it
            // must really be too large.
            Fitted::Omitted => prop_assert!(encoded.len() > fit::MAX_STORED_RESPONSE),
        }
    }
}

// ---------------------------------------------------------------------------------
// Records in DynamoDB
// ---------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// One DynamoDB Local table for every case (keys never repeat) and a memory store
/// on the same clock. The clock starts at the real time and stays there: DynamoDB
/// Local runs TTL, so a record whose `expires_at` is already past in real time may
/// be deleted under the test at any moment.
fn stores() -> &'static (DynamoDbStore, MemoryStore) {
    static STORES: OnceLock<(DynamoDbStore, MemoryStore)> = OnceLock::new();
    STORES.get_or_init(|| {
        runtime().block_on(async {
            let client = support::client().await;
            let table = support::fresh_table(&client, &AttributeNames::default()).await;
            let clock = ManualClock::new(SystemClock.now_millis());
            (
                DynamoDbStore::new(client, table).with_clock(clock.clone()),
                MemoryStore::with_clock(clock),
            )
        })
    })
}

/// What a request brings to a record: any route, actor, key, fingerprint text and
/// response bytes (sometimes large enough to be stored compressed).
#[derive(Debug, Clone)]
struct RecordInput {
    route: String,
    actor: String,
    key: String,
    fingerprint: String,
    response: Vec<u8>,
    lease_secs: u64,
    expiry_secs: u64,
}

fn record_input() -> impl Strategy<Value = RecordInput> {
    static UNIQUE: AtomicU64 = AtomicU64::new(0);
    // At most 1 KB each, so the stored raw route and actor are not shortened.
    let text = |max: usize| {
        any::<String>().prop_map(move |s| {
            let mut end = s.len().min(max);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        })
    };
    let response = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..4096),
        1 => (prop::collection::vec(any::<u8>(), 1..32), MAX_PLAIN_RESPONSE..MAX_PLAIN_RESPONSE + 4096)
            .prop_map(|(chunk, size)| {
                let mut bytes = chunk.repeat(size / chunk.len() + 1);
                bytes.truncate(size);
                bytes
            }),
    ];
    (
        text(1024),
        text(1024),
        "[A-Za-z0-9_-]{1,200}",
        "[ -~]{1,80}",
        response,
        1u64..3600,
        300u64..259_200,
    )
        .prop_map(
            |(route, actor, key, fingerprint, response, lease_secs, expiry_secs)| {
                let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
                RecordInput {
                    route,
                    actor,
                    key: format!("{key}-{n}"),
                    fingerprint,
                    response,
                    lease_secs,
                    expiry_secs,
                }
            },
        )
}

/// Begins and completes `input` on `store`; returns the record as stored.
async fn write_record(
    store: &dyn Store,
    input: &RecordInput,
) -> (lambda_idempotency::store::Lease, Scope) {
    let scope = Scope::new(
        input.route.clone(),
        input.actor.clone(),
        IdempotencyKey::parse(&input.key).unwrap(),
    );
    let begin = BeginRequest {
        scope: scope.clone(),
        fingerprint: Fingerprint::from_stored(input.fingerprint.clone()),
        lease: Duration::from_secs(input.lease_secs),
        expiry: Duration::from_secs(input.expiry_secs),
    };
    let BeginOutcome::Started { lease, replaced } = store.begin(&begin).await.unwrap() else {
        panic!("a fresh key begins");
    };
    assert!(
        replaced.is_none(),
        "{store:?}: a fresh key replaced a record"
    );
    let outcome = store.complete(&lease, &input.response).await.unwrap();
    if outcome != WriteOutcome::Written {
        let now = store.get(scope.partition_key()).await;
        panic!("{store:?}: completion gave {outcome:?}; lease {lease:?}; the record now: {now:?}");
    }
    (lease, scope)
}

proptest! {
    #![proptest_config(config(48))]

    /// Record -> item -> Record through the DynamoDB store's codec (written by
    /// begin + complete, read back by `read_record`), compared field by field with
    /// the in-memory store's record for the same operations on the same clock.
    #[test]
    fn records_round_trip_through_dynamodb_items(input in record_input()) {
        let (dynamo, memory) = stores();
        let (from_dynamo, from_memory, lease, scope) = runtime().block_on(async {
            let (lease, scope) = write_record(dynamo, &input).await;
            let (memory_lease, _) = write_record(memory, &input).await;
            let from_dynamo = dynamo
                .read_record(scope.partition_key())
                .await
                .unwrap()
                .expect("the record");
            let mut from_memory = memory.get_raw(scope.partition_key()).expect("the record");
            // Lease tokens are random per begin; everything else must agree.
            prop_assert_eq!(&from_memory.lease_token, &memory_lease.token);
            from_memory.lease_token = lease.token.clone();
            Ok::<_, TestCaseError>((from_dynamo, from_memory, lease, scope))
        })?;

        prop_assert_eq!(&from_dynamo, &from_memory);
        prop_assert_eq!(from_dynamo.partition_key.as_str(), scope.partition_key());
        prop_assert_eq!(from_dynamo.status, Status::Completed);
        prop_assert_eq!(from_dynamo.fingerprint.as_str(), input.fingerprint.as_str());
        prop_assert_eq!(&from_dynamo.lease_token, &lease.token);
        prop_assert_eq!(from_dynamo.lease_expires_at_ms, lease.expires_at_ms);
        prop_assert_eq!(from_dynamo.expires_at, lease.record_expires_at);
        prop_assert_eq!(from_dynamo.response.as_deref(), Some(input.response.as_slice()));
        prop_assert_eq!(from_dynamo.response_omitted, None);
        prop_assert_eq!(
            (from_dynamo.route.as_str(), from_dynamo.actor.as_str(), from_dynamo.key.as_str()),
            (input.route.as_str(), input.actor.as_str(), input.key.as_str())
        );
    }
}
