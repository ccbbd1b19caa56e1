//! A record as a Redis hash: short, fixed field names, numbers as decimal text, the
//! response as raw bytes.

use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::record::{LeaseToken, Record, Status};

/// The record format version, stored with every record so a later format can read
/// older ones.
pub(super) const FORMAT_VERSION: u32 = 1;
/// The `enc` of a zstd-compressed response.
pub(super) const ZSTD: &str = "zstd";

/// Field names. The scripts use `st`, `fp`, `tok`, `lease` and `exp` by name.
pub(super) mod field {
    pub(in super::super) const STATUS: &str = "st";
    pub(in super::super) const FINGERPRINT: &str = "fp";
    pub(in super::super) const TOKEN: &str = "tok";
    pub(in super::super) const LEASE: &str = "lease";
    pub(in super::super) const EXPIRES_AT: &str = "exp";
    pub(in super::super) const RESPONSE: &str = "resp";
    pub(in super::super) const ENCODING: &str = "enc";
    pub(in super::super) const OMITTED: &str = "omit";
    pub(in super::super) const CREATED: &str = "created";
    pub(in super::super) const UPDATED: &str = "updated";
    pub(in super::super) const PARTITION_KEY: &str = "pk";
    pub(in super::super) const ROUTE: &str = "route";
    pub(in super::super) const ACTOR: &str = "actor";
    pub(in super::super) const KEY: &str = "key";
    pub(in super::super) const FORMAT: &str = "fmt";
}

/// A new record's fields, as `HSET` arguments (name, value, ...). A pending record
/// has no response.
pub(super) fn encode(r: &Record) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(26);
    let mut put = |name: &str, value: Vec<u8>| {
        out.push(name.as_bytes().to_vec());
        out.push(value);
    };
    let text = |v: &str| v.as_bytes().to_vec();
    let number = |v: i64| v.to_string().into_bytes();
    put(field::STATUS, text(r.status.as_str()));
    put(field::FINGERPRINT, text(r.fingerprint.as_str()));
    put(field::TOKEN, text(r.lease_token.as_str()));
    put(field::LEASE, number(r.lease_expires_at_ms));
    put(field::EXPIRES_AT, number(r.expires_at));
    if let Some(response) = &r.response {
        put(field::RESPONSE, response.clone());
    }
    if let Some(size) = r.response_omitted {
        put(field::OMITTED, size.to_string().into_bytes());
    }
    put(field::CREATED, number(r.created_at_ms));
    put(field::UPDATED, number(r.updated_at_ms));
    put(field::PARTITION_KEY, text(&r.partition_key));
    put(field::ROUTE, text(&r.route));
    put(field::ACTOR, text(&r.actor));
    put(field::KEY, text(&r.key));
    put(field::FORMAT, number(i64::from(FORMAT_VERSION)));
    out
}

/// Decodes a record from `HGETALL`'s flat name/value list; a missing or malformed
/// field is [`Error::CorruptRecord`].
pub(super) fn decode(flat: &[Vec<u8>]) -> Result<Record, Error> {
    let get = |name: &str| -> Option<&[u8]> {
        flat.chunks_exact(2)
            .find(|pair| pair[0] == name.as_bytes())
            .map(|pair| pair[1].as_slice())
    };
    let corrupt = |reason: String| Error::CorruptRecord {
        partition_key: get(field::PARTITION_KEY)
            .map(|pk| String::from_utf8_lossy(pk).into_owned())
            .unwrap_or_else(|| "<missing>".to_owned()),
        reason,
    };
    let text = |name: &str| -> Result<String, Error> {
        let bytes = get(name).ok_or_else(|| corrupt(format!("{name} is missing")))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("{name} is not UTF-8")))
    };
    let number = |name: &str| -> Result<i64, Error> {
        let value = text(name)?;
        value
            .parse()
            .map_err(|_| corrupt(format!("{name} is not a whole number: {value:?}")))
    };
    if get(field::FORMAT).is_some() {
        let version = number(field::FORMAT)?;
        if version != i64::from(FORMAT_VERSION) {
            return Err(corrupt(format!(
                "unsupported format {version} (this version reads {FORMAT_VERSION})"
            )));
        }
    }
    let status_text = text(field::STATUS)?;
    let status = Status::parse(&status_text)
        .ok_or_else(|| corrupt(format!("unknown status {status_text:?}")))?;
    let response = match (get(field::RESPONSE), get(field::ENCODING)) {
        (None, None) => None,
        (Some(bytes), None) => Some(bytes.to_vec()),
        (Some(bytes), Some(enc)) if enc == ZSTD.as_bytes() => {
            Some(crate::store::fit::decompress(bytes).map_err(&corrupt)?)
        }
        (_, Some(enc)) => {
            return Err(corrupt(format!(
                "unknown response encoding {:?}",
                String::from_utf8_lossy(enc)
            )));
        }
    };
    let response_omitted = match get(field::OMITTED) {
        None => None,
        Some(_) => Some(
            u64::try_from(number(field::OMITTED)?)
                .map_err(|_| corrupt("negative omitted size".to_owned()))?,
        ),
    };
    Ok(Record {
        partition_key: text(field::PARTITION_KEY)?,
        status,
        fingerprint: Fingerprint::from_stored(text(field::FINGERPRINT)?),
        lease_token: LeaseToken::from_stored(text(field::TOKEN)?),
        lease_expires_at_ms: number(field::LEASE)?,
        expires_at: number(field::EXPIRES_AT)?,
        response,
        response_omitted,
        created_at_ms: number(field::CREATED)?,
        updated_at_ms: number(field::UPDATED)?,
        route: text(field::ROUTE)?,
        actor: text(field::ACTOR)?,
        key: text(field::KEY)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(response: Option<Vec<u8>>) -> Record {
        Record {
            partition_key: "k1|4:POST|5:alice|k".into(),
            status: Status::Completed,
            fingerprint: Fingerprint::from_stored("v2:abc".into()),
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
    fn records_round_trip() {
        for response in [None, Some(vec![]), Some(vec![0, 159, 146, 150, 255])] {
            let r = sample(response);
            assert_eq!(decode(&encode(&r)).unwrap(), r);
        }
        let mut omitted = sample(None);
        omitted.response_omitted = Some(3_000_000);
        assert_eq!(decode(&encode(&omitted)).unwrap(), omitted);
    }

    #[test]
    fn corrupt_records_are_typed_errors_without_the_raw_key_in_the_message() {
        let good = encode(&sample(None));
        let set = |name: &str, value: Option<&[u8]>| {
            let mut flat: Vec<Vec<u8>> = Vec::new();
            for pair in good.chunks_exact(2) {
                if pair[0] != name.as_bytes() {
                    flat.extend_from_slice(pair);
                }
            }
            if let Some(value) = value {
                flat.push(name.as_bytes().to_vec());
                flat.push(value.to_vec());
            }
            flat
        };
        for (name, value) in [
            (field::STATUS, Some(&b"DONE"[..])),
            (field::STATUS, None),
            (field::EXPIRES_AT, Some(&b"soon"[..])),
            (field::LEASE, None),
            (field::FORMAT, Some(&b"2"[..])),
            (field::ENCODING, Some(&b"gzip"[..])),
            (field::FINGERPRINT, Some(&[0xff, 0xfe][..])),
        ] {
            let err = decode(&set(name, value)).unwrap_err();
            assert!(
                matches!(&err, Error::CorruptRecord { partition_key, .. } if partition_key == "k1|4:POST|5:alice|k"),
                "{name}: {err}"
            );
            assert!(!err.to_string().contains("alice"), "{err}");
        }
    }
}
