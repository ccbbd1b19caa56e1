//! The DynamoDB item decoder: an item read back from the table (a record written by
//! any version, or damaged by hand) either decodes or is a typed `CorruptRecord`
//! error, never a panic; what decodes encodes back (as the begin's item: the
//! omitted-response size is written by the completion, not by `encode`) to an item
//! that decodes the same.
//! Inputs start from a valid record's item (or an empty one) and replace, add or
//! remove attributes, so the fuzzer reaches the decoder's later checks.
#![no_main]

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_idempotency::__internals::dynamodb_codec::{decode, encode};
use lambda_idempotency::Error;
use lambda_idempotency::fingerprint::Fingerprint;
use lambda_idempotency::record::{LeaseToken, Record, Status};
use lambda_idempotency::store::dynamodb::{AttributeNames, KeyLayout};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Value {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<String>),
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// One of the record's attribute names, by index.
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Set(Name, Value),
    Remove(Name),
}

#[derive(Arbitrary, Debug)]
struct Input {
    from_valid: bool,
    static_layout: bool,
    hashed_key: bool,
    response: Option<Vec<u8>>,
    edits: Vec<Edit>,
}

const KNOWN: [&str; 18] = [
    "pk",
    "sk",
    "status",
    "fingerprint",
    "lease_token",
    "lease_expires_at_ms",
    "expires_at",
    "response",
    "response_encoding",
    "response_omitted_bytes",
    "created_at_ms",
    "updated_at_ms",
    "route",
    "actor",
    "idempotency_key",
    "format",
    "expiry_bucket",
    "inflight_shard",
];

fn record(hashed_key: bool, response: Option<Vec<u8>>) -> Record {
    Record {
        partition_key: if hashed_key {
            format!("h1|{}", "ab".repeat(32))
        } else {
            "k1|12:POST /orders|5:alice|order-1".to_owned()
        },
        status: if response.is_some() {
            Status::Completed
        } else {
            Status::Pending
        },
        fingerprint: Fingerprint::from_stored("v2:00".to_owned()),
        lease_token: LeaseToken::from_stored("token".to_owned()),
        lease_expires_at_ms: 1_700_000_030_000,
        expires_at: 1_700_086_400,
        response,
        response_omitted: None,
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_001_000,
        route: "POST /orders".to_owned(),
        actor: "alice".to_owned(),
        key: "order-1".to_owned(),
    }
}

fn value(v: Value) -> AttributeValue {
    match v {
        Value::S(s) => AttributeValue::S(s),
        Value::N(n) => AttributeValue::N(n),
        Value::B(b) => AttributeValue::B(Blob::new(b)),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null => AttributeValue::Null(true),
        Value::L(items) => AttributeValue::L(items.into_iter().map(AttributeValue::S).collect()),
    }
}

fn name(n: Name) -> String {
    match n {
        Name::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].to_owned(),
        Name::Other(s) => s,
    }
}

fuzz_target!(|input: Input| {
    let names = AttributeNames::default();
    let layout = if input.static_layout {
        KeyLayout::static_partition("idempotency#orders", "sk")
    } else {
        KeyLayout::PartitionKey
    };
    let mut item: HashMap<String, AttributeValue> = if input.from_valid {
        encode(&names, &layout, &record(input.hashed_key, input.response))
    } else {
        HashMap::new()
    };
    for edit in input.edits {
        match edit {
            Edit::Set(n, v) => {
                item.insert(name(n), value(v));
            }
            Edit::Remove(n) => {
                item.remove(&name(n));
            }
        }
    }
    match decode(&names, &layout, &item) {
        Ok(mut record) => {
            record.response_omitted = None;
            match decode(&names, &layout, &encode(&names, &layout, &record)) {
                Ok(again) => assert_eq!(again, record, "a decoded record round-trips"),
                Err(e) => panic!("a decoded record does not decode once encoded: {e}"),
            }
        }
        Err(Error::CorruptRecord { .. }) => {}
        Err(other) => panic!("not a CorruptRecord: {other:?}"),
    }
});
