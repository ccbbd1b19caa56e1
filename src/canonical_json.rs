//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Two JSON documents that mean the same thing (same members and values, but
//! different member order, whitespace or escaping) must produce the same
//! request fingerprint, while any change of value must not. [`canonicalize`]
//! turns a JSON document into its RFC 8785 canonical byte form so it can be
//! hashed.
//!
//! What the canonical form looks like:
//!
//! * no insignificant whitespace;
//! * object members sorted by name, comparing names as sequences of UTF-16
//!   code units (as RFC 8785 section 3.2.3 requires; this differs from UTF-8
//!   byte order for characters above U+FFFF versus U+E000..U+FFFF);
//! * strings escaped exactly as RFC 8785 section 3.2.2.2 says: `\"`, `\\`,
//!   `\b`, `\f`, `\n`, `\r`, `\t`, other control characters below U+0020 as
//!   `\u00xx` with lowercase hex, everything else (including `/`, U+007F and
//!   all non-ASCII characters) literally as UTF-8;
//! * non-integer numbers (and integers written with a fraction or exponent,
//!   or too large for 64 bits) formatted like ECMAScript
//!   `Number.prototype.toString`, as RFC 8785 section 3.2.2.3 requires
//!   (`-0` becomes `0`, `1E30` becomes `1e+30`, `4.50` becomes `4.5`).
//!
//! Input that is not strict JSON is rejected rather than guessed at: invalid
//! UTF-8, lone surrogate escapes, trailing data, nesting of 128 levels or more
//! (`serde_json`'s recursion limit: an error, never a stack overflow),
//! and objects with duplicate member names (RFC 8785 relies on I-JSON, which
//! forbids them; accepting them would make "which value wins" ambiguous).
//!
//! # Deliberate deviation from RFC 8785: large integers
//!
//! Strict JCS converts every number to an IEEE 754 double, so two different
//! integers above 2^53 (for example two amounts of money in minor units) can
//! round to the same double and thus to the same canonical text. That would
//! let two different requests share a fingerprint. This module therefore
//! writes integers that are written without fraction or exponent and fit in
//! `u64` / `i64` as their exact decimal digits. For magnitudes up to 2^53 this
//! is identical to JCS; above that it differs from JCS (JCS would print the
//! rounded double). A consequence is that `9007199254740993` and
//! `9007199254740993.0` canonicalise differently; that can only cause a false
//! "different request", never a false "same request". Integers too large for
//! 64 bits are treated as doubles, exactly as in JCS.
//!
//! # Number parsing precision
//!
//! Without its `float_roundtrip` feature, `serde_json` parses some decimal
//! numbers to a double one unit in the last place away from the correctly
//! rounded value (RFC 8785's own example `333333333.33333329` is one). So that
//! the output does not depend on that feature, the literal text of every
//! non-integer number is re-read with Rust's correctly rounding
//! [`str::parse::<f64>`](str::parse) after `serde_json` has validated the
//! document. `serde_json`'s `arbitrary_precision` feature must not be enabled
//! for this crate: it changes how numbers reach the parser here.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a byte string could not be canonicalised; callers usually fall back
/// to treating the bytes as opaque.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalJsonError {
    /// The input is not a single, valid JSON text (syntax error, invalid
    /// UTF-8, lone surrogate, trailing data, number out of range, ...). Holds
    /// the parser's message.
    #[error("invalid JSON: {0}")]
    Invalid(String),
    /// The input nests arrays/objects 128 levels deep or more (the parser's
    /// recursion limit; 127 levels are accepted), which is refused to avoid
    /// unbounded stack use.
    #[error("JSON nesting exceeds the recursion limit")]
    TooDeep,
    /// An object has two members with the same name (after unescaping), so
    /// its meaning is ambiguous and it has no canonical form.
    #[error("duplicate object member name {0:?}")]
    DuplicateKey(String),
}

/// Parses `input` as a single JSON text and returns its RFC 8785 canonical
/// serialisation, so that semantically equal documents hash identically.
///
/// See the [module documentation](self) for the exact rules, including the
/// deliberate deviation for integers above 2^53.
///
/// # Errors
///
/// Returns [`CanonicalJsonError`] if `input` is not valid JSON, nests too
/// deeply, or contains an object with duplicate member names.
///
/// # Examples
///
/// ```
/// use lambda_idempotency::canonical_json::canonicalize;
///
/// let a = canonicalize(br#"{ "b": [1.50, true], "a": "x" }"#).unwrap();
/// let b = canonicalize(br#"{"a":"x","b":[1.5,true]}"#).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a, br#"{"a":"x","b":[1.5,true]}"#);
///
/// assert!(canonicalize(br#"{"a":1,"a":2}"#).is_err());
/// ```
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut tree = parse(input)?;
    let mut numbers = NumberTokens::new(input);
    fix_floats(&mut tree, &mut numbers)?;
    if numbers.next().is_some() {
        return Err(token_mismatch());
    }
    let mut out = Vec::with_capacity(input.len());
    write_node(&tree, &mut out)?;
    Ok(out)
}

/// Parsed JSON value that keeps object members in input order (so duplicates
/// can be detected) and keeps integers exact.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

fn parse(input: &[u8]) -> Result<Node, CanonicalJsonError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let node = Node::deserialize(&mut de).map_err(|err| map_parse_error(&err))?;
    de.end().map_err(|err| map_parse_error(&err))?;
    Ok(node)
}

fn map_parse_error(err: &serde_json::Error) -> CanonicalJsonError {
    let message = err.to_string();
    // serde_json does not expose its error code; its message is stable.
    if message.starts_with("recursion limit exceeded") {
        CanonicalJsonError::TooDeep
    } else {
        CanonicalJsonError::Invalid(message)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some((name, value)) = map.next_entry::<String, Node>()? {
            members.push((name, value));
        }
        Ok(Node::Object(members))
    }
}

/// Iterates over the literal text of the number tokens of an already
/// validated JSON document, in document order (the order in which the parser
/// reported them).
struct NumberTokens<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> NumberTokens<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }
}

impl<'a> Iterator for NumberTokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut in_string = false;
        let mut escaped = false;
        while let Some(&byte) = self.input.get(self.pos) {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
                self.pos += 1;
            } else if byte == b'"' {
                in_string = true;
                self.pos += 1;
            } else if byte == b'-' || byte.is_ascii_digit() {
                let start = self.pos;
                while self
                    .input
                    .get(self.pos)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    self.pos += 1;
                }
                return self.input.get(start..self.pos);
            } else {
                self.pos += 1;
            }
        }
        None
    }
}

/// Replaces every `F64` with the correctly rounded value of its literal text
/// (see "Number parsing precision" in the module docs). Walks the tree in
/// document order, which is the order the number tokens appear in.
fn fix_floats(node: &mut Node, numbers: &mut NumberTokens<'_>) -> Result<(), CanonicalJsonError> {
    match node {
        Node::Null | Node::Bool(_) | Node::String(_) => Ok(()),
        Node::U64(_) | Node::I64(_) => numbers.next().map(|_| ()).ok_or_else(token_mismatch),
        Node::F64(value) => {
            let token = numbers.next().ok_or_else(token_mismatch)?;
            let parsed = std::str::from_utf8(token)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .filter(|parsed| parsed.is_finite())
                .ok_or_else(token_mismatch)?;
            *value = parsed;
            Ok(())
        }
        Node::Array(items) => items
            .iter_mut()
            .try_for_each(|item| fix_floats(item, numbers)),
        Node::Object(members) => members
            .iter_mut()
            .try_for_each(|(_, value)| fix_floats(value, numbers)),
    }
}

fn token_mismatch() -> CanonicalJsonError {
    CanonicalJsonError::Invalid(
        "internal error: number literals do not match the parsed document".to_owned(),
    )
}

fn write_node(node: &Node, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::U64(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Node::I64(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Node::F64(v) => write_f64(*v, out)?,
        Node::String(s) => write_string(s, out),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_node(item, out)?;
            }
            out.push(b']');
        }
        Node::Object(members) => {
            let mut sorted: Vec<&(String, Node)> = members.iter().collect();
            sorted.sort_by(|a, b| cmp_utf16(&a.0, &b.0));
            for pair in sorted.windows(2) {
                if let [(a, _), (b, _)] = pair
                    && a == b
                {
                    return Err(CanonicalJsonError::DuplicateKey(a.clone()));
                }
            }
            out.push(b'{');
            for (i, (name, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                write_node(value, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Orders strings by their UTF-16 code units, as RFC 8785 section 3.2.3
/// requires for member names.
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes a JSON string literal escaped per RFC 8785 section 3.2.2.2.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            _ => None,
        };
        if escape.is_none() && byte >= 0x20 {
            // Copied literally as part of the current run (this includes
            // every byte of multi-byte UTF-8 sequences, which are >= 0x80).
            continue;
        }
        out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
        run_start = i + 1;
        if let Some(seq) = escape {
            out.extend_from_slice(seq);
        } else {
            let hi = HEX.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(byte & 0x0f)).copied().unwrap_or(b'0');
            out.extend_from_slice(b"\\u00");
            out.push(hi);
            out.push(lo);
        }
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.push(b'"');
}

/// Writes a double like ECMAScript `Number.prototype.toString`
/// (RFC 8785 section 3.2.2.3).
fn write_f64(value: f64, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    if !value.is_finite() {
        // Cannot come from JSON text; refuse rather than invent a spelling.
        return Err(CanonicalJsonError::Invalid(
            "non-finite number cannot be represented in JSON".to_owned(),
        ));
    }
    if value == 0.0 {
        // Covers -0.0 as well.
        out.push(b'0');
        return Ok(());
    }
    if value < 0.0 {
        out.push(b'-');
    }
    let scientific = ecmascript_digits(value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .and_then(|(m, e)| e.parse::<i32>().ok().map(|e| (m, e)))
        .ok_or_else(|| {
            CanonicalJsonError::Invalid(format!("unexpected float formatting {scientific:?}"))
        })?;
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    // ECMAScript's n: the value is 0.d1d2...dk * 10^n.
    let n = i64::from(exponent) + 1;

    if k <= n && n <= 21 {
        // Integer: digits followed by n - k zeros.
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(
            b'0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        // Decimal point inside the digits.
        let split = usize::try_from(n).unwrap_or(0);
        let (int_part, frac_part) = digits.split_at(split.min(digits.len()));
        out.extend_from_slice(int_part);
        out.push(b'.');
        out.extend_from_slice(frac_part);
    } else if -6 < n && n <= 0 {
        // Small: "0." followed by -n zeros and the digits.
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', usize::try_from(-n).unwrap_or(0)));
        out.extend_from_slice(&digits);
    } else {
        // Exponent notation: d[.ddd]e(+|-)x.
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'e');
        let e = n - 1;
        out.push(if e > 0 { b'+' } else { b'-' });
        out.extend_from_slice(e.unsigned_abs().to_string().as_bytes());
    }
    Ok(())
}

/// Returns the digits ECMAScript would choose for a finite positive `value`,
/// in Rust's `{:e}` layout (`d.ddde<exp>` or `de<exp>`).
///
/// ECMAScript wants the fewest digits `k` that round-trip, then, among the
/// round-tripping `k`-digit strings, the one closest to the value, ties to
/// even. Rust's `{:e}` gives the shortest round-tripping digits but may pick
/// the other candidate of an exact tie (RFC 8785's `1424953923781206.2`
/// comes out as `...206.3`), so the correctly rounded `k`-digit form (Rust's
/// fixed-precision formatting rounds exactly, ties to even) is preferred
/// whenever it round-trips too.
fn ecmascript_digits(value: f64) -> String {
    let shortest = format!("{value:e}");
    let digit_count = shortest.split_once('e').map_or(0, |(mantissa, _)| {
        mantissa.bytes().filter(u8::is_ascii_digit).count()
    });
    let rounded = format!("{value:.prec$e}", prec = digit_count.saturating_sub(1));
    if rounded != shortest && rounded.parse::<f64>().ok() == Some(value) {
        rounded
    } else {
        shortest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(input: &str) -> String {
        match canonicalize(input.as_bytes()) {
            Ok(bytes) => String::from_utf8(bytes).expect("canonical output is UTF-8"),
            Err(err) => panic!("canonicalize({input:?}) failed: {err}"),
        }
    }

    fn number(input: &str) -> String {
        canon(input)
    }

    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_number_examples() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0.0", "0"),
            ("0e10", "0"),
            ("1E30", "1e+30"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("1.5e-7", "1.5e-7"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("1.5e21", "1.5e+21"),
            ("123456789012345678901", "123456789012345680000"),
            ("333333333.33333329", "333333333.3333333"),
            ("5e-324", "5e-324"),
            ("-5e-324", "-5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("-1.7976931348623157e308", "-1.7976931348623157e+308"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740992.0", "9007199254740992"),
            ("-9007199254740992", "-9007199254740992"),
            ("-1.5", "-1.5"),
            ("1.5", "1.5"),
            ("100", "100"),
            ("1e2", "100"),
            ("100.0", "100"),
            ("0.1", "0.1"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("123.456", "123.456"),
            ("1e-6", "0.000001"),
            ("-1e-6", "-0.000001"),
            ("1.23e-5", "0.0000123"),
            ("4.35", "4.35"),
            ("0.002", "0.002"),
            ("295147905179352830000", "295147905179352830000"),
            ("1e+1", "10"),
            ("1E-1", "0.1"),
        ];
        for (input, expected) in cases {
            assert_eq!(number(input), expected, "input {input}");
        }
    }

    #[test]
    fn rfc8785_ieee754_appendix_b_examples() {
        // Appendix B of RFC 8785: IEEE 754 bit patterns and their JCS text.
        let cases: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            let mut out = Vec::new();
            write_f64(f64::from_bits(bits), &mut out).expect("finite");
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                expected,
                "bits {bits:#x}"
            );
            // And the same through the parser, using Rust's shortest text.
            let text = format!("{:e}", f64::from_bits(bits));
            assert_eq!(number(&text), expected, "text {text}");
        }
    }

    #[test]
    fn non_finite_is_refused_by_formatter() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(write_f64(value, &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn correctly_rounded_parsing_independent_of_serde_json_features() {
        // Each pair denotes the same double; serde_json without
        // `float_roundtrip` gets some of the left-hand sides wrong.
        let cases = [
            ("333333333.33333329", "333333333.3333333"),
            ("1.23456789012345678e-300", "1.2345678901234568e-300"),
            ("2.4703282292062328e-324", "5e-324"),
            ("9007199254740993.0", "9007199254740992"),
        ];
        for (input, expected) in cases {
            assert_eq!(number(input), expected, "input {input}");
        }
    }

    #[test]
    fn large_integers_are_exact() {
        // Deliberate deviation from JCS: exact digits above 2^53.
        assert_eq!(number("9007199254740993"), "9007199254740993");
        assert_eq!(number("-9007199254740993"), "-9007199254740993");
        assert_eq!(number("18446744073709551615"), "18446744073709551615");
        assert_eq!(number("-9223372036854775808"), "-9223372036854775808");
        assert_ne!(
            canonicalize(b"{\"amount\":12345678901234567}"),
            canonicalize(b"{\"amount\":12345678901234568}")
        );
        // Beyond 64 bits: treated as a double like JCS.
        assert_eq!(number("18446744073709551616"), "18446744073709552000");
        assert_eq!(number("-9223372036854775809"), "-9223372036854776000");
    }

    #[test]
    fn string_escaping() {
        assert_eq!(canon(r#""\u0000\u0001\u001f""#), r#""\u0000\u0001\u001f""#);
        assert_eq!(canon(r#""\u001F\u000B""#), r#""\u001f\u000b""#);
        assert_eq!(
            canon(r#""\b\f\n\r\t\"\\\/""#),
            r#""\b\f\n\r\t\"\\/""#,
            "short escapes, solidus unescaped"
        );
        assert_eq!(canon(r#""\u0008\u000c""#), r#""\b\f""#);
        assert_eq!(canon("\"\u{7f}\""), "\"\u{7f}\"");
        assert_eq!(canon(r#""\u007f""#), "\"\u{7f}\"");
        assert_eq!(canon(r#""\u00e9\u20AC\ud83d\ude00""#), "\"é€😀\"");
        assert_eq!(canon("\"é€😀\""), "\"é€😀\"");
        assert_eq!(canon(r#""plain ascii""#), r#""plain ascii""#);
        assert_eq!(canon(r#""""#), r#""""#);
        assert_eq!(canon(r#"{"\n":"\u0041"}"#), r#"{"\n":"A"}"#);
    }

    #[test]
    fn member_names_sorted_by_utf16_code_units() {
        // U+1F600 is D83D DE00 in UTF-16, which sorts before U+E000 (E000),
        // although its UTF-8 bytes (F0 ..) sort after those of U+E000 (EE ..).
        let input = "{\"\u{e000}\":1,\"\u{1f600}\":2,\"a\":3,\"\u{ff}\":4}";
        assert_eq!(
            canon(input),
            "{\"a\":3,\"\u{ff}\":4,\"\u{1f600}\":2,\"\u{e000}\":1}"
        );
        let reversed = "{\"\u{ff}\":4,\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}";
        assert_eq!(canon(reversed), canon(input));
        assert_eq!(cmp_utf16("\u{1f600}", "\u{e000}"), Ordering::Less);
        assert_eq!("\u{1f600}".cmp("\u{e000}"), Ordering::Greater);
    }

    #[test]
    fn rfc8785_sorting_example() {
        // RFC 8785 section 3.2.3.
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(input), expected);
    }

    #[test]
    fn nested_structures_and_literals() {
        assert_eq!(
            canon(r#" [ { "b" : { "d" : [ ] , "c" : { } } , "a" : null } , true , false , "" ] "#),
            r#"[{"a":null,"b":{"c":{},"d":[]}},true,false,""]"#
        );
        assert_eq!(canon("null"), "null");
        assert_eq!(canon(" 42 "), "42");
        assert_eq!(canon(r#""top-level string""#), r#""top-level string""#);
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = canon(r#"{"id":7,"items":[{"sku":"x","qty":2}],"note":"hi"}"#);
        let b = canon(
            "{\n  \"note\" : \"hi\",\r\n\t\"items\":[ {\"qty\":2.0, \"sku\":\"x\"} ],\"id\":7}",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn any_value_change_matters() {
        let base = canon(r#"{"id":7,"items":[{"sku":"x","qty":2}],"note":"hi"}"#);
        let changed = [
            r#"{"id":8,"items":[{"sku":"x","qty":2}],"note":"hi"}"#,
            r#"{"id":"7","items":[{"sku":"x","qty":2}],"note":"hi"}"#,
            r#"{"id":7,"items":[{"sku":"y","qty":2}],"note":"hi"}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2.5}],"note":"hi"}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2}],"note":"hi "}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2}],"note":null}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2}]}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2},{}],"note":"hi"}"#,
            r#"{"id":7,"items":[{"sku":"x","qty":2}],"note":"hi","x":false}"#,
            r#"{"id":7,"items":[{"qty":2}],"note":"hi","sku":"x"}"#,
            r#"{"ID":7,"items":[{"sku":"x","qty":2}],"note":"hi"}"#,
        ];
        for input in changed {
            assert_ne!(canon(input), base, "input {input}");
        }
    }

    #[test]
    fn array_order_matters() {
        assert_ne!(canon("[1,2]"), canon("[2,1]"));
    }

    #[test]
    fn duplicate_member_names_are_rejected() {
        assert_eq!(
            canonicalize(br#"{"a":1,"b":2,"a":3}"#),
            Err(CanonicalJsonError::DuplicateKey("a".to_owned()))
        );
        // Duplicates after unescaping count too.
        assert_eq!(
            canonicalize(br#"{"a":1,"\u0061":1}"#),
            Err(CanonicalJsonError::DuplicateKey("a".to_owned()))
        );
        // Nested objects are checked too.
        assert!(matches!(
            canonicalize(br#"[{"x":{"k":1,"k":1}}]"#),
            Err(CanonicalJsonError::DuplicateKey(_))
        ));
        // The same name in different objects is fine.
        assert_eq!(canon(r#"[{"a":1},{"a":2}]"#), r#"[{"a":1},{"a":2}]"#);
    }

    #[test]
    fn invalid_input_is_rejected() {
        let invalid: [&[u8]; 19] = [
            b"",
            b"   ",
            b"{",
            b"{\"a\":1,}",
            b"[1,]",
            b"{\"a\":1} x",
            b"{} {}",
            b"1 2",
            b"'a'",
            b"{a:1}",
            b"NaN",
            b"Infinity",
            b"01",
            b"1.",
            b"1e400",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\xff\"",
            b"\"a\x01\"",
        ];
        for input in invalid {
            assert!(
                matches!(canonicalize(input), Err(CanonicalJsonError::Invalid(_))),
                "input {:?} gave {:?}",
                String::from_utf8_lossy(input),
                canonicalize(input)
            );
        }
        assert!(matches!(
            canonicalize(b"\xef\xbb\xbf{}"),
            Err(CanonicalJsonError::Invalid(_))
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(canon(&ok), ok);
        // The exact limit: 127 levels pass, 128 do not.
        let deepest = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert_eq!(canon(&deepest), deepest);
        let objects = format!("{}1{}", "{\"a\":".repeat(127), "}".repeat(127));
        assert_eq!(canon(&objects), objects);

        for depth in [128, 129, 10_000, 1_000_000] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                canonicalize(deep.as_bytes()),
                Err(CanonicalJsonError::TooDeep)
            );
            let deep_objects = "{\"a\":".repeat(depth);
            assert_eq!(
                canonicalize(deep_objects.as_bytes()),
                Err(CanonicalJsonError::TooDeep)
            );
        }
    }

    #[test]
    fn numbers_inside_strings_do_not_confuse_number_scanning() {
        assert_eq!(
            canon(r#"{"1.50":"2.50 \" -3e1","k\\":[1.50,"-0.0",-0.0,7]}"#),
            r#"{"1.50":"2.50 \" -3e1","k\\":[1.5,"-0.0",0,7]}"#
        );
    }

    #[test]
    fn error_messages_are_descriptive() {
        let err = canonicalize(b"{\"a\":1,\"a\":2}").expect_err("duplicate");
        assert_eq!(err.to_string(), "duplicate object member name \"a\"");
        let err = canonicalize(b"[").expect_err("eof");
        assert!(err.to_string().starts_with("invalid JSON: "), "{err}");
    }
}
