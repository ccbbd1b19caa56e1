//! Shared by the `harness = false` benches (`end_to_end`, `cold_start`): latency
//! statistics, the results folder, and the tests' call-counting SDK interceptor.
//!
//! Not a bench target itself: cargo only discovers `benches/*.rs` and
//! `benches/*/main.rs`.

#![allow(dead_code)]

pub mod floor;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(unused_imports)] // only end_to_end counts calls
pub use lambda_idempotency_test_support::CallCounter;

/// Whether cargo runs this binary as a benchmark (`cargo bench` passes `--bench`).
/// Without it (`cargo test --all-targets`) the benches run a short smoke check and
/// write no results.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A JSON array of order lines, about `bytes` long.
pub fn json_of(bytes: usize) -> Vec<u8> {
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < bytes.saturating_sub(80) {
        out.push_str(&format!(
            r#"{{"orderId":"ord_{:08x}","sku":"SKU-{}","quantity":{},"unitPriceCents":{}}},"#,
            i.wrapping_mul(2_654_435_761),
            i % 7,
            i % 9 + 1,
            i * 37 % 10_000
        ));
        i += 1;
    }
    out.push_str("{}]");
    out.into_bytes()
}

/// `POST /orders` with an idempotency key and a JSON body, as the benches send it.
pub fn request(key: &str, body: &[u8]) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(lambda_http::Body::Binary(body.to_vec()))
        .unwrap()
}

/// A number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        _ => default,
    }
}

/// The DynamoDB Local endpoint; the benches that need it stop with a clear message
/// without it.
pub fn dynamodb_endpoint(bench: &str) -> String {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: the {bench} bench runs against DynamoDB \
             Local. Run `make bench`, or wrap the command in scripts/with-dynamodb-local.sh, \
             e.g. `scripts/with-dynamodb-local.sh cargo bench --bench {bench}`"
        ),
    }
}

/// `<target>/`, found from this executable (`<target>/<profile>/deps/<bench>-<hash>`),
/// so `CARGO_TARGET_DIR` is honoured.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this executable");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")))
}

/// `<target>/bench-results/<name>.json`, written with `json`.
pub fn write_results(name: &str, json: &serde_json::Value) -> PathBuf {
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(json).expect("results as JSON");
    std::fs::write(&path, text + "\n").expect("write the results file");
    path
}

/// Latency figures over many samples.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Stats {
    /// Percentiles by nearest rank. Panics on no samples.
    pub fn of(samples: &[Duration]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let r = (p * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        let total: Duration = sorted.iter().sum();
        Stats {
            n: sorted.len(),
            min: sorted[0],
            p50: rank(0.50),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
            mean: total / sorted.len() as u32,
        }
    }

    /// The figures in microseconds, for the JSON results.
    pub fn to_json_us(self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.n,
            "min_us": us(self.min),
            "p50_us": us(self.p50),
            "p99_us": us(self.p99),
            "max_us": us(self.max),
            "mean_us": us(self.mean),
        })
    }
}

/// A duration in microseconds, with two decimals.
pub fn us(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 10.0).round() / 100.0
}

/// A duration in milliseconds, with two decimals.
pub fn ms(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 10_000.0).round() / 100.0
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
/// CPU time this thread has used (user and system): what a request costs the
/// function's own core, whatever it waits for.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Milliseconds since the Unix epoch, now.
pub fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A command that runs `program` as Lambda would, against the Runtime API at
/// `runtime_api` (`host:port`): the environment cleared, then Lambda's variables, dummy
/// credentials and region.
pub fn lambda_command(program: &std::path::Path, runtime_api: &str) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench-function")
        .env("_HANDLER", "bootstrap")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench-function")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_SESSION_TOKEN", "local");
    command
}

/// An SDK client from the environment (DynamoDB Local's endpoint under the scripts).
pub fn sdk_client(runtime: &tokio::runtime::Runtime) -> aws_sdk_dynamodb::Client {
    runtime.block_on(async {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        aws_sdk_dynamodb::Client::new(&sdk)
    })
}

/// An idempotency table and an orders table (`pk` + `sk` strings, as orders-api's
/// `create_orders_table` makes it), named `{prefix}-idempotency-{uuid}` and
/// `{prefix}-orders-{uuid}`.
pub fn create_tables(prefix: &str) -> (String, String) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = sdk_client(&runtime);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let idempotency = format!("{prefix}-idempotency-{id}");
    let orders = format!("{prefix}-orders-{id}");
    runtime.block_on(async {
        lambda_idempotency::ops::create_table(
            &client,
            &idempotency,
            &lambda_idempotency::store::dynamodb::AttributeNames::default(),
        )
        .await
        .expect("create the idempotency table");
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        client
            .create_table()
            .table_name(&orders)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .expect("create the orders table");
    });
    (idempotency, orders)
}

/// Deletes the tables, ignoring errors (they live in a throw-away DynamoDB Local).
pub fn drop_tables(tables: &[String]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = sdk_client(&runtime);
    runtime.block_on(async {
        for table in tables {
            let _ = client.delete_table().table_name(table).send().await;
        }
    });
}

/// One HTTP/1.1 request read from a connection to a local stand-in server: when its
/// request line arrived, its method, path and body (by `content-length`).
pub struct HttpRequest {
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads the next request from `reader`; `None` when the connection closes or breaks.
pub fn read_request(reader: &mut impl std::io::BufRead) -> Option<HttpRequest> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let at = std::time::Instant::now();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    let mut parts = request_line.split_whitespace();
    Some(HttpRequest {
        at,
        method: parts.next().unwrap_or("").to_owned(),
        path: parts.next().unwrap_or("").to_owned(),
        body,
    })
}
