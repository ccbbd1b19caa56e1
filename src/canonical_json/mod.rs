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
//! * numbers written as their exact decimal value in the layout of ECMAScript's
//!   `Number.prototype.toString` (`-0` becomes `0`, `1E30` becomes `1e+30`,
//!   `4.50` becomes `4.5`, `1e20` becomes `100000000000000000000`), see below.
//!
//! Input that is not strict JSON is rejected rather than guessed at: invalid
//! UTF-8, lone surrogate escapes, trailing data, nesting of 128 levels or more
//! (an error, never a stack overflow; the limit is `serde_json`'s, which the
//! first implementation used), objects with duplicate member names (RFC 8785 relies on I-JSON, which
//! forbids them; accepting them would make "which value wins" ambiguous), and
//! numbers whose exponent is beyond ±999,999,999.
//!
//! # Deliberate deviation from RFC 8785: exact numbers
//!
//! Strict JCS converts every number to an IEEE 754 double, so two different
//! amounts can round to the same double and thus to the same canonical text:
//! `0.1` and `0.10000000000000001`, `9007199254740993.0` and `9007199254740992`,
//! or two integers beyond 64 bits. A handler that parses them as `u128`,
//! `rust_decimal` or `serde_json` with `arbitrary_precision` sees different
//! amounts, so they must never share a fingerprint. This module therefore writes
//! every number's exact decimal value: its significant digits (no leading or
//! trailing zeros) placed as ECMAScript would place a double's shortest digits.
//! Equal values get equal text (`1`, `1.0`, `10e-1`), different values
//! different text. For every number that is already the shortest spelling of a
//! double (which is how `serde_json` and JavaScript write them) the output is
//! JCS's, byte for byte; `333333333.33333329` stays itself where JCS writes
//! `333333333.3333333`.
//!
//! The first release wrote numbers through a double (integers up to 64 bits
//! excepted); that form is kept as `canonicalize_v1` (crate-internal) for the
//! `v1` fingerprints of records written then, and for keys hashed from event
//! payloads, which must never change.
//!
//! # Number parsing precision (the `v1` form)
//!
//! In the `v1` form every number that is not an exact 64-bit integer is read
//! from its literal text with Rust's correctly rounding
//! [`str::parse::<f64>`](str::parse), so RFC 8785's own example
//! `333333333.33333329` comes out right (a parser that rounds one unit in the
//! last place away would not).
//!
//! # How it runs
//!
//! One pass over the input writes the canonical form as it parses: strings
//! without escapes, integers and literals are copied as they are; an object's
//! members are written in input order and rearranged only if they were not
//! sorted already. The first, tree-based implementation (`serde_json` into a
//! tree, then written out sorted) is kept in the tests as the oracle this one
//! is checked against, output for output, over generated documents.

use std::borrow::Cow;
use std::cmp::Ordering;

#[cfg(any(test, feature = "testing"))]
pub(crate) mod reference;

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

/// Parses `input` as a single JSON text and returns its canonical serialisation
/// (RFC 8785, with numbers kept exact), so that semantically equal documents hash
/// identically and different ones never do.
///
/// See the [module documentation](self) for the exact rules, including the
/// deliberate deviation for numbers: every number is written as its exact decimal
/// value in ECMAScript's layout, never rounded through a double.
///
/// # Errors
///
/// Returns [`CanonicalJsonError`] if `input` is not valid JSON, nests too
/// deeply, contains an object with duplicate member names, or a number whose
/// exponent is beyond ±999,999,999.
///
/// `{ "b": [1.50, true], "a": "x" }` becomes `{"a":"x","b":[1.5,true]}`;
/// `[1.0, 10e-1, 100E-2]` becomes `[1,1,1]`; `0.1` and `0.10000000000000001` stay
/// different (see `examples_from_the_docs` below).
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, CanonicalJsonError> {
    canonicalize_with(input, Numbers::Exact)
}

/// The canonical form of the first release (fingerprint `v1`): numbers that are not
/// 64-bit integers written as the nearest double, exactly as RFC 8785 says. Kept so
/// records written by that release can still be compared, and so keys hashed from
/// event payloads never change.
pub fn canonicalize_v1(input: &[u8]) -> Result<Vec<u8>, CanonicalJsonError> {
    canonicalize_with(input, Numbers::Ecmascript)
}

/// How numbers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    /// RFC 8785: through the nearest double (64-bit integers kept exact).
    Ecmascript,
    /// Their exact decimal value, in ECMAScript's layout.
    Exact,
}

fn canonicalize_with(input: &[u8], numbers: Numbers) -> Result<Vec<u8>, CanonicalJsonError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        CanonicalJsonError::Invalid(format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    let mut writer = Canonicalizer {
        text,
        input,
        pos: 0,
        out: Vec::with_capacity(input.len()),
        members: Vec::with_capacity(16),
        scratch: Vec::new(),
        digits: Vec::new(),
        duplicate: None,
        numbers,
    };
    writer.skip_whitespace();
    writer.value(0)?;
    writer.skip_whitespace();
    if writer.pos < input.len() {
        return Err(writer.invalid("trailing characters"));
    }
    // Reported only for an otherwise valid document, as a syntax error comes first.
    if let Some(name) = writer.duplicate {
        return Err(CanonicalJsonError::DuplicateKey(name));
    }
    Ok(writer.out)
}

/// The bytes that end a plain run inside a string literal: `"`, `\\` and the
/// control characters below 0x20.
static STRING_STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// Deepest nesting of arrays and objects accepted (`serde_json`'s recursion limit,
/// which the first implementation inherited).
const MAX_DEPTH: usize = 127;

/// One pass over the input that writes the canonical form as it parses: arrays,
/// strings and numbers go straight to `out`; an object's members are written in
/// input order and, unless already sorted, rearranged when the object closes.
struct Canonicalizer<'a> {
    text: &'a str,
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    /// The members of the objects being written, innermost last.
    members: Vec<Member<'a>>,
    /// Reused copy of an object's output while its members are rearranged.
    scratch: Vec<u8>,
    /// Reused significant digits of the number being written.
    digits: Vec<u8>,
    /// The first duplicate member name met.
    duplicate: Option<String>,
    /// How numbers are written.
    numbers: Numbers,
}

/// A member already written to `out[start..end]` as `"name":value`.
struct Member<'a> {
    name: Cow<'a, str>,
    ascii: bool,
    start: usize,
    end: usize,
}

impl<'a> Canonicalizer<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A syntax error at the current position, worded like `serde_json`'s.
    fn invalid(&self, what: &str) -> CanonicalJsonError {
        let before = self.input.get(..self.pos).unwrap_or(self.input);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
        CanonicalJsonError::Invalid(format!("{what} at line {line} column {column}"))
    }

    fn eof_or(&self, what: &str) -> CanonicalJsonError {
        if self.pos >= self.input.len() {
            self.invalid("EOF while parsing a value")
        } else {
            self.invalid(what)
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalJsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string_value(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.eof_or("expected value")),
        }
    }

    fn literal(&mut self, literal: &str) -> Result<(), CanonicalJsonError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        if !rest.starts_with(literal.as_bytes()) {
            return Err(self.eof_or("expected value"));
        }
        self.pos += literal.len();
        self.out.extend_from_slice(literal.as_bytes());
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalJsonError> {
        if depth > MAX_DEPTH {
            return Err(CanonicalJsonError::TooDeep);
        }
        self.pos += 1;
        self.out.push(b'[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(b',');
                    self.skip_whitespace();
                }
                Some(b']') => {
                    self.pos += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.eof_or("expected `,` or `]`")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), CanonicalJsonError> {
        if depth > MAX_DEPTH {
            return Err(CanonicalJsonError::TooDeep);
        }
        self.pos += 1;
        self.out.push(b'{');
        let base = self.members.len();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.eof_or("key must be a string"));
            }
            if self.members.len() > base {
                self.out.push(b',');
            }
            let start = self.out.len();
            let (name, ascii) = self.string()?;
            self.write_string(&name, matches!(name, Cow::Borrowed(_)));
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.eof_or("expected `:`"));
            }
            self.pos += 1;
            self.out.push(b':');
            self.skip_whitespace();
            self.value(depth)?;
            let end = self.out.len();
            self.members.push(Member {
                name,
                ascii,
                start,
                end,
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.eof_or("expected `,` or `}`")),
            }
        }
        self.sort_members(base);
        self.members.truncate(base);
        self.out.push(b'}');
        Ok(())
    }

    /// Rewrites the members above `base` in name order (UTF-16 code units), unless
    /// they already are, and notes a duplicate name.
    fn sort_members(&mut self, base: usize) {
        let members = self.members.get_mut(base..).unwrap_or_default();
        // Strictly ascending: in order already, and no name twice.
        if members.is_sorted_by(|a, b| member_order(a, b).is_lt()) {
            return;
        }
        // Where the first member (in input order) starts.
        let first = members.first().map_or(0, |m| m.start);
        members.sort_unstable_by(member_order);
        self.scratch.clear();
        self.scratch
            .extend_from_slice(self.out.get(first..).unwrap_or_default());
        self.out.truncate(first);
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let span = (member.start - first)..(member.end - first);
            self.out
                .extend_from_slice(self.scratch.get(span).unwrap_or_default());
        }
        if self.duplicate.is_none()
            && let Some(pair) = members.windows(2).find(|pair| pair[0].name == pair[1].name)
        {
            self.duplicate = Some(pair[0].name.clone().into_owned());
        }
    }

    /// Reads a string literal (at its opening quote): borrowed from the input when it
    /// has no escapes. Also tells whether it is all ASCII.
    fn string(&mut self) -> Result<(Cow<'a, str>, bool), CanonicalJsonError> {
        self.pos += 1;
        let start = self.pos;
        let stop = self.plain_run();
        self.pos = stop;
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let raw = self.text.get(start..stop).unwrap_or_default();
                Ok((Cow::Borrowed(raw), raw.is_ascii()))
            }
            _ => {
                let mut decoded = String::from(self.text.get(start..stop).unwrap_or_default());
                self.decode_rest(&mut decoded)?;
                let ascii = decoded.is_ascii();
                Ok((Cow::Owned(decoded), ascii))
            }
        }
    }

    /// A string value (at its opening quote), written canonically. One without
    /// escapes, the common case, is already canonical: copied in one piece, quotes
    /// included.
    fn string_value(&mut self) -> Result<(), CanonicalJsonError> {
        let open = self.pos;
        self.pos += 1;
        let stop = self.plain_run();
        if self.input.get(stop) == Some(&b'"') {
            self.pos = stop + 1;
            self.out
                .extend_from_slice(self.input.get(open..self.pos).unwrap_or_default());
            return Ok(());
        }
        self.pos = open;
        let (string, _) = self.string()?;
        self.write_string(&string, matches!(string, Cow::Borrowed(_)));
        Ok(())
    }

    /// Where the run of bytes that need no decoding, from the current position, ends:
    /// at a quote, a backslash or a control character (looked up in a table, one load
    /// a byte).
    fn plain_run(&self) -> usize {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        self.pos
            + rest
                .iter()
                .position(|&b| STRING_STOPS[usize::from(b)])
                .unwrap_or(rest.len())
    }

    /// Decodes the rest of a string with escapes, up to and past its closing quote.
    fn decode_rest(&mut self, decoded: &mut String) -> Result<(), CanonicalJsonError> {
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            decoded.push(c);
                            continue;
                        }
                        None => return Err(self.invalid("EOF while parsing a string")),
                        Some(_) => return Err(self.invalid("invalid escape")),
                    };
                    self.pos += 1;
                    decoded.push(escaped);
                }
                Some(b) if b < 0x20 => {
                    return Err(self.invalid(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                Some(_) => {
                    let stop = self.plain_run();
                    decoded.push_str(self.text.get(self.pos..stop).unwrap_or_default());
                    self.pos = stop;
                }
                None => return Err(self.invalid("EOF while parsing a string")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (after the `u`), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, CanonicalJsonError> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                let rest = self.input.get(self.pos..).unwrap_or_default();
                if !rest.starts_with(b"\\u") {
                    return Err(self.invalid("lone leading surrogate in hex escape"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.invalid("lone leading surrogate in hex escape"));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.invalid("lone trailing surrogate in hex escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.invalid("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, CanonicalJsonError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.eof_or("invalid escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.invalid("invalid escape"))
    }

    /// Writes a string canonically; one read without escapes (borrowed from the input)
    /// needs none on output either.
    fn write_string(&mut self, text: &str, borrowed: bool) {
        if borrowed {
            self.out.push(b'"');
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'"');
        } else {
            write_string(text, &mut self.out);
        }
    }

    /// A number token, checked against the JSON grammar, then written: exactly
    /// ([`Numbers::Exact`]) or through a double ([`Numbers::Ecmascript`]).
    fn number(&mut self) -> Result<(), CanonicalJsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.eof_or("invalid number")),
        }
        let int_end = self.pos;
        let mut frac = int_end..int_end;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let frac_start = self.pos;
            self.require_digits()?;
            frac = frac_start..self.pos;
        }
        let mut exponent = None;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            let exp_start = self.pos;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.require_digits()?;
            exponent = Some(exp_start..self.pos);
        }
        let token = self.text.get(start..self.pos).unwrap_or_default();
        let integer = frac.is_empty() && exponent.is_none();
        match self.numbers {
            // Plain integers of up to 21 digits are already in ECMAScript's layout.
            Numbers::Exact if integer && int_end - int_start <= 21 => {
                self.write_integer(token);
                Ok(())
            }
            Numbers::Exact => {
                let text = self.text;
                let exponent = exponent.map_or("0", |e| &text[e]);
                self.write_exact(negative, int_start..int_end, frac, exponent)
            }
            Numbers::Ecmascript => {
                if integer {
                    let fits = token.len() < 19
                        || if negative {
                            token.parse::<i64>().is_ok()
                        } else {
                            token.parse::<u64>().is_ok()
                        };
                    if fits {
                        self.write_integer(token);
                        return Ok(());
                    }
                }
                let value = token
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| self.invalid("number out of range"))?;
                write_f64(value, &mut self.out)
            }
        }
    }

    /// An integer token as it is: the grammar leaves it one spelling, but for `-0`.
    fn write_integer(&mut self, token: &str) {
        let canonical = if token == "-0" { "0" } else { token };
        self.out.extend_from_slice(canonical.as_bytes());
    }

    /// Writes the exact value `±int.frac × 10^exponent` in ECMAScript's
    /// `Number::toString` layout, with all its significant digits instead of the
    /// shortest ones that round to the same double: `1.50` is `1.5`, `1E30` is
    /// `1e+30`, `0.10000000000000001` stays itself. Equal values give equal text
    /// (`1.0`, `10e-1` and `1` are all `1`), different values different text.
    fn write_exact(
        &mut self,
        negative: bool,
        int: std::ops::Range<usize>,
        frac: std::ops::Range<usize>,
        exponent: &str,
    ) -> Result<(), CanonicalJsonError> {
        // The significant digits, without leading or trailing zeros.
        self.digits.clear();
        self.digits.extend_from_slice(&self.input[int]);
        self.digits.extend_from_slice(&self.input[frac.clone()]);
        let leading = self.digits.iter().take_while(|d| **d == b'0').count();
        if leading == self.digits.len() {
            self.out.push(b'0'); // any zero, `-0` and `0e5` included
            return Ok(());
        }
        let trailing = self.digits.iter().rev().take_while(|d| **d == b'0').count();
        self.digits.truncate(self.digits.len() - trailing);
        self.digits.drain(..leading);

        // value = 0.DIGITS × 10^point
        let (exp_negative, exp_digits) = match exponent.as_bytes().first() {
            Some(b'-') => (true, &exponent[1..]),
            Some(b'+') => (false, &exponent[1..]),
            _ => (false, exponent),
        };
        let exp_digits = exp_digits.trim_start_matches('0');
        if exp_digits.len() > 9 {
            return Err(self.invalid("number out of range (exponent beyond 999999999)"));
        }
        let mut exp: i64 = exp_digits.parse().unwrap_or(0);
        if exp_negative {
            exp = -exp;
        }
        // Lengths are at most the input's, far below i64's range.
        let len = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let k = len(self.digits.len());
        let point = exp - len(frac.len()) + len(trailing) + k;

        if negative {
            self.out.push(b'-');
        }
        if k <= point && point <= 21 {
            self.out.extend_from_slice(&self.digits);
            self.out.extend(std::iter::repeat_n(
                b'0',
                (point - k).unsigned_abs() as usize,
            ));
        } else if 0 < point && point <= 21 {
            let (whole, fraction) = self.digits.split_at(point.unsigned_abs() as usize);
            self.out.extend_from_slice(whole);
            self.out.push(b'.');
            self.out.extend_from_slice(fraction);
        } else if -6 < point && point <= 0 {
            self.out.extend_from_slice(b"0.");
            self.out
                .extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
            self.out.extend_from_slice(&self.digits);
        } else {
            self.out.push(self.digits[0]);
            if k > 1 {
                self.out.push(b'.');
                self.out.extend_from_slice(&self.digits[1..]);
            }
            let e = point - 1;
            self.out.push(b'e');
            self.out.push(if e < 0 { b'-' } else { b'+' });
            self.out
                .extend_from_slice(e.unsigned_abs().to_string().as_bytes());
        }
        Ok(())
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Result<(), CanonicalJsonError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.eof_or("invalid number"));
        }
        self.skip_digits();
        Ok(())
    }
}

/// Member order: UTF-16 code units (RFC 8785 section 3.2.3); for ASCII names that is
/// plain byte order.
fn member_order(a: &Member<'_>, b: &Member<'_>) -> Ordering {
    if a.ascii && b.ascii {
        a.name.as_bytes().cmp(b.name.as_bytes())
    } else {
        cmp_utf16(&a.name, &b.name)
    }
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

    #[test]
    fn examples_from_the_docs() {
        let a = canonicalize(br#"{ "b": [1.50, true], "a": "x" }"#).unwrap();
        let b = canonicalize(br#"{"a":"x","b":[1.5,true]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, br#"{"a":"x","b":[1.5,true]}"#);
        // Equal values are equal whatever their spelling; different values never are.
        assert_eq!(canonicalize(b"[1.0, 10e-1, 100E-2]").unwrap(), b"[1,1,1]");
        assert_ne!(
            canonicalize(b"0.1").unwrap(),
            canonicalize(b"0.10000000000000001").unwrap()
        );
        assert!(canonicalize(br#"{"a":1,"a":2}"#).is_err());
    }

    fn canon(input: &str) -> String {
        match canonicalize(input.as_bytes()) {
            Ok(bytes) => String::from_utf8(bytes).expect("canonical output is UTF-8"),
            Err(err) => panic!("canonicalize({input:?}) failed: {err}"),
        }
    }

    /// The first release's canonical form (`v1`): numbers through the nearest double.
    fn canon_v1(input: &str) -> String {
        match canonicalize_v1(input.as_bytes()) {
            Ok(bytes) => String::from_utf8(bytes).expect("canonical output is UTF-8"),
            Err(err) => panic!("canonicalize_v1({input:?}) failed: {err}"),
        }
    }

    /// A number as RFC 8785 writes it (the `v1` form).
    fn number(input: &str) -> String {
        canon_v1(input)
    }

    #[test]
    fn exact_numbers_keep_every_significant_digit_in_ecmascript_layout() {
        for (input, expected) in [
            // The report's pairs: different amounts, different text.
            ("18446744073709551616", "18446744073709551616"),
            ("18446744073709551617", "18446744073709551617"),
            ("9007199254740993.0", "9007199254740993"),
            ("9007199254740992", "9007199254740992"),
            ("0.1", "0.1"),
            ("0.10000000000000001", "0.10000000000000001"),
            ("333333333.33333329", "333333333.33333329"),
            // Equal values, one text.
            ("1.0", "1"),
            ("10e-1", "1"),
            ("0.1e1", "1"),
            ("100E-2", "1"),
            ("-0", "0"),
            ("-0.000e7", "0"),
            ("0e-99999", "0"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("1E30", "1e+30"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901", "123456789012345678901"),
            ("1234567890123456789012", "1.234567890123456789012e+21"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("-12.3400e-10", "-1.234e-9"),
            ("1.5e300", "1.5e+300"),
            ("1e400", "1e+400"),
            ("-1e-400", "-1e-400"),
            ("0.000000000000000000000000001", "1e-27"),
            ("1e+000000000000000000000003", "1000"),
        ] {
            assert_eq!(canon(input), expected, "input {input}");
            assert_eq!(canon(expected), expected, "{expected} is canonical");
        }
        assert!(matches!(
            canonicalize(b"1e1000000000"),
            Err(CanonicalJsonError::Invalid(_))
        ));
        assert_eq!(canon("1e999999999"), "1e+999999999");
    }

    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon_v1(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Exact numbers: only the one that is not the shortest spelling differs.
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.33333329,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
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
            b"1e1000000000",
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
        // Beyond a double's range: valid JSON with an exact value, but no double.
        assert_eq!(canon("1e400"), "1e+400");
        assert!(matches!(
            canonicalize_v1(b"1e400"),
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

    /// The streaming canonicaliser against the first, tree-based one
    /// ([`reference`](super::reference)): the same output for every input, or the
    /// same kind of error.
    mod against_the_reference {
        use proptest::prelude::*;

        use super::super::{CanonicalJsonError, canonicalize, canonicalize_v1, reference};

        /// The reference writes numbers as RFC 8785 does: compare the `v1` form.
        fn same(input: &[u8]) -> Result<(), TestCaseError> {
            let streaming = canonicalize_v1(input);
            let tree = reference::canonicalize(input);
            let kind = |r: &Result<Vec<u8>, CanonicalJsonError>| match r {
                Ok(_) => "ok",
                Err(CanonicalJsonError::Invalid(_)) => "invalid",
                Err(CanonicalJsonError::TooDeep) => "too deep",
                Err(CanonicalJsonError::DuplicateKey(_)) => "duplicate",
            };
            prop_assert_eq!(
                kind(&streaming),
                kind(&tree),
                "input {:?}: {:?} vs {:?}",
                String::from_utf8_lossy(input),
                streaming,
                tree
            );
            if let (Ok(a), Ok(b)) = (&streaming, &tree) {
                prop_assert_eq!(a, b, "input {:?}", String::from_utf8_lossy(input));
            }
            Ok(())
        }

        fn value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<u64>().prop_map(serde_json::Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(serde_json::Value::from),
                "\\PC{0,8}".prop_map(serde_json::Value::from),
                "[\\u{0}-\\u{1f}\"\\\\/\\u{7f}\\u{e000}-\\u{e010}\\u{10000}-\\u{10010}a-c]{0,6}"
                    .prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                    prop::collection::btree_map(
                        "[a-c\\u{e000}\\u{10000}\\u{7f}é]{0,3}",
                        inner,
                        0..6
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Pieces of JSON, mostly valid, sometimes not, including escapes,
        /// duplicates, odd numbers and whitespace.
        fn soup() -> impl Strategy<Value = Vec<u8>> {
            let token = prop_oneof![
                Just("{"),
                Just("}"),
                Just("["),
                Just("]"),
                Just(","),
                Just(":"),
                Just(" "),
                Just("\n\t"),
                Just("\"a\""),
                Just("\"b\""),
                Just("\"\\u0061\""),
                Just("\"\\ud83d\\ude00\""),
                Just("\"\\ud83d\""),
                Just("\"\\/\\n\\u0000\""),
                Just("\"\u{e9}\u{10000}\""),
                Just("\"\u{e000}\""),
                Just("0"),
                Just("-0"),
                Just("1.50"),
                Just("-1e400"),
                Just("1e-400"),
                Just("01"),
                Just("1."),
                Just("18446744073709551616"),
                Just("-9223372036854775809"),
                Just("123456789012345678"),
                Just("true"),
                Just("nul"),
                Just("null"),
                Just("\""),
                Just("\\"),
            ];
            prop::collection::vec(token, 0..24).prop_map(|t| t.concat().into_bytes())
        }

        fn number() -> impl Strategy<Value = String> {
            "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            #[test]
            fn values_written_compactly_or_pretty(value in value()) {
                same(serde_json::to_string(&value).unwrap().as_bytes())?;
                same(serde_json::to_string_pretty(&value).unwrap().as_bytes())?;
            }

            /// serde_json writes every double in its shortest spelling and integers
            /// exactly: there the exact form is RFC 8785's, byte for byte.
            #[test]
            fn exact_numbers_agree_with_rfc_8785_on_shortest_spellings(value in value()) {
                let text = serde_json::to_string(&value).unwrap();
                prop_assert_eq!(
                    canonicalize(text.as_bytes()).ok(),
                    reference::canonicalize(text.as_bytes()).ok(),
                    "input {}", text
                );
            }

            #[test]
            fn soup_of_tokens(input in soup()) {
                same(&input)?;
            }

            #[test]
            fn numbers(numbers in prop::collection::vec(number(), 1..8)) {
                same(format!("[{}]", numbers.join(",")).as_bytes())?;
            }

            #[test]
            fn arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..64)) {
                same(&input)?;
            }
        }

        #[test]
        fn nesting_limits_agree() {
            for depth in [126, 127, 128, 129] {
                let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                same(arrays.as_bytes()).unwrap();
                let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
                same(objects.as_bytes()).unwrap();
            }
        }
    }
}
