//! Scope: which (route, actor, key) a record belongs to, and its partition key.
//!
//! Two different triples must never share a record, whatever characters the route
//! or actor hold, and the partition key must stay within DynamoDB's limits whatever
//! their length. Short triples get a readable, length-prefixed key; long ones a
//! SHA-256 of the same length-prefixed framing. The two forms have different
//! prefixes, so they cannot collide with each other.

use sha2::{Digest, Sha256};

use crate::key::IdempotencyKey;

/// Readable partition keys up to this many bytes; longer triples are hashed.
pub const MAX_READABLE_PARTITION_KEY: usize = 512;

/// The actor used when a request carries no authenticated principal.
pub const ANONYMOUS_ACTOR: &str = "anonymous";

/// The (route, actor, key) triple a record belongs to.
///
/// ```
/// use lambda_idempotency::key::IdempotencyKey;
/// use lambda_idempotency::scope::Scope;
///
/// let key = IdempotencyKey::parse("order-1")?;
/// let alice = Scope::new("POST /orders", "alice", key.clone());
/// let bob = Scope::new("POST /orders", "bob", key);
/// assert_ne!(alice.partition_key(), bob.partition_key());
/// assert_eq!(alice.partition_key(), "k1|12:POST /orders|5:alice|order-1");
/// # Ok::<(), lambda_idempotency::key::KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    route: String,
    actor: String,
    key: IdempotencyKey,
    partition_key: String,
}

impl Scope {
    /// Scopes `key` to a route (method + route template) and an actor (principal).
    pub fn new(route: impl Into<String>, actor: impl Into<String>, key: IdempotencyKey) -> Self {
        let route = route.into();
        let actor = actor.into();
        let partition_key = partition_key(&route, &actor, &key);
        Self {
            route,
            actor,
            key,
            partition_key,
        }
    }

    /// The route, as given.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The actor, as given.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The client's key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The record's partition key: bounded in length, unique per triple.
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }
}

fn partition_key(route: &str, actor: &str, key: &IdempotencyKey) -> String {
    let key = key.as_str();
    let readable = format!("k1|{}:{route}|{}:{actor}|{key}", route.len(), actor.len());
    if readable.len() <= MAX_READABLE_PARTITION_KEY {
        return readable;
    }
    let mut hasher = Sha256::new();
    for part in [route, actor, key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(3 + 64);
    out.push_str("h1|");
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The route, actor and key framed in a readable partition key (`k1|…`): the inverse
/// of [`Scope::partition_key`], so a stored record need not repeat them. `None` for a
/// hashed key (`h1|…`) or for text that is not a well-formed readable key.
///
/// ```
/// use lambda_idempotency::key::IdempotencyKey;
/// use lambda_idempotency::scope::{Scope, split_readable_partition_key};
///
/// let scope = Scope::new("POST /orders", "a|b", IdempotencyKey::parse("order-1")?);
/// assert_eq!(
///     split_readable_partition_key(scope.partition_key()),
///     Some(("POST /orders", "a|b", "order-1"))
/// );
/// assert_eq!(split_readable_partition_key("h1|00ff"), None);
/// # Ok::<(), lambda_idempotency::key::KeyError>(())
/// ```
pub fn split_readable_partition_key(partition_key: &str) -> Option<(&str, &str, &str)> {
    let rest = partition_key.strip_prefix("k1|")?;
    let (route, rest) = framed(rest)?;
    let (actor, key) = framed(rest)?;
    Some((route, actor, key))
}

/// Splits `"{len}:{part}|rest"` into `(part, rest)`.
fn framed(text: &str) -> Option<(&str, &str)> {
    let (len, rest) = text.split_once(':')?;
    if len.is_empty() || len.len() > 4 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: usize = len.parse().ok()?;
    let part = rest.get(..len)?;
    let rest = rest.get(len..)?.strip_prefix('|')?;
    Some((part, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text).unwrap()
    }

    #[test]
    fn separator_injection_cannot_collide() {
        let k = key("k");
        let triples = [
            ("POST /orders#a", "b", "k"),
            ("POST /orders", "a#b", "k"),
            ("POST /orders|1:a", "b", "k"),
            ("POST /orders", "1:a|b", "k"),
            ("POST /orders|", "a|b", "k"),
            ("POST /orders", "|a|b", "k"),
            ("POST /orders:", "a", "k"),
            ("POST /orders", ":a", "k"),
            ("", "POST /ordersa", "k"),
            ("POST /ordersa", "", "k"),
            ("12:POST /orders|5:alice", "", "k"),
            ("", "12:POST /orders|5:alice", "k"),
        ];
        let mut seen = HashSet::new();
        for (route, actor, _) in triples {
            assert!(
                seen.insert(
                    Scope::new(route, actor, k.clone())
                        .partition_key()
                        .to_owned()
                ),
                "{route:?} / {actor:?} collided"
            );
        }
        // And shifting characters between actor and key.
        let a = Scope::new("r", "a-b", key("c"));
        let b = Scope::new("r", "a", key("b-c"));
        assert_ne!(a.partition_key(), b.partition_key());
    }

    #[test]
    fn long_inputs_are_hashed_and_bounded() {
        let route = "POST /".to_owned() + &"x".repeat(10_000);
        let s = Scope::new(route.clone(), "actor", key("k"));
        assert!(s.partition_key().starts_with("h1|"));
        assert_eq!(s.partition_key().len(), 67);
        // Raw parts are kept for operators.
        assert_eq!(s.route(), route);
        assert_eq!(s.actor(), "actor");
        assert_eq!(s.key().as_str(), "k");
        // Neighbouring long inputs still differ.
        let t = Scope::new(route.clone() + "y", "actor", key("k"));
        let u = Scope::new(route, "yactor", key("k"));
        assert_ne!(s.partition_key(), t.partition_key());
        assert_ne!(t.partition_key(), u.partition_key());
    }

    #[test]
    fn the_longest_key_stays_readable_or_hashed_within_bounds() {
        let k = key(&"k".repeat(255));
        for n in [0, 100, 230, 240, 1000] {
            let s = Scope::new("r".repeat(n), "actor", k.clone());
            assert!(s.partition_key().len() <= MAX_READABLE_PARTITION_KEY);
        }
    }

    #[test]
    fn readable_keys_split_back_into_their_triple() {
        let triples = [
            ("POST /orders|1:a", "b", "k"),
            ("POST /orders", "1:a|b", "k-x_y0"),
            ("", "", "k"),
            ("é", "ü:|", "k"),
            ("12:POST /orders|5:alice", "", "k"),
        ];
        for (route, actor, k) in triples {
            let s = Scope::new(route, actor, key(k));
            assert_eq!(
                split_readable_partition_key(s.partition_key()),
                Some((route, actor, k)),
                "{}",
                s.partition_key()
            );
        }
        let hashed = Scope::new("r".repeat(600), "a", key("k"));
        assert_eq!(split_readable_partition_key(hashed.partition_key()), None);
        for bad in [
            "",
            "k1|",
            "k1|5:POST|1:a|k",
            "k1|4:POST|9:a|k",
            "k1|x:POST|1:a|k",
            "k1|4:POST1:a|k",
            "k2|4:POST|1:a|k",
            "k1|1:\u{e9}|1:a|k",
            "k1|-1:|1:a|k",
        ] {
            assert_eq!(split_readable_partition_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unicode_lengths_are_in_bytes() {
        let a = Scope::new("é", "a", key("k"));
        assert_eq!(a.partition_key(), "k1|2:é|1:a|k");
    }
}
