//! The sweeper against DynamoDB Local, with a manual clock to make records expire.
//! Needs `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use lambda_idempotency_test_support as support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_idempotency::clock::{Clock, ManualClock, SystemClock};
use lambda_idempotency::fingerprint::Fingerprint;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::ops::Day;
use lambda_idempotency::ops::{
    DayCounts, DeleteOutcome, EXPIRY_INDEX, SweepOptions, check_inflight_index, delete_expired,
    expiry_bucket, read_stats, stats_key,
};
use lambda_idempotency::record::Status;
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{BeginOutcome, BeginRequest, Lease, Store};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sweeper::Sweeper;

const HOUR: Duration = Duration::from_secs(3600);

/// The day most records here are created on: a week from now. DynamoDB Local runs
/// TTL, so the manual clock runs ahead of the real one: records it has expired must
/// not have expired for TTL.
fn day() -> Day {
    Day::of_millis(SystemClock.now_millis()).plus_days(7)
}

/// `hh:mm` on `DAY` (negative hours: the day before), epoch ms.
fn at(hours: i64, minutes: i64) -> i64 {
    (day().start_secs() + hours * 3600 + minutes * 60) * 1000
}

struct Harness {
    client: aws_sdk_dynamodb::Client,
    table: String,
    store: DynamoDbStore,
    clock: ManualClock,
}

impl Harness {
    async fn new() -> Self {
        Self::with_client(support::client().await).await
    }

    async fn with_client(client: aws_sdk_dynamodb::Client) -> Self {
        let table = support::fresh_sweeper_table(&client, &AttributeNames::default()).await;
        let clock = ManualClock::new(at(10, 0));
        let store = DynamoDbStore::new(client.clone(), table.clone()).with_clock(clock.clone());
        Self {
            client,
            table,
            store,
            clock,
        }
    }

    fn sweeper(&self, options: SweepOptions) -> Sweeper {
        Sweeper::new(self.store.clone(), options).with_clock(self.clock.clone())
    }

    async fn begin(&self, key: &str, expiry: Duration) -> Lease {
        match self.store.begin(&request(key, expiry)).await.unwrap() {
            BeginOutcome::Started { lease, .. } => lease,
            other => panic!("expected Started, got {other:?}"),
        }
    }

    async fn completed(&self, key: &str, expiry: Duration) -> String {
        let lease = self.begin(key, expiry).await;
        self.store.complete(&lease, b"{\"ok\":true}").await.unwrap();
        lease.partition_key
    }

    async fn errored(&self, key: &str, expiry: Duration) -> String {
        let lease = self.begin(key, expiry).await;
        self.store.fail(&lease).await.unwrap();
        lease.partition_key
    }

    async fn abandoned(&self, key: &str, expiry: Duration) -> String {
        self.begin(key, expiry).await.partition_key
    }

    /// Every item in the table, expired or not, by partition key.
    async fn items(&self) -> HashMap<String, HashMap<String, AttributeValue>> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        out.items()
            .iter()
            .map(|item| {
                let AttributeValue::S(pk) = &item["pk"] else {
                    panic!("pk is not a string")
                };
                (pk.clone(), item.clone())
            })
            .collect()
    }

    async fn stats(&self, today: Day, days: u32) -> Vec<(String, DayCounts)> {
        read_stats(&self.store, today, days)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.day.to_string(), d.counts))
            .collect()
    }
}

fn request(key: &str, expiry: Duration) -> BeginRequest {
    BeginRequest {
        scope: Scope::new("POST /orders", "alice", IdempotencyKey::parse(key).unwrap()),
        fingerprint: Fingerprint::from_stored("v1:same-request".into()),
        lease: Duration::from_secs(30),
        expiry,
    }
}

fn counts(created: u64, completed: u64, errored: u64, abandoned: u64) -> DayCounts {
    DayCounts {
        created,
        completed,
        errored,
        abandoned,
    }
}

fn small(max_items: u32) -> SweepOptions {
    SweepOptions {
        max_items,
        lookback_hours: 2,
        page_size: 4,
    }
}

#[tokio::test]
async fn expired_records_of_every_status_are_deleted_and_counted_by_creation_day() {
    let h = Harness::new().await;
    // Created at 23:30 the day before, expired at 00:30.
    h.clock.set_millis(at(-1, 30));
    let yesterday = h.completed("yesterday", HOUR).await;
    // Created at 10:00, expiring at 11:00.
    h.clock.set_millis(at(10, 0));
    let completed = h.completed("completed", HOUR).await;
    let errored = h.errored("errored", HOUR).await;
    let abandoned = h.abandoned("abandoned", HOUR).await;
    let live_for_a_day = h.completed("live-for-a-day", 24 * HOUR).await;
    // At 11:00:01 the first four have expired; one more is begun now.
    h.clock.set_millis(at(11, 0) + 1000);
    let live_new = h.abandoned("live-new", HOUR).await;

    let report = h.sweeper(SweepOptions::default()).run().await.unwrap();
    assert_eq!(
        (report.scanned, report.deleted, report.skipped_rebegun),
        (4, 4, 0)
    );
    assert_eq!(
        (report.completed, report.errored, report.abandoned),
        (2, 1, 1)
    );
    assert!(!report.reached_max_items);
    // 8 shards x (73 + 1) hours, 4 deletes, one stats update per day touched.
    assert_eq!(report.queries, 8 * 74);
    assert_eq!(report.deletes, 4);
    assert_eq!(report.stats_updates, 2);
    assert_eq!(report.dynamodb_calls, 8 * 74 + 4 + 2);
    assert_eq!(
        report.stats_days,
        [day().minus_days(1), day()],
        "by creation day"
    );

    let items = h.items().await;
    for gone in [&yesterday, &completed, &errored, &abandoned] {
        assert!(!items.contains_key(gone), "{gone} was not deleted");
    }
    for live in [&live_for_a_day, &live_new] {
        assert!(items.contains_key(live), "{live} was deleted");
        assert!(h.store.get(live).await.unwrap().is_some());
    }

    let stats = h.stats(day(), 7).await;
    assert_eq!(stats.len(), 7);
    assert_eq!(stats[0], (day().to_string(), counts(3, 1, 1, 1)));
    assert_eq!(
        stats[1],
        (day().minus_days(1).to_string(), counts(1, 1, 0, 0))
    );
    assert_eq!(
        stats[6],
        (day().minus_days(6).to_string(), DayCounts::default())
    );

    // The stats item: TTL at the end of its day + 8 days, and not in the expiry index.
    let item = &items[&stats_key(day())];
    assert_eq!(item["day"], AttributeValue::S(day().to_string()));
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((day().plus_days(9).start_secs()).to_string())
    );
    assert!(!item.contains_key("expiry_bucket"));
    assert_eq!(items.len(), 2 + 2, "two live records and two stats items");
}

#[tokio::test]
async fn a_record_begun_again_between_query_and_delete_is_never_deleted() {
    let h = Harness::new().await;
    let pk = h.completed("rebegun", HOUR).await;
    h.clock.advance(HOUR + Duration::from_secs(1));
    let now = h.clock.now_secs();

    // The sweeper's query finds the expired key...
    let old_expiry = day().start_secs() + 11 * 3600;
    let found = h
        .client
        .query()
        .table_name(&h.table)
        .index_name(EXPIRY_INDEX)
        .key_condition_expression("expiry_bucket = :b AND expires_at < :now")
        .expression_attribute_values(":b", AttributeValue::S(expiry_bucket(old_expiry, &pk)))
        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(found.items().len(), 1);
    assert_eq!(found.items()[0]["pk"], AttributeValue::S(pk.clone()));

    // ... a retry of the same request begins it again ...
    let BeginOutcome::Started { replaced, .. } =
        h.store.begin(&request("rebegun", HOUR)).await.unwrap()
    else {
        panic!("an expired record must be begun over");
    };
    assert_eq!(replaced.unwrap().status, Status::Completed);

    // ... and the delete, conditional on expiry, leaves it alone.
    assert_eq!(
        delete_expired(&h.store, &pk, now).await.unwrap(),
        DeleteOutcome::Rebegun
    );
    let record = h.store.get(&pk).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(
        delete_expired(&h.store, "k1|no-such-record", now)
            .await
            .unwrap(),
        DeleteOutcome::Gone
    );

    // A sweep now does not see it (it moved to its new expiry's bucket) ...
    let report = h.sweeper(small(100)).run().await.unwrap();
    assert_eq!((report.scanned, report.deleted), (0, 0));
    assert!(h.store.get(&pk).await.unwrap().is_some());

    // ... and deletes it once that expiry has passed, as an abandoned request.
    h.clock.advance(HOUR + Duration::from_secs(1));
    let report = h.sweeper(small(100)).run().await.unwrap();
    assert_eq!((report.deleted, report.abandoned), (1, 1));
    assert!(h.store.read_record(&pk).await.unwrap().is_none());
}

#[tokio::test]
async fn max_items_bounds_a_run_the_next_run_continues_and_stats_accumulate() {
    let (client, calls) = support::counting_client().await;
    let h = Harness::with_client(client).await;
    for i in 0..25 {
        h.completed(&format!("order-{i}"), HOUR).await;
    }
    h.clock.advance(HOUR + Duration::from_secs(1));
    calls.take();

    let sweeper = h.sweeper(small(10));
    let mut runs = Vec::new();
    loop {
        let report = sweeper.run().await.unwrap();
        assert!(report.scanned <= 10);
        assert_eq!(report.deleted, report.scanned);
        assert_eq!(report.completed, report.deleted);
        assert_eq!(report.stats_updates, u64::from(report.deleted > 0));
        // The report counts every call the client made.
        assert_eq!(calls.take().len() as u64, report.dynamodb_calls);
        runs.push((report.deleted, report.reached_max_items));
        if report.deleted == 0 {
            // Nothing left: one query per shard and hour, nothing else.
            assert_eq!(report.queries, 8 * 3);
            assert_eq!(report.dynamodb_calls, 8 * 3);
            break;
        }
        let so_far: u64 = runs.iter().map(|r| r.0).sum();
        assert_eq!(
            h.stats(day(), 1).await[0].1,
            counts(so_far, so_far, 0, 0),
            "stats accumulate across runs"
        );
        calls.take(); // the BatchGetItem of read_stats
    }
    assert_eq!(runs, [(10, true), (10, true), (5, false), (0, false)]);
    assert_eq!(
        h.items().await.len(),
        1,
        "only the stats item is left: {:?}",
        h.items().await.keys()
    );
}

#[tokio::test]
async fn the_handler_accepts_a_scheduled_event_and_returns_the_report() {
    let h = Harness::new().await;
    h.abandoned("handler-1", HOUR).await;
    h.clock.advance(HOUR + Duration::from_secs(1));
    let event: Value = support::events::json("scheduled-sweep");
    let report = h
        .sweeper(small(100))
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["deleted"], 1);
    assert_eq!(json["abandoned"], 1);
    assert_eq!(json["stats_days"], serde_json::json!([day().to_string()]));
    // After the sweep, the gauge: nothing is in flight any more.
    assert_eq!(json["in_flight"]["live"], 0);
    assert_eq!(json["in_flight"]["lapsed"], 0);
    // Any payload will do.
    let report = h
        .sweeper(small(100))
        .handle(LambdaEvent::new(Value::Null, Context::default()))
        .await
        .unwrap();
    assert_eq!(report.sweep.unwrap().deleted, 0);
}

fn run_binary(env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sweeper"));
    command
        .env_remove("IDEMPOTENCY_TABLE")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn start_up_errors_are_one_clear_line() {
    let _ = support::endpoint();
    assert_eq!(
        run_binary(&[]),
        (
            1,
            "sweeper: environment variable IDEMPOTENCY_TABLE must name a DynamoDB table\n".into()
        )
    );
    assert_eq!(
        run_binary(&[("IDEMPOTENCY_TABLE", "no-such-table")]),
        (
            1,
            "sweeper: idempotency table \"no-such-table\" not found\n".into()
        )
    );
    assert_eq!(
        run_binary(&[("IDEMPOTENCY_TABLE", "t"), ("SWEEP_LOOKBACK_HOURS", "1000")]),
        (
            1,
            "sweeper: environment variable SWEEP_LOOKBACK_HOURS must be a whole number from 0 to 744, not \"1000\"\n"
                .into()
        )
    );

    // A table created without the expiry index.
    let client = support::client().await;
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    client
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (code, stderr) = run_binary(&[("IDEMPOTENCY_TABLE", &table)]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("sweeper: idempotency store rejected the request: table ")
            && stderr.contains("has no index \"expiry-index\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The in-flight gauge counts exactly the records `PENDING` with a live lease: not
/// the completed or failed ones (they leave the index), not the abandoned ones
/// (counted apart, as lapsed), and a lapsed record taken over counts once, as live.
#[tokio::test]
async fn the_in_flight_gauge_counts_pending_records_with_a_live_lease() {
    let h = Harness::new().await;
    let sweeper = h.sweeper(small(100));
    let count = |live, lapsed| (live, lapsed);
    let measure = || async {
        let c = sweeper.measure_in_flight().await.unwrap().unwrap();
        assert_eq!(c.dynamodb_calls, 8, "one query per shard");
        count(c.live, c.lapsed)
    };
    assert_eq!(measure().await, count(0, 0));

    // Three abandoned at 10:00 (30 s leases), lapsed a minute later.
    for key in ["gone-1", "gone-2", "gone-3"] {
        h.abandoned(key, HOUR).await;
    }
    assert_eq!(measure().await, count(3, 0));
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(measure().await, count(0, 3));

    // Now: five begun, of which one completes and one fails.
    let mut leases = Vec::new();
    for i in 0..5 {
        leases.push(h.begin(&format!("live-{i}"), HOUR).await);
    }
    assert_eq!(measure().await, count(5, 3));
    h.store
        .complete(&leases[0], b"{\"ok\":true}")
        .await
        .unwrap();
    h.store.fail(&leases[1]).await.unwrap();
    assert_eq!(measure().await, count(3, 3));
    let items = h.items().await;
    for done in [&leases[0], &leases[1]] {
        assert!(
            !items[&done.partition_key].contains_key("inflight_shard"),
            "a finished record leaves the in-flight index"
        );
    }
    assert!(items[&leases[2].partition_key].contains_key("inflight_shard"));

    // A retry takes one abandoned key over: live again, and counted once.
    h.begin("gone-1", HOUR).await;
    assert_eq!(measure().await, count(4, 2));

    // The one-minute task measures only the gauge; its report says so.
    let event: Value = support::events::json("sweeper-in-flight");
    let report = sweeper
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(report.sweep.is_none());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["in_flight"]["live"], 4);
    assert_eq!(json["in_flight"]["lapsed"], 2);
    assert!(json.get("deleted").is_none(), "{json}");
    let line = sweeper::in_flight_emf_line(&h.table, report.in_flight.as_ref().unwrap(), 0);
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["idempotency.inflight.gauge"], 4);
    assert_eq!(line["idempotency.inflight_lapsed.gauge"], 2);
    assert_eq!(line["table"], h.table.as_str());

    // A task it does not know is refused, and counting can be turned off.
    let err = sweeper
        .handle(LambdaEvent::new(
            serde_json::json!({"task": "vacuum"}),
            Context::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Sweeper.Task");
    let off = h.sweeper(small(100)).with_in_flight(false);
    assert_eq!(off.measure_in_flight().await.unwrap(), None);
}

/// A table created before the in-flight index: the check says so, and
/// `create_table_with` (sweeper indexes) adds the index to it.
#[tokio::test]
async fn a_table_without_the_in_flight_index_is_reported_and_can_get_it() {
    let client = support::client().await;
    let names = AttributeNames::default();
    let table = support::fresh_table_with_indexes(&client, &names, &[EXPIRY_INDEX]).await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let err = check_inflight_index(&store).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("has no index \"inflight-index\" on (inflight_shard, lease_expires_at_ms)"),
        "{err}"
    );
    // A sweeper told to count on such a table fails its run with the store's error.
    let err = Sweeper::new(store.clone(), small(10))
        .measure_in_flight()
        .await
        .unwrap_err();
    assert!(matches!(err, sweeper::SweepError::Store(_)), "{err}");
    // The function's sweeper then sweeps without the gauge, and checks at each run.
    let sweeper = Sweeper::new(store.clone(), small(10)).with_in_flight_when_index_active();
    assert_eq!(sweeper.measure_in_flight().await.unwrap(), None);
    lambda_idempotency::ops::create_table_with(
        &client,
        &table,
        &names,
        &lambda_idempotency::store::dynamodb::KeyLayout::PartitionKey,
        lambda_idempotency::ops::TableIndexes::Sweeper,
    )
    .await
    .unwrap();
    // Added, not waited for: DynamoDB backfills it from the records, which carry the
    // attribute already (DynamoDB Local may leave it CREATING for minutes).
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let index = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("inflight-index"))
        .expect("the in-flight index was added");
    let keys: Vec<_> = index
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(
        keys,
        [("inflight_shard", "HASH"), ("lease_expires_at_ms", "RANGE")]
    );
    assert_eq!(
        index.projection().and_then(|p| p.projection_type()),
        Some(&aws_sdk_dynamodb::types::ProjectionType::KeysOnly)
    );
    match check_inflight_index(&store).await {
        Ok(()) => assert!(sweeper.measure_in_flight().await.unwrap().is_some()),
        Err(e) => {
            assert!(e.to_string().contains("is CREATING"), "{e}");
            assert_eq!(sweeper.measure_in_flight().await.unwrap(), None);
        }
    }
}
