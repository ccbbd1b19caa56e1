//! Versioned request fingerprints.
//!
//! An idempotency key alone does not prove that a retry is the *same*
//! request: a client could reuse a key for a different payload. A
//! [`Fingerprint`] is a hash of the parts of a request that determine its
//! meaning, stored next to the idempotency record so that a reused key with a
//! different request can be detected and refused.
//!
//! Fingerprints are versioned (`v2:<64 hex digits>`) so that the hashed
//! framing can evolve without old stored records being silently compared
//! against an incompatible new hash.
//!
//! # Versions
//!
//! - `v2` (HTTP requests, this release): query values of one name keep their
//!   order (`?tag=a&tag=b` is not `?tag=b&tag=a`), and JSON numbers are compared
//!   by their exact decimal value, so `0.1` and `0.10000000000000001`, or two
//!   integers beyond 64 bits, are different requests.
//! - `v1` (HTTP requests of the first release; event payloads): query pairs
//!   sorted by name and value, numbers through the nearest double. Kept so a
//!   record written by the first release is still recognised by a retry (the
//!   layer compares it with the request's `v1` fingerprint), and for event
//!   payloads, whose numbers are already doubles or 64-bit integers once the
//!   runtime has parsed them, so `v1` is exact for them.

use std::fmt;

use sha2::{Digest, Sha256};

pub use crate::canonical_json::CanonicalJsonError;
use crate::canonical_json::{canonicalize, canonicalize_v1};

/// Version prefix of fingerprints produced by [`Fingerprint::v1`] and
/// [`Fingerprint::of_json_value`].
const V1: &str = "v1";

/// Version prefix of fingerprints produced by [`Fingerprint::v2`].
const V2: &str = "v2";

/// Domain separation tag for HTTP request fingerprints (v1 framing).
const V1_REQUEST_DOMAIN: &[u8] = b"lambda-idempotency/fingerprint/v1";

/// Domain separation tag for HTTP request fingerprints (v2 framing).
const V2_REQUEST_DOMAIN: &[u8] = b"lambda-idempotency/fingerprint/v2";

/// Domain separation tag for event payload fingerprints (v1 framing), so an
/// event can never hash like an HTTP request.
const V1_EVENT_DOMAIN: &[u8] = b"lambda-idempotency/fingerprint/v1/event";

/// Body tags of the v1 and v2 framings: they make "no body", "canonical JSON" and
/// "opaque bytes" distinct even when the bytes that follow are equal.
const BODY_EMPTY: u8 = 0;
const BODY_CANONICAL_JSON: u8 = 1;
const BODY_RAW: u8 = 2;

/// A versioned hash of a request, stored with an idempotency record so that
/// reuse of an idempotency key for a different request can be detected.
///
/// Its text form is the version (`v2`), a colon, and 64 lowercase hex digits
/// of a SHA-256 digest. Compare fingerprints with `==`; two fingerprints with
/// different versions are never equal, even for the same request.
///
/// # Examples
///
/// ```
/// use lambda_idempotency::fingerprint::{BodyKind, Fingerprint, FingerprintInput};
///
/// let query = vec![("page".to_owned(), "2".to_owned())];
/// let a = Fingerprint::v2(&FingerprintInput {
///     method: "post",
///     path: "/orders",
///     query: &query,
///     body: br#"{"sku": "x", "qty": 2}"#,
///     body_kind: BodyKind::Json,
/// });
/// let b = Fingerprint::v2(&FingerprintInput {
///     method: "POST",
///     path: "/orders",
///     query: &query,
///     body: br#"{"qty":2,"sku":"x"}"#,
///     body_kind: BodyKind::Json,
/// });
/// assert_eq!(a, b);
/// assert_eq!(a.version(), "v2");
/// assert_eq!(a.as_str().len(), "v2:".len() + 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

/// How the request body is interpreted before hashing, so that callers can
/// choose whether JSON formatting differences should matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// The body is JSON: hash its RFC 8785 canonical form, so member order,
    /// whitespace and escaping do not matter. [`Fingerprint::v1`] falls back to
    /// the raw bytes if the body is not valid JSON; [`Fingerprint::try_v1`]
    /// refuses it instead (the HTTP layer answers such a request with `400`).
    Json,
    /// The body is opaque: hash the exact bytes.
    Raw,
    /// The content type is unknown: treated like [`BodyKind::Json`] (which
    /// already falls back to raw bytes for non-JSON bodies).
    #[default]
    Auto,
}

/// The parts of an HTTP request that determine its meaning, borrowed from
/// the request so fingerprinting needs no copies.
#[derive(Clone, Copy, Debug)]
pub struct FingerprintInput<'a> {
    /// HTTP method; compared case-insensitively (ASCII).
    pub method: &'a str,
    /// Request path, compared exactly.
    pub path: &'a str,
    /// Query parameters as (name, value) pairs. The order of different names
    /// does not matter; the values of one name keep their order in `v2`
    /// (`?tag=a&tag=b` is not `?tag=b&tag=a`), and repeated pairs are kept and
    /// counted. Pass them consistently either decoded or encoded.
    pub query: &'a [(String, String)],
    /// Request body bytes (after any transport encoding such as base64 has
    /// been undone).
    pub body: &'a [u8],
    /// How to interpret `body`.
    pub body_kind: BodyKind,
}

impl Fingerprint {
    /// The version produced by this library's HTTP fingerprint functions
    /// ([`Fingerprint::v2`]), for comparing against [`Fingerprint::version`] of
    /// stored values.
    pub const CURRENT_VERSION: &'static str = V2;

    /// Fingerprints an HTTP request with the v2 framing, so that retries of
    /// the same request match and any meaningful change does not.
    ///
    /// The method is uppercased (ASCII); query pairs are ordered by name, the
    /// values of one name keeping their order; a JSON body is canonicalised
    /// (RFC 8785 JCS, except that numbers keep their exact decimal value) unless
    /// `body_kind` is [`BodyKind::Raw`] or the body is not valid JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use lambda_idempotency::fingerprint::{BodyKind, Fingerprint, FingerprintInput};
    ///
    /// let request = |body: &'static [u8]| FingerprintInput {
    ///     method: "PUT",
    ///     path: "/accounts/42",
    ///     query: &[],
    ///     body,
    ///     body_kind: BodyKind::Auto,
    /// };
    /// let a = Fingerprint::v2(&request(br#"{"amount": 100, "currency": "EUR"}"#));
    /// let b = Fingerprint::v2(&request(br#"{"currency":"EUR","amount":100.0}"#));
    /// let c = Fingerprint::v2(&request(br#"{"currency":"EUR","amount":100.00000000000001}"#));
    /// assert_eq!(a, b);
    /// assert_ne!(a, c);
    /// ```
    #[must_use]
    pub fn v2(input: &FingerprintInput<'_>) -> Fingerprint {
        Framing::V2.lenient(input)
    }

    /// Like [`Fingerprint::v2`], but a body declared JSON ([`BodyKind::Json`])
    /// must be JSON: a non-empty body that cannot be canonicalised (invalid
    /// syntax or UTF-8, nesting 128 levels deep or more, a duplicate member name)
    /// is refused rather than hashed byte for byte. [`BodyKind::Auto`] still
    /// falls back to the raw bytes, and an empty body is "no body" whatever its
    /// kind. When it succeeds, the fingerprint equals [`Fingerprint::v2`]'s.
    ///
    /// # Errors
    ///
    /// The canonicaliser's [`CanonicalJsonError`] for a `Json` body that is not
    /// strict JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use lambda_idempotency::fingerprint::{
    ///     BodyKind, CanonicalJsonError, Fingerprint, FingerprintInput,
    /// };
    ///
    /// let input = |body: &'static [u8], body_kind| FingerprintInput {
    ///     method: "POST",
    ///     path: "/orders",
    ///     query: &[],
    ///     body,
    ///     body_kind,
    /// };
    /// let ok = input(br#"{"sku": "x"}"#, BodyKind::Json);
    /// assert_eq!(Fingerprint::try_v2(&ok)?, Fingerprint::v2(&ok));
    ///
    /// let broken = input(br#"{"sku": "x""#, BodyKind::Json);
    /// assert!(matches!(Fingerprint::try_v2(&broken), Err(CanonicalJsonError::Invalid(_))));
    /// // Without a declared content type, a non-JSON body is opaque bytes.
    /// assert!(Fingerprint::try_v2(&input(br#"{"sku": "x""#, BodyKind::Auto)).is_ok());
    /// # Ok::<(), CanonicalJsonError>(())
    /// ```
    pub fn try_v2(input: &FingerprintInput<'_>) -> Result<Fingerprint, CanonicalJsonError> {
        Framing::V2.strict(input)
    }

    /// The first release's HTTP fingerprint (`v1`): query pairs sorted by name
    /// and value, and JSON numbers through the nearest double. Kept to recognise
    /// records that release wrote; new records use [`Fingerprint::v2`], which
    /// tells apart requests `v1` confuses.
    #[must_use]
    pub fn v1(input: &FingerprintInput<'_>) -> Fingerprint {
        Framing::V1.lenient(input)
    }

    /// [`Fingerprint::v1`], refusing a declared-JSON body that is not JSON (see
    /// [`Fingerprint::try_v2`]).
    ///
    /// # Errors
    ///
    /// The canonicaliser's [`CanonicalJsonError`] for a `Json` body that is not
    /// strict JSON.
    pub fn try_v1(input: &FingerprintInput<'_>) -> Result<Fingerprint, CanonicalJsonError> {
        Framing::V1.strict(input)
    }

    /// Fingerprints an event payload (for handlers that are not HTTP), so
    /// that the same event with members in a different order still matches.
    ///
    /// The value is serialised and canonicalised (RFC 8785); should that fail
    /// (for example nesting deeper than the canonicaliser accepts), the
    /// serialised bytes are hashed instead. Uses its own domain tag, so an
    /// event fingerprint never equals an HTTP request fingerprint. Its version is
    /// `v1`: a parsed payload's numbers are doubles or 64-bit integers, which `v1`
    /// already compares exactly.
    ///
    /// # Examples
    ///
    /// ```
    /// use lambda_idempotency::fingerprint::Fingerprint;
    /// use serde_json::json;
    ///
    /// let a = Fingerprint::of_json_value(&json!({"order": 1, "items": ["a", "b"]}));
    /// let b = Fingerprint::of_json_value(&json!({"items": ["a", "b"], "order": 1}));
    /// assert_eq!(a, b);
    /// ```
    #[must_use]
    pub fn of_json_value(value: &serde_json::Value) -> Fingerprint {
        // Serialising a `Value` cannot fail (its keys are strings and its
        // numbers are finite); an empty body is a safe fallback regardless.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        let mut message = Framer::new(V1_EVENT_DOMAIN);
        message.body(&bytes, canonicalize_v1(&bytes).ok().as_deref());
        message.finish(V1)
    }

    /// Wraps a fingerprint read back from storage, so it can be compared
    /// with a freshly computed one. The text is not validated: an unknown or
    /// malformed value simply never equals a computed fingerprint.
    #[must_use]
    pub fn from_stored(stored: String) -> Fingerprint {
        Fingerprint(stored)
    }

    /// The text form, for writing to storage.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version prefix (the text before the first `:`, e.g. `"v2"`), so
    /// callers can tell a fingerprint made by an older framing from a
    /// mismatching request. Empty if the stored text has no `:`.
    #[must_use]
    pub fn version(&self) -> &str {
        self.0.split_once(':').map_or("", |(version, _)| version)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The HTTP request framings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    V1,
    V2,
}

impl Framing {
    fn canonical(self, body: &[u8]) -> Result<Vec<u8>, CanonicalJsonError> {
        match self {
            Self::V1 => canonicalize_v1(body),
            Self::V2 => canonicalize(body),
        }
    }

    fn head(self, input: &FingerprintInput<'_>) -> Framer {
        let (domain, by_name_only) = match self {
            Self::V1 => (V1_REQUEST_DOMAIN, false),
            Self::V2 => (V2_REQUEST_DOMAIN, true),
        };
        let mut message = Framer::new(domain);
        message.request_head(input, by_name_only);
        message
    }

    fn version(self) -> &'static str {
        match self {
            Self::V1 => V1,
            Self::V2 => V2,
        }
    }

    /// A body that is not JSON is hashed as bytes.
    fn lenient(self, input: &FingerprintInput<'_>) -> Fingerprint {
        let mut message = self.head(input);
        let canonical = match input.body_kind {
            BodyKind::Raw => None,
            BodyKind::Json | BodyKind::Auto => self.canonical(input.body).ok(),
        };
        message.body(input.body, canonical.as_deref());
        message.finish(self.version())
    }

    /// A body declared JSON must be JSON.
    fn strict(self, input: &FingerprintInput<'_>) -> Result<Fingerprint, CanonicalJsonError> {
        let mut message = self.head(input);
        let canonical = match input.body_kind {
            BodyKind::Raw => None,
            BodyKind::Auto => self.canonical(input.body).ok(),
            BodyKind::Json if input.body.is_empty() => None,
            BodyKind::Json => Some(self.canonical(input.body)?),
        };
        message.body(input.body, canonical.as_deref());
        Ok(message.finish(self.version()))
    }
}

/// Builds the hashed message of a framing.
///
/// Every variable-length field is preceded by its length as a u64 big-endian
/// integer, and the number of query pairs is written before the pairs, so the
/// message can be split back into its fields in exactly one way: no two
/// different inputs produce the same message.
///
/// IMPORTANT: the framings are pinned by `tests::known_vector` and
/// `tests::known_vector_v2`. Any change to what is hashed or how it is framed
/// must come with a new version prefix (and new domain tags), otherwise
/// fingerprints stored by older releases would be compared against
/// incompatible new ones and retries would be refused as "different request".
struct Framer {
    hasher: Sha256,
}

impl Framer {
    fn new(domain: &[u8]) -> Self {
        let mut framer = Framer {
            hasher: Sha256::new(),
        };
        framer.field(domain);
        framer
    }

    fn length(&mut self, len: usize) {
        // usize is at most 64 bits on every supported target.
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.hasher.update(len.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.length(bytes.len());
        self.hasher.update(bytes);
    }

    /// Writes the method, path and query pairs of a request: sorted by name only
    /// (a stable sort, so one name's values keep their order) or, in `v1`, by name
    /// and value.
    fn request_head(&mut self, input: &FingerprintInput<'_>, by_name_only: bool) {
        self.field(input.method.to_ascii_uppercase().as_bytes());
        self.field(input.path.as_bytes());

        let mut query: Vec<(&str, &str)> = input
            .query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        if by_name_only {
            query.sort_by(|a, b| a.0.cmp(b.0));
        } else {
            query.sort_unstable();
        }
        self.length(query.len());
        for (name, value) in query {
            self.field(name.as_bytes());
            self.field(value.as_bytes());
        }
    }

    /// Writes the body tag and the body (its canonical JSON form when there is
    /// one, else its bytes); the last field of the message.
    fn body(&mut self, body: &[u8], canonical: Option<&[u8]>) {
        if body.is_empty() {
            self.hasher.update([BODY_EMPTY]);
            self.field(&[]);
        } else if let Some(canonical) = canonical {
            self.hasher.update([BODY_CANONICAL_JSON]);
            self.field(canonical);
        } else {
            self.hasher.update([BODY_RAW]);
            self.field(body);
        }
    }

    fn finish(self, version: &str) -> Fingerprint {
        let digest = self.hasher.finalize();
        let mut text = String::with_capacity(version.len() + 1 + 2 * digest.len());
        text.push_str(version);
        text.push(':');
        // A table instead of `write!("{:02x}")`: formatting took a tenth of a replay's
        // time in the layer.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for byte in &digest {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Fingerprint(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn fp(
        method: &str,
        path: &str,
        q: &[(&str, &str)],
        body: &[u8],
        kind: BodyKind,
    ) -> Fingerprint {
        let q = query(q);
        Fingerprint::v1(&FingerprintInput {
            method,
            path,
            query: &q,
            body,
            body_kind: kind,
        })
    }

    fn json(body: &str) -> Fingerprint {
        fp(
            "POST",
            "/orders",
            &[("a", "1")],
            body.as_bytes(),
            BodyKind::Json,
        )
    }

    /// Pins the v1 framing. If this test fails, the framing changed: bump
    /// the version prefix (v1 -> v2) and the domain tags instead of updating
    /// the expected values, or stored fingerprints will stop matching.
    #[test]
    fn known_vector() {
        let q = query(&[("b", "2"), ("a", "1"), ("a", "0")]);
        let input = FingerprintInput {
            method: "post",
            path: "/v1/orders",
            query: &q,
            body: br#"{ "qty": 2, "sku": "ABC-1", "price": 12.50 }"#,
            body_kind: BodyKind::Json,
        };
        assert_eq!(
            Fingerprint::v1(&input).as_str(),
            "v1:7ef68fd20b1c7ce325e24692197955c8adb4bd4a59259d9bfcada7c2c5819f6e"
        );
        assert_eq!(
            Fingerprint::v1(&FingerprintInput {
                method: "GET",
                path: "/",
                query: &[],
                body: b"",
                body_kind: BodyKind::Raw,
            })
            .as_str(),
            "v1:57b760d88938059c7920d615ce5d409367853f3b907cba854d7ebc2ac272a245"
        );
        assert_eq!(
            Fingerprint::of_json_value(&serde_json::json!({"b": [1, 2.5], "a": "x"})).as_str(),
            "v1:2924b5e4244ae501b4dadaf36433e13493968d949e4342922ee60dc050df1557"
        );
    }

    #[test]
    fn known_vector_matches_manual_framing() {
        // Recomputes one fingerprint from the framing spelled out by hand.
        fn field(message: &mut Vec<u8>, bytes: &[u8]) {
            message.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            message.extend_from_slice(bytes);
        }
        let mut message = Vec::new();
        field(&mut message, b"lambda-idempotency/fingerprint/v1");
        field(&mut message, b"PATCH");
        field(&mut message, b"/p");
        message.extend_from_slice(&2u64.to_be_bytes());
        field(&mut message, b"a");
        field(&mut message, b"1");
        field(&mut message, b"b");
        field(&mut message, b"");
        message.push(2);
        field(&mut message, b"not json");
        let digest = Sha256::digest(&message);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();

        let computed = fp(
            "patch",
            "/p",
            &[("b", ""), ("a", "1")],
            b"not json",
            BodyKind::Json,
        );
        assert_eq!(computed.as_str(), format!("v1:{hex}"));
    }

    #[test]
    fn known_vector_v2_matches_manual_framing() {
        // The v2 framing by hand: its own domain tag, pairs ordered by name only
        // (`a` keeps `2` before `1`), exact numbers in the canonical body.
        fn field(message: &mut Vec<u8>, bytes: &[u8]) {
            message.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            message.extend_from_slice(bytes);
        }
        let mut message = Vec::new();
        field(&mut message, b"lambda-idempotency/fingerprint/v2");
        field(&mut message, b"POST");
        field(&mut message, b"/p");
        message.extend_from_slice(&3u64.to_be_bytes());
        for (name, value) in [("a", "2"), ("a", "1"), ("b", "")] {
            field(&mut message, name.as_bytes());
            field(&mut message, value.as_bytes());
        }
        message.push(1);
        field(&mut message, br#"{"n":0.10000000000000001}"#);
        let digest = Sha256::digest(&message);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();

        let q = query(&[("b", ""), ("a", "2"), ("a", "1")]);
        let computed = Fingerprint::v2(&FingerprintInput {
            method: "post",
            path: "/p",
            query: &q,
            body: br#"{ "n": 0.100000000000000010 }"#,
            body_kind: BodyKind::Json,
        });
        assert_eq!(computed.as_str(), format!("v2:{hex}"));
    }

    #[test]
    fn text_format() {
        let f = json("{}");
        let text = f.as_str();
        assert_eq!(text.len(), 67);
        assert!(text.starts_with("v1:"));
        assert!(
            text[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(f.version(), "v1");
        assert_eq!(Fingerprint::CURRENT_VERSION, "v2");
        assert_eq!(f.to_string(), text);
    }

    #[test]
    fn from_stored_round_trips() {
        let f = json(r#"{"x":1}"#);
        let stored = Fingerprint::from_stored(f.as_str().to_owned());
        assert_eq!(stored, f);
        assert_eq!(stored.version(), "v1");

        let other = Fingerprint::from_stored("v0:abcdef".to_owned());
        assert_eq!(other.version(), "v0");
        assert_ne!(other, f);
        assert_eq!(Fingerprint::from_stored("garbage".to_owned()).version(), "");
        assert_eq!(Fingerprint::from_stored(String::new()).as_str(), "");
    }

    #[test]
    fn json_key_order_and_whitespace_do_not_matter() {
        let a = json(r#"{"sku":"x","qty":2,"opts":{"gift":true,"note":"hi"}}"#);
        let b = json(
            "{ \"opts\" : { \"note\":\"hi\", \"gift\":true },\n \"qty\": 2.0,\t\"sku\": \"x\" }",
        );
        let c = json(r#"{"qty":2,"sku":"\u0078","opts":{"note":"hi","gift":true}}"#);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn json_value_changes_matter() {
        let base = json(r#"{"sku":"x","qty":2,"opts":{"gift":true}}"#);
        for body in [
            r#"{"sku":"y","qty":2,"opts":{"gift":true}}"#,
            r#"{"sku":"x","qty":3,"opts":{"gift":true}}"#,
            r#"{"sku":"x","qty":"2","opts":{"gift":true}}"#,
            r#"{"sku":"x","qty":2,"opts":{"gift":false}}"#,
            r#"{"sku":"x","qty":2,"opts":{}}"#,
            r#"{"sku":"x","qty":2}"#,
            r#"{"sku":"x","qty":2,"opts":{"gift":true},"extra":null}"#,
            r#"[{"sku":"x","qty":2,"opts":{"gift":true}}]"#,
        ] {
            assert_ne!(json(body), base, "body {body}");
        }
    }

    #[test]
    fn large_integer_amounts_do_not_collide() {
        assert_ne!(
            json(r#"{"amount":9007199254740993}"#),
            json(r#"{"amount":9007199254740992}"#)
        );
    }

    /// Pins the v2 framing, like [`known_vector`] pins v1.
    #[test]
    fn known_vector_v2() {
        let q = query(&[("b", "2"), ("a", "1"), ("a", "0")]);
        let input = FingerprintInput {
            method: "post",
            path: "/v1/orders",
            query: &q,
            body: br#"{ "qty": 2, "sku": "ABC-1", "price": 12.50 }"#,
            body_kind: BodyKind::Json,
        };
        assert_eq!(
            Fingerprint::v2(&input).as_str(),
            "v2:cb4bbf1bc1c2093885a87e53abe67de12f366cf4d90d0f7eaf534a13e23b8913"
        );
    }

    #[test]
    fn v2_keeps_the_order_of_one_names_values_and_ignores_the_order_of_names() {
        let v2 = |q: &[(&str, &str)]| {
            let q = query(q);
            Fingerprint::v2(&FingerprintInput {
                method: "GET",
                path: "/x",
                query: &q,
                body: b"",
                body_kind: BodyKind::Auto,
            })
        };
        assert_ne!(
            v2(&[("tag", "a"), ("tag", "b")]),
            v2(&[("tag", "b"), ("tag", "a")])
        );
        assert_ne!(
            v2(&[("amount", "100"), ("amount", "5")]),
            v2(&[("amount", "5"), ("amount", "100")])
        );
        assert_eq!(
            v2(&[("a", "1"), ("b", "2"), ("a", "0")]),
            v2(&[("b", "2"), ("a", "1"), ("a", "0")])
        );
        assert_ne!(v2(&[("a", "1")]), v2(&[("a", "1"), ("a", "1")]));
    }

    #[test]
    fn v2_compares_json_numbers_by_exact_value() {
        let v2 = |body: &str| {
            Fingerprint::v2(&FingerprintInput {
                method: "POST",
                path: "/payments",
                query: &[],
                body: body.as_bytes(),
                body_kind: BodyKind::Json,
            })
        };
        for (a, b) in [
            ("18446744073709551616", "18446744073709551617"),
            ("9007199254740993.0", "9007199254740992"),
            ("0.1", "0.10000000000000001"),
            ("1e400", "1e401"),
        ] {
            let (a, b) = (
                format!(r#"{{"amount":{a}}}"#),
                format!(r#"{{"amount":{b}}}"#),
            );
            assert_ne!(v2(&a), v2(&b), "{a} vs {b}");
            // v1 confused them (numbers through a double): that is why v2 exists.
            if !a.contains("e40") {
                assert_eq!(json(&a), json(&b), "v1: {a} vs {b}");
            }
        }
        assert_eq!(v2(r#"{"amount":1.0}"#), v2(r#"{"amount":1}"#));
        assert_eq!(v2(r#"{"amount":1.50}"#), v2(r#"{"amount":15e-1}"#));
    }

    #[test]
    fn query_order_does_not_matter_but_duplicates_count() {
        let a = fp(
            "GET",
            "/x",
            &[("a", "1"), ("b", "2"), ("a", "0")],
            b"",
            BodyKind::Auto,
        );
        let b = fp(
            "GET",
            "/x",
            &[("b", "2"), ("a", "0"), ("a", "1")],
            b"",
            BodyKind::Auto,
        );
        assert_eq!(a, b);

        let once = fp("GET", "/x", &[("a", "1")], b"", BodyKind::Auto);
        let twice = fp("GET", "/x", &[("a", "1"), ("a", "1")], b"", BodyKind::Auto);
        let none = fp("GET", "/x", &[], b"", BodyKind::Auto);
        assert_ne!(once, twice);
        assert_ne!(once, none);
        assert_ne!(twice, none);
    }

    #[test]
    fn method_case_does_not_matter() {
        let a = fp("post", "/x", &[], b"1", BodyKind::Auto);
        let b = fp("POST", "/x", &[], b"1", BodyKind::Auto);
        let c = fp("Post", "/x", &[], b"1", BodyKind::Auto);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, fp("PUT", "/x", &[], b"1", BodyKind::Auto));
    }

    #[test]
    fn path_query_and_body_changes_matter() {
        let base = fp(
            "POST",
            "/orders",
            &[("a", "1")],
            b"{\"x\":1}",
            BodyKind::Json,
        );
        assert_ne!(
            base,
            fp(
                "POST",
                "/orders/",
                &[("a", "1")],
                b"{\"x\":1}",
                BodyKind::Json
            )
        );
        assert_ne!(
            base,
            fp(
                "POST",
                "/Orders",
                &[("a", "1")],
                b"{\"x\":1}",
                BodyKind::Json
            )
        );
        assert_ne!(
            base,
            fp(
                "POST",
                "/orders",
                &[("a", "2")],
                b"{\"x\":1}",
                BodyKind::Json
            )
        );
        assert_ne!(
            base,
            fp(
                "POST",
                "/orders",
                &[("b", "1")],
                b"{\"x\":1}",
                BodyKind::Json
            )
        );
        assert_ne!(
            base,
            fp(
                "POST",
                "/orders",
                &[("a", "1")],
                b"{\"x\":2}",
                BodyKind::Json
            )
        );
        assert_ne!(
            base,
            fp("POST", "/orders", &[("a", "1")], b"", BodyKind::Json)
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let empty = BodyKind::Raw;
        // Query name/value boundary.
        assert_ne!(
            fp("GET", "/", &[("a", "b=c")], b"", empty),
            fp("GET", "/", &[("a=b", "c")], b"", empty)
        );
        assert_ne!(
            fp("GET", "/", &[("ab", "")], b"", empty),
            fp("GET", "/", &[("a", "b")], b"", empty)
        );
        // Pair boundaries.
        assert_ne!(
            fp("GET", "/", &[("a", "b"), ("c", "d")], b"", empty),
            fp("GET", "/", &[("a", "bcd"), ("", "")], b"", empty)
        );
        // Path / query boundary.
        assert_ne!(
            fp("GET", "/x?a=1", &[], b"", empty),
            fp("GET", "/x", &[("a", "1")], b"", empty)
        );
        assert_ne!(
            fp("GET", "/xa", &[("", "1")], b"", empty),
            fp("GET", "/x", &[("a", "1")], b"", empty)
        );
        // Method / path boundary.
        assert_ne!(
            fp("GET", "/x", &[], b"", empty),
            fp("GE", "T/x", &[], b"", empty)
        );
        // Query / body boundary.
        assert_ne!(
            fp("GET", "/", &[("a", "1")], b"", empty),
            fp("GET", "/", &[("a", "")], b"1", empty)
        );
        assert_ne!(
            fp("GET", "/", &[], b"a", empty),
            fp("GET", "/a", &[], b"", empty)
        );
    }

    #[test]
    fn non_json_body_is_hashed_raw() {
        for kind in [BodyKind::Json, BodyKind::Auto, BodyKind::Raw] {
            let a = fp("POST", "/", &[], b"name=x&qty=2", kind);
            let b = fp("POST", "/", &[], b"name=x&qty=2 ", kind);
            let c = fp("POST", "/", &[], b"name=x&qty=2", kind);
            assert_ne!(a, b);
            assert_eq!(a, c);
        }
        // Non-JSON bodies hash the same whatever the declared kind.
        assert_eq!(
            fp("POST", "/", &[], b"hello", BodyKind::Json),
            fp("POST", "/", &[], b"hello", BodyKind::Raw)
        );
    }

    #[test]
    fn raw_body_whitespace_and_order_matter() {
        let a = fp("POST", "/", &[], br#"{"a":1,"b":2}"#, BodyKind::Raw);
        let b = fp("POST", "/", &[], br#"{"b":2,"a":1}"#, BodyKind::Raw);
        let c = fp("POST", "/", &[], br#"{"a": 1,"b":2}"#, BodyKind::Raw);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn invalid_json_falls_back_to_raw() {
        for body in [
            &b"{\"a\":1"[..],
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":1} trailing",
            b"\xff\xfe",
            b"  ",
        ] {
            assert_eq!(
                fp("POST", "/", &[], body, BodyKind::Json),
                fp("POST", "/", &[], body, BodyKind::Raw),
                "body {:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Still sensitive to every byte.
        assert_ne!(
            fp("POST", "/", &[], b"{\"a\":1", BodyKind::Json),
            fp("POST", "/", &[], b"{\"a\": 1", BodyKind::Json)
        );
        // Deep nesting falls back instead of failing.
        let deep = "[".repeat(10_000);
        assert_eq!(
            fp("POST", "/", &[], deep.as_bytes(), BodyKind::Json),
            fp("POST", "/", &[], deep.as_bytes(), BodyKind::Raw)
        );
    }

    #[test]
    fn try_v1_refuses_declared_json_that_is_not_json() {
        let try_fp = |body: &[u8], body_kind| {
            Fingerprint::try_v1(&FingerprintInput {
                method: "POST",
                path: "/",
                query: &[],
                body,
                body_kind,
            })
        };
        let deep = "[".repeat(10_000);
        for body in [
            &b"{\"a\":1"[..],
            b"{\"a\":1} trailing",
            b"\xff\xfe",
            b"{\"a\":\"\xff\"}",
            b"  ",
            deep.as_bytes(),
        ] {
            let shown = String::from_utf8_lossy(body);
            assert!(try_fp(body, BodyKind::Json).is_err(), "{shown}");
            // Undeclared or opaque bodies are hashed as before.
            assert_eq!(
                try_fp(body, BodyKind::Auto),
                Ok(fp("POST", "/", &[], body, BodyKind::Auto)),
                "{shown}"
            );
            assert_eq!(
                try_fp(body, BodyKind::Raw),
                Ok(fp("POST", "/", &[], body, BodyKind::Raw)),
                "{shown}"
            );
        }
        assert_eq!(
            try_fp(b"{\"a\":1,\"a\":2}", BodyKind::Json),
            Err(CanonicalJsonError::DuplicateKey("a".to_owned()))
        );
        assert_eq!(
            try_fp(deep.as_bytes(), BodyKind::Json),
            Err(CanonicalJsonError::TooDeep)
        );
        // Valid JSON and the empty body fingerprint exactly as `v1` does.
        for body in [&b"{ \"b\": 1, \"a\": [2.50] }"[..], b""] {
            assert_eq!(
                try_fp(body, BodyKind::Json),
                Ok(fp("POST", "/", &[], body, BodyKind::Json))
            );
        }
    }

    #[test]
    fn json_and_raw_tags_are_distinct() {
        // The canonical JSON `{}` tagged as JSON differs from the same bytes
        // tagged as raw, and a raw non-JSON body can never pose as JSON.
        assert_ne!(
            fp("POST", "/", &[], b"{}", BodyKind::Json),
            fp("POST", "/", &[], b"{}", BodyKind::Raw)
        );
        assert_eq!(
            fp("POST", "/", &[], b"{}", BodyKind::Json),
            fp("POST", "/", &[], b"{ }", BodyKind::Auto)
        );
        // Empty body is the same for every kind, and differs from any
        // non-empty body (including JSON `""`).
        let empty = fp("POST", "/", &[], b"", BodyKind::Json);
        assert_eq!(empty, fp("POST", "/", &[], b"", BodyKind::Raw));
        assert_eq!(empty, fp("POST", "/", &[], b"", BodyKind::Auto));
        assert_ne!(empty, fp("POST", "/", &[], b"\"\"", BodyKind::Json));
        assert_ne!(empty, fp("POST", "/", &[], b" ", BodyKind::Raw));
    }

    #[test]
    fn of_json_value_ignores_member_order_and_detects_changes() {
        use serde_json::json;
        let a =
            Fingerprint::of_json_value(&json!({"id": "e-1", "detail": {"n": 1, "tags": ["x"]}}));
        let b: serde_json::Value =
            serde_json::from_str(r#"{"detail":{"tags":["x"],"n":1.0},"id":"e-1"}"#).expect("json");
        assert_eq!(a, Fingerprint::of_json_value(&b));
        assert_ne!(
            a,
            Fingerprint::of_json_value(&json!({"id": "e-2", "detail": {"n": 1, "tags": ["x"]}}))
        );
        assert_eq!(a.version(), "v1");
    }

    #[test]
    fn of_json_value_differs_from_http_fingerprint() {
        let value = serde_json::json!({"a": 1});
        let http = fp("", "", &[], br#"{"a":1}"#, BodyKind::Json);
        assert_ne!(Fingerprint::of_json_value(&value), http);
    }

    #[test]
    fn of_json_value_falls_back_when_too_deep() {
        let mut value = serde_json::Value::Null;
        for _ in 0..200 {
            value = serde_json::Value::Array(vec![value]);
        }
        let mut other = serde_json::Value::Bool(true);
        for _ in 0..200 {
            other = serde_json::Value::Array(vec![other]);
        }
        let a = Fingerprint::of_json_value(&value);
        assert_eq!(a, Fingerprint::of_json_value(&value));
        assert_ne!(a, Fingerprint::of_json_value(&other));
    }
}
