//! The behaviour suite and the DynamoDB-specific checks, against DynamoDB Local.
//!
//! Needs `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use crate::support;
use lambda_idempotency::testing as behaviour;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, TimeToLiveStatus};
use behaviour::{request, start, with_body};
use lambda_idempotency::Error;
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::ops::{
    EXPIRY_INDEX, TableIndexes, create_table, create_table_with, expiry_bucket,
};
use lambda_idempotency::record::Status;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore, KeyLayout};
use lambda_idempotency::store::{BeginOutcome, Store, WriteOutcome};

async fn make() -> (Arc<dyn Store>, ManualClock) {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    let clock = ManualClock::starting_now();
    (
        Arc::new(DynamoDbStore::new(client, table).with_clock(clock.clone())),
        clock,
    )
}

lambda_idempotency::behaviour_suite!(make());

async fn counting_store() -> (DynamoDbStore, support::CallCounter) {
    let (client, counter) = support::counting_client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    counter.take();
    (DynamoDbStore::new(client, table), counter)
}

#[tokio::test]
async fn new_key_then_complete_is_two_calls() {
    let (store, calls) = counting_store().await;
    let lease = start(&store, &request("{}")).await;
    assert_eq!(
        store.complete(&lease, b"ok").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(calls.take(), ["PutItem", "UpdateItem"]);
}

#[tokio::test]
async fn replay_mismatch_and_in_flight_are_one_call_each() {
    let (store, calls) = counting_store().await;

    let done = request(r#"{"a":1}"#);
    let lease = start(&store, &done).await;
    store.complete(&lease, b"ok").await.unwrap();
    calls.take();
    assert!(
        matches!(store.begin(&done).await.unwrap(), BeginOutcome::Replay(r) if r.response.as_deref() == Some(&b"ok"[..]))
    );
    assert_eq!(calls.take(), ["PutItem"], "replay");

    assert!(matches!(
        store.begin(&with_body(&done, r#"{"a":2}"#)).await.unwrap(),
        BeginOutcome::Mismatch(_)
    ));
    assert_eq!(calls.take(), ["PutItem"], "mismatch");

    let running = request("{}");
    start(&store, &running).await;
    calls.take();
    assert!(matches!(
        store.begin(&running).await.unwrap(),
        BeginOutcome::InFlight(_)
    ));
    assert_eq!(calls.take(), ["PutItem"], "in flight");
}

#[tokio::test]
async fn failing_a_request_is_two_calls() {
    let (store, calls) = counting_store().await;
    let lease = start(&store, &request("{}")).await;
    assert_eq!(store.fail(&lease).await.unwrap(), WriteOutcome::Written);
    assert_eq!(calls.take(), ["PutItem", "UpdateItem"]);
}

#[tokio::test]
async fn expired_record_is_still_in_the_table_but_reads_as_absent() {
    let (store, clock) = make().await;
    let r = request("{}");
    let lease = start(&*store, &r).await;
    store.complete(&lease, b"old").await.unwrap();
    clock.advance(behaviour::EXPIRY + Duration::from_secs(1));

    // Expired by our clock, but expires_at is in the real future, so no TTL (DynamoDB
    // Local runs one too) has removed the item: like production's late deletes.
    let raw = support::client()
        .await
        .scan()
        .table_name(table_of(&store))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.count(), 1);
    assert_eq!(store.get(r.scope.partition_key()).await.unwrap(), None);
}

fn table_of(store: &Arc<dyn Store>) -> String {
    // The Debug form names the table; keeps the suite's constructor simple.
    let debug = format!("{store:?}");
    let start = debug.find("idempotency-test-").unwrap();
    debug[start..start + "idempotency-test-".len() + 36].to_owned()
}

#[tokio::test]
async fn missing_table_is_a_typed_error() {
    let store = DynamoDbStore::new(support::client().await, "no-such-table");
    let err = store.begin(&request("{}")).await.unwrap_err();
    assert!(
        matches!(&err, Error::TableNotFound { table } if table == "no-such-table"),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(matches!(
        store.get("pk").await.unwrap_err(),
        Error::TableNotFound { .. }
    ));
}

#[tokio::test]
async fn unreachable_endpoint_is_transient() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = aws_sdk_dynamodb::config::Builder::from(&support::sdk_config().await)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t");
    let err = store.begin(&request("{}")).await.unwrap_err();
    assert!(matches!(err, Error::StoreUnavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(err.error_type(), "Idempotency.StoreUnavailable");
}

#[tokio::test]
async fn corrupt_record_is_a_typed_error_and_is_not_overwritten() {
    let client = support::client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(r.scope.partition_key().into()))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S("DONE?".into()))
        .send()
        .await
        .unwrap();
    let err = store.begin(&r).await.unwrap_err();
    assert!(matches!(err, Error::CorruptRecord { .. }), "{err}");
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(r.scope.partition_key().into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        item.item().unwrap()["status"],
        AttributeValue::S("DONE?".into())
    );
}

#[tokio::test]
async fn custom_attribute_names_work_end_to_end() {
    let client = support::client().await;
    let names = AttributeNames {
        partition_key: "id".into(),
        status: "state".into(),
        expires_at: "ttl".into(),
        response: "body".into(),
        expiry_bucket: "gsi_bucket".into(),
        ..AttributeNames::default()
    };
    let table = support::fresh_sweeper_table(&client, &names).await;
    let store = DynamoDbStore::new(client.clone(), table.clone()).with_attribute_names(names);
    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"stored").await.unwrap();
    assert!(matches!(
        store.begin(&r).await.unwrap(),
        BeginOutcome::Replay(_)
    ));
    let item = client
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S(r.scope.partition_key().into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let keys: HashMap<_, _> = item.into_iter().collect();
    assert_eq!(
        keys["state"],
        AttributeValue::S(Status::Completed.as_str().into())
    );
    assert!(keys.contains_key("ttl") && keys.contains_key("body"));
    let AttributeValue::N(ttl) = &keys["ttl"] else {
        panic!("ttl is not a number")
    };
    assert_eq!(
        keys["gsi_bucket"],
        AttributeValue::S(expiry_bucket(ttl.parse().unwrap(), r.scope.partition_key()))
    );
    assert!(!keys.contains_key("expiry_bucket"));
    let index = expiry_index(&client, &table).await;
    assert_eq!(
        index,
        [
            ("gsi_bucket".into(), "HASH".into()),
            ("ttl".into(), "RANGE".into())
        ]
    );
    assert_ttl_on(&client, &table, "ttl").await;
}

/// TTL is enabled on `attribute` of `table`.
async fn assert_ttl_on(client: &aws_sdk_dynamodb::Client, table: &str, attribute: &str) {
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let spec = ttl.time_to_live_description().unwrap();
    assert_eq!(spec.attribute_name(), Some(attribute));
    assert_eq!(spec.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

/// The names of `table`'s global secondary indexes, sorted.
async fn index_names(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn create_table_is_idempotent_and_enables_ttl() {
    let client = support::client().await;
    let names = AttributeNames::default();
    // The default table has no secondary index: a new key writes the table only.
    let table = support::fresh_table(&client, &names).await;
    create_table(&client, &table, &names).await.unwrap();
    assert_ttl_on(&client, &table, "expires_at").await;
    assert_eq!(index_names(&client, &table).await, Vec::<String>::new());
    // With the sweeper's indexes.
    let table = support::fresh_sweeper_table(&client, &names).await;
    create_table_with(
        &client,
        &table,
        &names,
        &KeyLayout::PartitionKey,
        TableIndexes::Sweeper,
    )
    .await
    .unwrap();
    assert_ttl_on(&client, &table, "expires_at").await;
    assert_eq!(
        index_names(&client, &table).await,
        ["expiry-index", "inflight-index"]
    );
    // Asked again without them, an existing table keeps its indexes.
    create_table(&client, &table, &names).await.unwrap();
    assert_eq!(
        index_names(&client, &table).await,
        ["expiry-index", "inflight-index"]
    );
    assert_eq!(
        expiry_index(&client, &table).await,
        [
            ("expiry_bucket".into(), "HASH".into()),
            ("expires_at".into(), "RANGE".into())
        ]
    );
}

/// The expiry index's key schema as (attribute, key type), after checking that it
/// projects keys only.
async fn expiry_index(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, String)> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let index = out
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(EXPIRY_INDEX))
        .unwrap_or_else(|| panic!("{table} has no {EXPIRY_INDEX}"));
    assert_eq!(
        index.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::KeysOnly)
    );
    index
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn create_table_adds_the_expiry_index_to_an_older_table() {
    let client = support::client().await;
    let table = support::fresh_pk_table(&client, "idempotency-test").await;
    let names = AttributeNames::default();
    // Without the sweeper's indexes asked for, nothing is added.
    create_table(&client, &table, &names).await.unwrap();
    assert_eq!(index_names(&client, &table).await, Vec::<String>::new());
    let sweeper = TableIndexes::Sweeper;
    create_table_with(&client, &table, &names, &KeyLayout::PartitionKey, sweeper)
        .await
        .unwrap();
    // Added, not waited for (DynamoDB backfills it; Local may leave it CREATING).
    assert_eq!(
        expiry_index(&client, &table).await,
        [
            ("expiry_bucket".into(), "HASH".into()),
            ("expires_at".into(), "RANGE".into())
        ]
    );
    // Again: it is there, nothing to add.
    create_table_with(&client, &table, &names, &KeyLayout::PartitionKey, sweeper)
        .await
        .unwrap();
}

#[tokio::test]
async fn from_env_needs_the_table_variable() {
    // Only this test touches IDEMPOTENCY_TABLE in this process.
    let before = std::env::var("IDEMPOTENCY_TABLE").ok();
    // SAFETY: no other test in this binary reads or writes this variable.
    unsafe { std::env::remove_var("IDEMPOTENCY_TABLE") };
    let err = DynamoDbStore::from_env().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable IDEMPOTENCY_TABLE is not set"
    );
    unsafe { std::env::set_var("IDEMPOTENCY_TABLE", "from-env-table") };
    let store = DynamoDbStore::from_env().await.unwrap();
    assert_eq!(store.table_name(), "from-env-table");
    // The endpoint comes from AWS_ENDPOINT_URL_DYNAMODB: a call reaches DynamoDB Local.
    assert!(matches!(
        store.get("x").await.unwrap_err(),
        Error::TableNotFound { .. }
    ));
    match before {
        Some(v) => unsafe { std::env::set_var("IDEMPOTENCY_TABLE", v) },
        None => unsafe { std::env::remove_var("IDEMPOTENCY_TABLE") },
    }
}

use crate::canned;

/// A DescribeTable answer for `table` with replicas in `regions` and, when given,
/// the `MultiRegionConsistency` field.
fn described(table: &str, regions: &[&str], consistency: Option<&str>) -> String {
    let replicas: Vec<String> = regions
        .iter()
        .map(|r| format!(r#"{{"RegionName":"{r}","ReplicaStatus":"ACTIVE"}}"#))
        .collect();
    let consistency = consistency
        .map(|c| format!(r#","MultiRegionConsistency":"{c}""#))
        .unwrap_or_default();
    format!(
        r#"{{"Table":{{"TableName":"{table}","TableStatus":"ACTIVE","KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}}],"Replicas":[{}]{consistency}}}}}"#,
        replicas.join(",")
    )
}

/// `check_table` reads the table's replication: a single-Region table is fine; an
/// eventually consistent global table is refused (two Regions could each begin one
/// key) unless keys are pinned to one Region; a strongly consistent one is accepted
/// with atomic completion turned off, since MRSC has no transactions.
#[tokio::test]
async fn check_table_refuses_an_eventually_consistent_global_table() {
    let canned = canned::Canned::default();
    let client = canned.client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    let store = || DynamoDbStore::new(client.clone(), &table);

    // DynamoDB Local: one Region.
    store().check_table().await.unwrap();
    assert!(store().transactional().is_some());

    for consistency in [Some("EVENTUAL"), None] {
        canned.answer(
            "DescribeTable",
            1,
            200,
            described(&table, &["us-east-1", "eu-west-1"], consistency),
        );
        let err = store().check_table().await.unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeGlobalTable { regions, .. } if regions == &["us-east-1", "eu-west-1"]),
            "{consistency:?}: {err:?}"
        );
        assert_eq!(err.error_type(), "Idempotency.UnsafeGlobalTable");
        assert!(err.to_string().contains("with_single_region_keys"), "{err}");

        canned.answer(
            "DescribeTable",
            1,
            200,
            described(&table, &["us-east-1", "eu-west-1"], consistency),
        );
        let pinned = store().with_single_region_keys();
        pinned.check_table().await.unwrap();
        assert!(pinned.transactional().is_some());
    }

    canned.answer(
        "DescribeTable",
        1,
        200,
        described(&table, &["us-east-1", "us-east-2"], Some("STRONG")),
    );
    let strong = store();
    strong.check_table().await.unwrap();
    assert!(!strong.transactions_enabled());
    // The layer then runs handlers without atomic writes, and completes with UpdateItem.
    let layer_store = strong.clone();
    assert!(layer_store.transactional().is_none());
    let r = request("{}");
    let lease = start(&strong, &r).await;
    assert_eq!(
        strong.complete(&lease, b"ok").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(canned.answered().len(), 5);
}

/// The same suite and the same single-item protocol on a single-table layout: every
/// record under one static partition key, its key in the sort key.
mod static_partition {
    use super::*;
    use lambda_idempotency::clock::Clock;
    use lambda_idempotency::ops::Day;
    use lambda_idempotency::ops::{SweepOptions, read_stats, sweep};
    use lambda_idempotency::store::dynamodb::KeyLayout;

    const PARTITION: &str = "idempotency#orders-api";

    fn layout() -> KeyLayout {
        KeyLayout::static_partition(PARTITION, "sk")
    }

    async fn store(clock: &ManualClock) -> DynamoDbStore {
        let client = support::client().await;
        // With the sweeper's indexes: this layout's sweep is tested below.
        let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
        let names = AttributeNames::default();
        create_table_with(&client, &table, &names, &layout(), TableIndexes::Sweeper)
            .await
            .unwrap();
        DynamoDbStore::new(client, table)
            .with_key_layout(layout())
            .with_clock(clock.clone())
    }

    async fn make() -> (Arc<dyn Store>, ManualClock) {
        let clock = ManualClock::starting_now();
        (Arc::new(store(&clock).await), clock)
    }

    lambda_idempotency::behaviour_suite!(make());

    #[tokio::test]
    async fn records_share_the_static_partition_each_under_its_own_sort_key() {
        let clock = ManualClock::starting_now();
        let store = store(&clock).await;
        store.check_table().await.unwrap();
        let a = start(&store, &request("order-a")).await;
        let b = start(&store, &request("order-b")).await;
        store.complete(&a, b"{}").await.unwrap();
        let items = store
            .client()
            .query()
            .table_name(store.table_name())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(PARTITION.into()))
            .send()
            .await
            .unwrap();
        let mut sort_keys: Vec<String> = items
            .items()
            .iter()
            .map(|i| i["sk"].as_s().unwrap().clone())
            .collect();
        sort_keys.sort();
        let mut expected = [a.partition_key.clone(), b.partition_key.clone()];
        expected.sort();
        assert_eq!(sort_keys, expected);
        let record = store.get(&a.partition_key).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Completed);
        assert_eq!(record.partition_key, a.partition_key);
        assert!(store.delete(&b.partition_key).await.unwrap());
        assert!(store.get(&b.partition_key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn check_table_refuses_a_table_keyed_for_the_other_layout() {
        let client = support::client().await;
        let plain = support::fresh_table(&client, &AttributeNames::default()).await;
        let err = DynamoDbStore::new(client.clone(), plain.clone())
            .with_key_layout(layout())
            .check_table()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is keyed (pk), but the store's key layout needs (pk, sk)"),
            "{err}"
        );
        let composite =
            support::fresh_table_with_layout(&client, &AttributeNames::default(), &layout()).await;
        let err = DynamoDbStore::new(client.clone(), composite)
            .check_table()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is keyed (pk, sk), but the store's key layout needs (pk)"),
            "{err}"
        );
        DynamoDbStore::new(client, plain)
            .check_table()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_sweeper_deletes_expired_records_and_keeps_stats_in_the_static_layout() {
        let clock = ManualClock::starting_now();
        let store = store(&clock).await;
        let done = start(&store, &request("sweep-done")).await;
        store.complete(&done, b"{}").await.unwrap();
        let _abandoned = start(&store, &request("sweep-abandoned")).await;
        clock.advance(Duration::from_secs(2 * 3600));
        let report = sweep(&store, clock.now_secs(), &SweepOptions::default())
            .await
            .unwrap();
        assert_eq!(report.deleted, 2, "{report:?}");
        assert!(
            store
                .read_record(&done.partition_key)
                .await
                .unwrap()
                .is_none()
        );
        let today = Day::of_secs(clock.now_secs());
        let stats = read_stats(&store, today, 2).await.unwrap();
        let created: u64 = stats.iter().map(|d| d.counts.created).sum();
        let abandoned: u64 = stats.iter().map(|d| d.counts.abandoned).sum();
        assert_eq!((created, abandoned), (2, 1));
    }
}
