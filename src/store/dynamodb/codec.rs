//! The record's DynamoDB item format, with configurable attribute names.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use super::layout::KeyLayout;
pub use super::names::AttributeNames;
use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::record::{LeaseToken, Record, Status};
use crate::scope::split_readable_partition_key;

/// The `response_encoding` of a zstd-compressed response.
pub(crate) const ZSTD: &str = "zstd";

/// The item's format version, stored with every record so a later format can read
/// older items.
///
/// Version 2 stores the route, actor and key only when the partition key is hashed;
/// a readable partition key already holds them
/// ([`split_readable_partition_key`]). This version reads versions 1 and 2; version 1
/// of the crate rejects version 2 items as corrupt, naming the format.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this version reads.
pub const OLDEST_READABLE_FORMAT: u32 = 1;

/// How many expiry-index partitions one hour of expiring records is spread over.
pub const EXPIRY_SHARDS: u8 = 8;

/// The shard of a partition key: the first byte of its SHA-256, modulo
/// [`EXPIRY_SHARDS`]. Stable across versions and processes.
pub fn expiry_shard(partition_key: &str) -> u8 {
    Sha256::digest(partition_key.as_bytes())[0] % EXPIRY_SHARDS
}

/// The expiry index's partition key for an hour (`expires_at / 3600`) and a shard.
pub fn expiry_bucket_of(hour: i64, shard: u8) -> String {
    format!("{hour}#{shard}")
}

/// The expiry index's partition key for a record: `"{expires_at / 3600}#{shard}"`.
///
/// ```
/// use lambda_idempotency::ops::{EXPIRY_SHARDS, expiry_bucket, expiry_shard};
///
/// let pk = "k1|12:POST /orders|5:alice|order-1";
/// let bucket = expiry_bucket(1_700_003_599, pk);
/// assert_eq!(bucket, format!("472223#{}", expiry_shard(pk)));
/// assert!(expiry_shard(pk) < EXPIRY_SHARDS);
/// ```
pub fn expiry_bucket(expires_at: i64, partition_key: &str) -> String {
    expiry_bucket_of(expires_at.div_euclid(3600), expiry_shard(partition_key))
}

/// Encodes a record as an item, keyed as `layout` says.
pub fn encode(
    names: &AttributeNames,
    layout: &KeyLayout,
    r: &Record,
) -> HashMap<String, AttributeValue> {
    let mut item = layout.key(names, &r.partition_key);
    item.reserve(14);
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    item.insert(names.status.clone(), s(r.status.as_str()));
    item.insert(names.fingerprint.clone(), s(r.fingerprint.as_str()));
    item.insert(names.lease_token.clone(), s(r.lease_token.as_str()));
    item.insert(names.lease_expires_at.clone(), n(r.lease_expires_at_ms));
    item.insert(names.expires_at.clone(), n(r.expires_at));
    if let Some(response) = &r.response {
        item.insert(
            names.response.clone(),
            AttributeValue::B(Blob::new(response.clone())),
        );
    }
    item.insert(names.created_at.clone(), n(r.created_at_ms));
    item.insert(names.updated_at.clone(), n(r.updated_at_ms));
    // Each fact once: a readable partition key already frames the triple.
    let framed = split_readable_partition_key(&r.partition_key);
    if framed != Some((r.route.as_str(), r.actor.as_str(), r.key.as_str())) {
        item.insert(names.route.clone(), s(&r.route));
        item.insert(names.actor.clone(), s(&r.actor));
        item.insert(names.key.clone(), s(&r.key));
    }
    item.insert(names.format.clone(), n(i64::from(FORMAT_VERSION)));
    item.insert(
        names.expiry_bucket.clone(),
        s(&expiry_bucket(r.expires_at, &r.partition_key)),
    );
    if r.status == Status::Pending {
        item.insert(
            names.inflight_shard.clone(),
            s(&expiry_shard(&r.partition_key).to_string()),
        );
    }
    item
}

/// Decodes an item; a missing or mistyped attribute is [`Error::CorruptRecord`].
/// The expiry bucket is derived data and is ignored (items written before it existed
/// decode too).
pub fn decode(
    names: &AttributeNames,
    layout: &KeyLayout,
    item: &HashMap<String, AttributeValue>,
) -> Result<Record, Error> {
    let key_attribute = layout.key_attribute(names);
    let pk = string(item, key_attribute).unwrap_or_else(|_| "<missing>".to_owned());
    let corrupt = |reason: String| Error::CorruptRecord {
        partition_key: pk.clone(),
        reason,
    };
    if let Some(format) = item.get(&names.format) {
        let version = number(item, &names.format).map_err(&corrupt)?;
        if !(i64::from(OLDEST_READABLE_FORMAT)..=i64::from(FORMAT_VERSION)).contains(&version) {
            return Err(corrupt(format!(
                "unsupported format {format:?} (this version reads {OLDEST_READABLE_FORMAT} to {FORMAT_VERSION})"
            )));
        }
    }
    let partition_key = string(item, key_attribute).map_err(&corrupt)?;
    let framed = split_readable_partition_key(&partition_key);
    let part = |name: &str, from_key: Option<&str>| match (item.get(name), from_key) {
        (None, Some(derived)) => Ok(derived.to_owned()),
        (None, None) => Err(format!("{name} is missing and the partition key is hashed")),
        (Some(_), _) => string(item, name),
    };
    let route = part(&names.route, framed.map(|f| f.0)).map_err(&corrupt)?;
    let actor = part(&names.actor, framed.map(|f| f.1)).map_err(&corrupt)?;
    let key = part(&names.key, framed.map(|f| f.2)).map_err(&corrupt)?;
    let status_text = string(item, &names.status).map_err(&corrupt)?;
    let status = Status::parse(&status_text)
        .ok_or_else(|| corrupt(format!("unknown status {status_text:?}")))?;
    let response = match item.get(&names.response) {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
        Some(_) => return Err(corrupt(format!("{} is not binary", names.response))),
    };
    let response = match (item.get(&names.response_encoding), response) {
        (None, response) => response,
        (Some(AttributeValue::S(e)), Some(bytes)) if e == ZSTD => {
            Some(crate::store::fit::decompress(&bytes).map_err(&corrupt)?)
        }
        (Some(other), _) => {
            return Err(corrupt(format!("unknown response encoding {other:?}")));
        }
    };
    let response_omitted = match item.get(&names.response_omitted) {
        None => None,
        Some(_) => Some(
            u64::try_from(number(item, &names.response_omitted).map_err(&corrupt)?)
                .map_err(|_| corrupt("negative omitted size".to_owned()))?,
        ),
    };
    Ok(Record {
        partition_key,
        status,
        fingerprint: Fingerprint::from_stored(string(item, &names.fingerprint).map_err(&corrupt)?),
        lease_token: LeaseToken::from_stored(string(item, &names.lease_token).map_err(&corrupt)?),
        lease_expires_at_ms: number(item, &names.lease_expires_at).map_err(&corrupt)?,
        expires_at: number(item, &names.expires_at).map_err(&corrupt)?,
        response,
        response_omitted,
        created_at_ms: number(item, &names.created_at).map_err(&corrupt)?,
        updated_at_ms: number(item, &names.updated_at).map_err(&corrupt)?,
        route,
        actor,
        key,
    })
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, String> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| format!("{name} is not a whole number: {n:?}")),
        Some(_) => Err(format!("{name} is not a number")),
        None => Err(format!("{name} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(response: Option<Vec<u8>>) -> Record {
        Record {
            partition_key: "k1|12:POST /orders|5:alice|k".into(),
            status: Status::Completed,
            fingerprint: Fingerprint::from_stored("v1:abc".into()),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms: 1_700_000_030_000,
            expires_at: 1_700_086_400,
            response,
            response_omitted: None,
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_001_234,
            route: "POST /orders".into(),
            actor: "alice".into(),
            key: "k".into(),
        }
    }

    #[test]
    fn round_trips_with_default_and_custom_names() {
        let custom = AttributeNames {
            partition_key: "id".into(),
            status: "st".into(),
            expires_at: "ttl".into(),
            ..AttributeNames::default()
        };
        let layouts = [
            KeyLayout::PartitionKey,
            KeyLayout::static_partition("idempotency#orders", "sk"),
        ];
        for names in [AttributeNames::default(), custom] {
            for layout in &layouts {
                for response in [None, Some(vec![]), Some(vec![0, 159, 146, 150, 255])] {
                    let r = sample(response);
                    let item = encode(&names, layout, &r);
                    assert_eq!(decode(&names, layout, &item).unwrap(), r);
                }
            }
        }
    }

    #[test]
    fn a_static_partition_keeps_the_record_key_in_the_sort_key() {
        let names = AttributeNames::default();
        let layout = KeyLayout::static_partition("idempotency#orders", "sk");
        let r = sample(None);
        let item = encode(&names, &layout, &r);
        assert_eq!(item["pk"], AttributeValue::S("idempotency#orders".into()));
        assert_eq!(item["sk"], AttributeValue::S(r.partition_key.clone()));
        // Read under the other layout, the record's key is not where it looks.
        // Its triple cannot be read from that key either: a typed error.
        let err = decode(&names, &KeyLayout::PartitionKey, &item).unwrap_err();
        assert!(
            matches!(&err, Error::CorruptRecord { partition_key, .. } if partition_key == "idempotency#orders"),
            "{err}"
        );
        let mut no_sort_key = item.clone();
        no_sort_key.remove("sk");
        assert!(matches!(
            decode(&names, &layout, &no_sort_key),
            Err(Error::CorruptRecord { .. })
        ));
    }

    #[test]
    fn the_expiry_bucket_is_written_and_ignored_on_read() {
        let names = AttributeNames {
            expiry_bucket: "gsi1pk".into(),
            ..AttributeNames::default()
        };
        let r = sample(None);
        let mut item = encode(&names, &KeyLayout::PartitionKey, &r);
        let shard = expiry_shard(&r.partition_key);
        assert_eq!(
            item["gsi1pk"],
            AttributeValue::S(format!("{}#{shard}", 1_700_086_400 / 3600))
        );
        item.remove("gsi1pk");
        assert_eq!(decode(&names, &KeyLayout::PartitionKey, &item).unwrap(), r);
    }

    #[test]
    fn a_readable_partition_key_is_not_repeated_and_a_hashed_one_is() {
        let names = AttributeNames::default();
        let readable = sample(None);
        let item = encode(&names, &KeyLayout::PartitionKey, &readable);
        for absent in ["route", "actor", "idempotency_key"] {
            assert!(!item.contains_key(absent), "{absent} repeated");
        }
        assert_eq!(item["format"], AttributeValue::N("2".into()));
        let mut hashed = sample(None);
        hashed.partition_key = "h1|".to_owned() + &"0".repeat(64);
        let item = encode(&names, &KeyLayout::PartitionKey, &hashed);
        assert_eq!(item["route"], AttributeValue::S("POST /orders".into()));
        assert_eq!(item["actor"], AttributeValue::S("alice".into()));
        assert_eq!(item["idempotency_key"], AttributeValue::S("k".into()));
        assert_eq!(
            decode(&names, &KeyLayout::PartitionKey, &item).unwrap(),
            hashed
        );
        // Without them a hashed key's triple is lost: a typed error, not a guess.
        let mut lost = item.clone();
        lost.remove("actor");
        let err = decode(&names, &KeyLayout::PartitionKey, &lost).unwrap_err();
        assert!(err.to_string().contains("actor is missing"), "{err}");
    }

    #[test]
    fn format_one_items_still_decode() {
        // As version 1 wrote them: the triple repeated, format 1.
        let names = AttributeNames::default();
        let r = sample(Some(b"{}".to_vec()));
        let mut item = encode(&names, &KeyLayout::PartitionKey, &r);
        item.insert("format".into(), AttributeValue::N("1".into()));
        item.insert("route".into(), AttributeValue::S("POST /orders".into()));
        item.insert("actor".into(), AttributeValue::S("alice".into()));
        item.insert("idempotency_key".into(), AttributeValue::S("k".into()));
        assert_eq!(decode(&names, &KeyLayout::PartitionKey, &item).unwrap(), r);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // The first byte of SHA-256("") is 0xe3 = 227; 227 % 8 = 3.
        assert_eq!(expiry_shard(""), 3);
        let mut seen = [0u32; EXPIRY_SHARDS as usize];
        for i in 0..800 {
            seen[usize::from(expiry_shard(&format!("k1|r|a|key-{i}")))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(expiry_bucket(-1, ""), "-1#3");
        assert_eq!(expiry_bucket(7199, ""), "1#3");
    }

    #[test]
    fn corrupt_items_are_typed_errors() {
        let names = AttributeNames::default();
        let good = encode(&names, &KeyLayout::PartitionKey, &sample(None));
        let cases: Vec<(&str, Option<AttributeValue>)> = vec![
            ("status", Some(AttributeValue::S("DONE".into()))),
            ("status", None),
            ("expires_at", Some(AttributeValue::S("soon".into()))),
            ("expires_at", Some(AttributeValue::N("1.5".into()))),
            ("response", Some(AttributeValue::S("text".into()))),
            ("format", Some(AttributeValue::N("3".into()))),
            ("format", Some(AttributeValue::N("0".into()))),
            ("route", Some(AttributeValue::N("1".into()))),
            ("fingerprint", None),
        ];
        for (name, value) in cases {
            let mut item = good.clone();
            match value {
                Some(v) => item.insert(name.to_owned(), v),
                None => item.remove(name),
            };
            let err = decode(&names, &KeyLayout::PartitionKey, &item).unwrap_err();
            assert!(
                matches!(&err, Error::CorruptRecord { partition_key, .. } if partition_key == "k1|12:POST /orders|5:alice|k"),
                "{name}: {err}"
            );
        }
    }
}
