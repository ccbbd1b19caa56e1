//! The `idem` binary against DynamoDB Local. Needs `AWS_ENDPOINT_URL_DYNAMODB`: run
//! with `make test`.

use lambda_idempotency_test_support as support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lambda_idempotency::clock::{Clock, ManualClock};
use lambda_idempotency::fingerprint::Fingerprint;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::ops::Day;
use lambda_idempotency::ops::{SweepOptions, sweep};
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::dynamodb::{DynamoDbStore, KeyLayout};
use lambda_idempotency::store::{BeginOutcome, BeginRequest, Lease, Store};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `idem` with `args`, `stdin` as its input, and extra environment variables.
fn idem(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idem"));
    command
        .args(args)
        .env_remove("IDEMPOTENCY_TABLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn request(key: &str) -> BeginRequest {
    BeginRequest {
        scope: Scope::new("POST /orders", "alice", IdempotencyKey::parse(key).unwrap()),
        fingerprint: Fingerprint::from_stored("v1:0123abcd".into()),
        lease: Duration::from_secs(30),
        expiry: Duration::from_secs(3600),
    }
}

async fn begin(store: &DynamoDbStore, key: &str) -> Lease {
    match store.begin(&request(key)).await.unwrap() {
        BeginOutcome::Started { lease, .. } => lease,
        other => panic!("expected Started, got {other:?}"),
    }
}

/// A table made by `idem table create`.
async fn created_table() -> String {
    let _ = support::endpoint();
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    let out = idem(
        &[
            "table",
            "create",
            "--with-sweeper-indexes",
            "--table",
            &table,
        ],
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "table {table:?} is ready: partition key pk (S), TTL on expires_at, index expiry-index on (expiry_bucket, expires_at), index inflight-index on (inflight_shard, lease_expires_at_ms)\n"
        )
    );
    table
}

const ORDER: [&str; 6] = [
    "--route",
    "POST /orders",
    "--actor",
    "alice",
    "--key",
    "order-1",
];

#[tokio::test]
async fn create_inspect_and_purge() {
    let table = created_table().await;
    // Creating it again keeps it.
    assert_eq!(
        idem(&["table", "create", "--table", &table], "", &[]).code,
        0
    );

    let store = DynamoDbStore::new(support::client().await, table.clone());
    let lease = begin(&store, "order-1").await;
    // In flight until it completes.
    let inflight = || idem(&["inflight", "--table", &table], "", &[]);
    let in_flight_now = |live: u32| {
        format!(
            "table {table:?}: {live} in flight (PENDING, lease live), 0 abandoned (PENDING, lease lapsed)\n"
        )
    };
    let out = inflight();
    assert_eq!(
        (out.code, out.stdout),
        (0, in_flight_now(1)),
        "{}",
        out.stderr
    );
    store
        .complete(&lease, br#"{"orderId":"o-1"}"#)
        .await
        .unwrap();
    assert_eq!(inflight().stdout, in_flight_now(0));
    let pk = lease.partition_key.clone();
    assert_eq!(pk, "k1|12:POST /orders|5:alice|order-1");

    // The table from IDEMPOTENCY_TABLE.
    let out = idem(
        &[&["inspect"][..], &ORDER[..]].concat(),
        "",
        &[("IDEMPOTENCY_TABLE", &table)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("partition key  {pk}"));
    assert_eq!(lines[1], "status         COMPLETED");
    assert_eq!(lines[2], "route          POST /orders");
    assert_eq!(lines[3], "actor          alice");
    assert_eq!(lines[4], "key            order-1");
    assert!(lines[5].starts_with("created        20") && lines[5].contains(" UTC ("));
    assert!(
        lines[7].starts_with("expires        ") && lines[7].contains(" UTC (in 59m "),
        "{}",
        lines[7]
    );
    assert!(lines[8].starts_with("lease until    ") && lines[8].ends_with("[released]"));
    assert_eq!(lines[9], "fingerprint    v1:0123abcd");
    assert_eq!(lines[10], "response       17 bytes");

    let out = idem(
        &[
            "inspect",
            "--route",
            "POST /orders",
            "--actor",
            "bob",
            "--key",
            "order-1",
            "--table",
            &table,
        ],
        "",
        &[],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "no record for route \"POST /orders\", actor \"bob\", key \"order-1\" (partition key k1|12:POST /orders|3:bob|order-1)\n"
        )
    );

    // "n" keeps it.
    let purge = [&["purge", "--table", &table][..], &ORDER[..]].concat();
    let out = idem(&purge, "n\n", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with(&format!("record {pk}: COMPLETED, created "))
    );
    assert_eq!(
        out.stderr,
        format!("Delete record {pk}? [y/N] idem: not confirmed: record {pk} kept\n")
    );
    assert!(store.get(&pk).await.unwrap().is_some());

    // No answer at all (stdin closed) keeps it too.
    let out = idem(&purge, "", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.ends_with(&format!(
            "idem: no answer on standard input: record {pk} kept (pass --yes to delete without asking)\n"
        )),
        "{}",
        out.stderr
    );
    assert!(store.get(&pk).await.unwrap().is_some());

    // "y" deletes.
    let out = idem(&purge, "y\n", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with(&format!("deleted record {pk}\n")));
    assert!(store.read_record(&pk).await.unwrap().is_none());

    // --yes deletes without asking.
    let lease = begin(&store, "order-1").await;
    let out = idem(&[&purge[..], &["--yes"][..]].concat(), "", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout.lines().last().unwrap(),
        format!("deleted record {}", lease.partition_key)
    );
    assert!(store.read_record(&pk).await.unwrap().is_none());

    // Nothing left to purge.
    let out = idem(&[&purge[..], &["--yes"][..]].concat(), "", &[]);
    assert_eq!(
        (out.code, out.stdout),
        (0, format!("no record {pk}: nothing to delete\n"))
    );
}

#[tokio::test]
async fn stats_after_a_sweep() {
    let table = created_table().await;
    let clock = ManualClock::starting_now();
    let store =
        DynamoDbStore::new(support::client().await, table.clone()).with_clock(clock.clone());
    let created_on = Day::of_millis(clock.now_millis());
    let done = begin(&store, "paid").await;
    store.complete(&done, b"ok").await.unwrap();
    let failed = begin(&store, "declined").await;
    store.fail(&failed).await.unwrap();
    begin(&store, "timed-out").await;

    // Two hours on, all three have expired for the sweeper (not yet for TTL).
    clock.advance(Duration::from_secs(2 * 3600));
    let report = sweep(
        &store,
        clock.now_secs(),
        &SweepOptions {
            lookback_hours: 3,
            ..SweepOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.deleted, 3);

    let out = idem(&["stats", "--table", &table], "", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[2],
        "day           created  completed    errored  abandoned"
    );
    let rows = &lines[3..10];
    let today = Day::of_millis(lambda_idempotency::clock::SystemClock.now_millis());
    for (i, row) in rows.iter().enumerate() {
        let day = today.minus_days(i as i64);
        let expected = if day == created_on {
            format!("{day}          3          1          1          1")
        } else {
            format!("{day}          0          0          0          0")
        };
        assert_eq!(*row, expected);
    }
    assert_eq!(lines[10], "");
    assert!(
        out.stdout
            .contains("idempotency.replay.count and idempotency.conflict.count")
    );

    let out = idem(&["stats", "--days", "2", "--table", &table], "", &[]);
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("20")).count(),
        2
    );
    let out = idem(&["stats", "--days", "0", "--table", &table], "", &[]);
    assert_eq!(out.code, 2, "a usage error");
}

#[tokio::test]
async fn a_missing_table_names_the_fix() {
    let _ = support::endpoint();
    let expected = "idem: table \"no-such-table\" does not exist (create it with: idem table create --table no-such-table)\n";
    for args in [
        &[&["inspect", "--table", "no-such-table"][..], &ORDER[..]].concat(),
        &[
            &["purge", "--yes", "--table", "no-such-table"][..],
            &ORDER[..],
        ]
        .concat(),
        &vec!["stats", "--table", "no-such-table"],
    ] {
        let out = idem(args, "", &[]);
        assert_eq!((out.code, out.stderr.as_str()), (1, expected), "{args:?}");
        assert_eq!(out.stdout, "");
    }
    // And from the environment variable.
    let out = idem(&["stats"], "", &[("IDEMPOTENCY_TABLE", "no-such-table")]);
    assert_eq!((out.code, out.stderr.as_str()), (1, expected));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_one_line_within_a_second_or_so() {
    let _ = support::endpoint();
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    for args in [
        &["stats", "--table", "t"][..],
        &[&["inspect", "--table", "t"][..], &ORDER[..]].concat(),
        &["table", "create", "--table", "t"][..],
    ] {
        let start = Instant::now();
        let out = idem(args, "", &[("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)]);
        let took = start.elapsed();
        assert_eq!(out.code, 1, "{args:?}");
        assert!(
            out.stderr
                .starts_with(&format!("idem: cannot reach DynamoDB at {endpoint}: ")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains("panicked") && !out.stderr.contains("{"));
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}

#[test]
fn usage_errors() {
    let out = idem(
        &[
            "inspect", "--route", "r", "--actor", "a", "--key", "bad key", "--table", "t",
        ],
        "",
        &[],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "idem: --key \"bad key\": the idempotency key has an invalid character ' ' at position 4 (allowed: ASCII letters, digits, '-' and '_')\n"
    );
    let out = idem(&["stats"], "", &[]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "idem: no table given: pass --table or set IDEMPOTENCY_TABLE\n"
        )
    );
    let out = idem(&["inspect", "--route", "r"], "", &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--actor <ACTOR>"), "{}", out.stderr);
}

#[tokio::test]
async fn a_single_table_layout_from_the_environment() {
    let _ = support::endpoint();
    let table = format!("idempotency-test-{}", uuid::Uuid::new_v4());
    let layout = [
        ("IDEMPOTENCY_STATIC_PARTITION_KEY", "idempotency#orders-api"),
        ("IDEMPOTENCY_SORT_KEY", "sk"),
    ];
    let out = idem(&["table", "create", "--table", &table], "", &layout);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "table {table:?} is ready: partition key pk (S), sort key sk (S), TTL on expires_at, no secondary index (the sweeper's: --with-sweeper-indexes)\n"
        )
    );
    let store = DynamoDbStore::new(support::client().await, table.clone())
        .with_key_layout(KeyLayout::static_partition("idempotency#orders-api", "sk"));
    store.check_table().await.unwrap();
    let lease = begin(&store, "order-1").await;
    let pk = lease.partition_key.clone();

    let inspect = [&["inspect", "--table", &table][..], &ORDER[..]].concat();
    let out = idem(&inspect, "", &layout);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        format!("partition key  {pk}")
    );
    // Without the layout, idem says what the table is keyed by and what it expected.
    let out = idem(&inspect, "", &[]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("is keyed (pk, sk), but the store's key layout needs (pk)"),
        "{}",
        out.stderr
    );
    // Half a layout is a clear error.
    let out = idem(&inspect, "", &layout[..1]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("IDEMPOTENCY_SORT_KEY"),
        "{}",
        out.stderr
    );

    let purge = [&["purge", "--yes", "--table", &table][..], &ORDER[..]].concat();
    let out = idem(&purge, "", &layout);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(store.read_record(&pk).await.unwrap().is_none());
}
