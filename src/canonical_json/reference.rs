//! The first, tree-based canonicaliser: `serde_json` parses into a tree, which is
//! then written out sorted. Kept (for tests and the fuzz target) as the oracle the streaming
//! canonicaliser in the parent module is checked against.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{CanonicalJsonError, cmp_utf16, write_f64, write_string};

/// The canonical form of `input`, computed through a `serde_json` tree: the oracle.
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
