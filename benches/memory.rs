//! Memory of the release `orders-api` under sustained traffic: its resident set
//! (`VmRSS`) after 1,000 and after 10,000 invocations, and its high-water mark
//! (`VmHWM`), served one at a time by a local stand-in for the Lambda Runtime API,
//! against DynamoDB Local. Baseline in the same run: a trivial `lambda_runtime`
//! function (this bench's own executable, started with `MEMORY_HELLO=1`) given the
//! same invocations. What it shows: whether anything in the layer or the function
//! keeps growing per request (a leak, an unbounded cache); the absolute size is the
//! process's, allocator included.
//!
//!     cargo build --release -p orders-api
//!     scripts/with-dynamodb-local.sh cargo bench --bench memory
//!
//! Each invocation is `POST /orders` as an HTTP API event (`events/create-order.new.json`)
//! with a new `Idempotency-Key`, except every 10th, which repeats the one before (a
//! replay). Every answer is checked: a new key must get `201`, a repeat `201` with
//! `idempotent-replayed`. `MEMORY_REQUESTS` (default 10000) and `MEMORY_CHECKPOINT`
//! (1000) set the counts; `COLD_START_BINARY` measures another build. Linux only (it
//! reads `/proc/<pid>/status`). Results: a table on stdout and
//! `target/bench-results/memory.json`. Without `--bench` (as `cargo test
//! --all-targets` runs it) it serves 50 invocations to the baseline only and writes
//! nothing.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const HELLO_ENV: &str = "MEMORY_HELLO";
const NEXT: &str = "/2018-06-01/runtime/invocation/next";
/// Every `REPLAY_EVERY`-th request repeats the key before it.
const REPLAY_EVERY: usize = 10;

fn main() {
    if std::env::var_os(HELLO_ENV).is_some() {
        return hello();
    }
    let bench = support::bench_mode();
    let (requests, checkpoint) = if bench {
        (
            support::env_usize("MEMORY_REQUESTS", 10_000),
            support::env_usize("MEMORY_CHECKPOINT", 1_000),
        )
    } else {
        (50, 10)
    };
    assert!(
        checkpoint < requests,
        "MEMORY_CHECKPOINT must be below MEMORY_REQUESTS"
    );
    let hello = Function {
        name: "hello (lambda_runtime baseline)",
        program: std::env::current_exe().expect("this executable"),
        env: vec![(HELLO_ENV.into(), "1".into())],
        checks_answers: false,
    };
    let baseline = run(&hello, requests, checkpoint);
    if !bench {
        println!(
            "memory smoke run: baseline served {requests} invocations, VmRSS {} KiB; pass \
             --bench (cargo bench --bench memory) to measure orders-api",
            baseline.rss_end_kib
        );
        return;
    }
    let _ = support::dynamodb_endpoint("memory");
    let binary = std::env::var_os("COLD_START_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::target_dir().join("release").join("orders-api"));
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --release -p orders-api`",
        binary.display()
    );
    let (idempotency, orders) = support::create_tables("memory");
    let orders_api = Function {
        name: "orders-api",
        program: binary.clone(),
        env: vec![
            ("IDEMPOTENCY_TABLE".into(), idempotency.clone()),
            ("ORDERS_TABLE".into(), orders.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB".into(),
                std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default(),
            ),
            // Logs and EMF lines go to /dev/null, as fast as Lambda's pipe.
            ("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()),
        ],
        checks_answers: true,
    };
    let measured = run(&orders_api, requests, checkpoint);
    support::drop_tables(&[idempotency, orders]);

    println!();
    println!("memory after {checkpoint} and {requests} invocations (one at a time)");
    println!(
        "{:<34} {:>14} {:>14} {:>10} {:>12} {:>12}",
        "function",
        format!("VmRSS@{checkpoint}"),
        format!("VmRSS@{requests}"),
        "growth",
        "VmHWM",
        "req/s"
    );
    for r in [&baseline, &measured] {
        println!(
            "{:<34} {:>10} KiB {:>10} KiB {:>6} KiB {:>8} KiB {:>12.0}",
            r.name,
            r.rss_checkpoint_kib,
            r.rss_end_kib,
            r.rss_end_kib as i64 - r.rss_checkpoint_kib as i64,
            r.hwm_kib,
            r.per_second
        );
    }
    let path = support::write_results(
        "memory",
        &json!({
            "binary": binary.display().to_string(),
            "requests": requests,
            "checkpoint": checkpoint,
            "replay_every": REPLAY_EVERY,
            "baseline": baseline.to_json(),
            "orders_api": measured.to_json(),
            "orders_api_over_baseline_hwm_kib": measured.hwm_kib as i64 - baseline.hwm_kib as i64,
        }),
    );
    println!("results: {}", path.display());
}

/// The baseline: echoes every event.
fn hello() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| async move {
            Ok::<_, lambda_runtime::Error>(event.payload)
        },
    )));
    if let Err(e) = result {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}

struct Function {
    name: &'static str,
    program: PathBuf,
    env: Vec<(String, String)>,
    /// Whether the answers are orders-api's (checked) or echoes (not checked).
    checks_answers: bool,
}

struct Measured {
    name: &'static str,
    rss_checkpoint_kib: u64,
    rss_end_kib: u64,
    hwm_kib: u64,
    per_second: f64,
}

impl Measured {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "vm_rss_checkpoint_kib": self.rss_checkpoint_kib,
            "vm_rss_end_kib": self.rss_end_kib,
            "growth_kib": self.rss_end_kib as i64 - self.rss_checkpoint_kib as i64,
            "vm_hwm_kib": self.hwm_kib,
            "requests_per_second": self.per_second,
        })
    }
}

/// Starts `f`, serves it `requests` invocations, and reads its memory after
/// `checkpoint` of them and at the end.
fn run(f: &Function, requests: usize, checkpoint: usize) -> Measured {
    let api = RuntimeApi::start(requests);
    let log = support::target_dir()
        .join("bench-results")
        .join("memory.stderr.log");
    std::fs::create_dir_all(log.parent().unwrap()).expect("results folder");
    let stderr = std::fs::File::create(&log).expect("stderr log");
    let mut child = support::lambda_command(&f.program, &api.address)
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", f.program.display()));
    let pid = child.id();
    let started = Instant::now();
    let mut rss_checkpoint_kib = 0;
    for n in 1..=requests {
        let answer = match api.answers.recv_timeout(Duration::from_secs(30)) {
            Ok(answer) => answer,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{} gave no answer to invocation {n} within 30 s\nits stderr:\n{}",
                    f.name,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        if let Answer::Error(error) = &answer {
            let _ = child.kill();
            panic!("{} failed invocation {n}: {error}", f.name);
        }
        if f.checks_answers {
            check_answer(n, &answer);
        }
        if n == checkpoint {
            rss_checkpoint_kib = status_kib(pid, "VmRSS");
        }
    }
    let per_second = requests as f64 / started.elapsed().as_secs_f64();
    let rss_end_kib = status_kib(pid, "VmRSS");
    let hwm_kib = status_kib(pid, "VmHWM");
    let _ = child.kill();
    let _ = child.wait();
    Measured {
        name: f.name,
        rss_checkpoint_kib,
        rss_end_kib,
        hwm_kib,
        per_second,
    }
}

/// Invocation `n` (1-based) got the answer it should: `201`, and a replay for a
/// repeated key.
fn check_answer(n: usize, answer: &Answer) {
    let Answer::Response(body) = answer else {
        panic!("invocation {n} failed: {answer:?}");
    };
    let response: Value = serde_json::from_slice(body).expect("an HTTP API response");
    assert_eq!(response["statusCode"], 201, "invocation {n}: {response}");
    let replayed = response["headers"]["idempotent-replayed"] == "true";
    assert_eq!(replayed, is_repeat(n), "invocation {n}: {response}");
}

/// Whether invocation `n` repeats the key of the one before.
fn is_repeat(n: usize) -> bool {
    n.is_multiple_of(REPLAY_EVERY)
}

/// The key of invocation `n`.
fn key_of(n: usize) -> String {
    let n = if is_repeat(n) { n - 1 } else { n };
    format!("memory-bench-{n:08}")
}

/// A line of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status (Linux only): {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[derive(Debug)]
enum Answer {
    Response(Vec<u8>),
    Error(String),
}

/// A stand-in for the Lambda Runtime API on 127.0.0.1 that hands out `requests`
/// invocations of the `POST /orders` event, one per `GET .../next`, and passes each
/// answer on; after the last it holds `/next` open (the function is killed then).
struct RuntimeApi {
    address: String,
    answers: Receiver<Answer>,
}

impl RuntimeApi {
    fn start(requests: usize) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().unwrap().to_string();
        let (tx, answers) = channel();
        let template = Arc::new(event_template());
        let handed_out = Arc::new(AtomicUsize::new(0));
        let tx = Arc::new(Mutex::new(tx));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tx, template, handed_out) = (
                    Arc::clone(&tx),
                    Arc::clone(&template),
                    Arc::clone(&handed_out),
                );
                std::thread::spawn(move || serve(stream, &tx, &template, &handed_out, requests));
            }
        });
        RuntimeApi { address, answers }
    }
}

fn event_template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/create-order.new.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the event is JSON")
}

fn serve(
    stream: TcpStream,
    tx: &Mutex<Sender<Answer>>,
    template: &Value,
    handed_out: &AtomicUsize,
    requests: usize,
) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let Some(request) = support::read_request(&mut reader) else {
            return;
        };
        let (method, path, body) = (request.method.as_str(), request.path.as_str(), request.body);
        let send = |answer| {
            let _ = tx.lock().unwrap().send(answer);
        };
        let reply = if method == "GET" && path == NEXT {
            let n = handed_out.fetch_add(1, Ordering::SeqCst) + 1;
            if n > requests {
                // Hold the connection until the function is killed.
                let _ = reader.read_line(&mut String::new());
                return;
            }
            let mut event = template.clone();
            event["headers"]["idempotency-key"] = json!(key_of(n));
            event["requestContext"]["requestId"] = json!(format!("req-{n}"));
            let payload = event.to_string();
            let deadline = support::epoch_millis() + 30_000;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 lambda-runtime-aws-request-id: req-{n}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench-function\r\n\
                 lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\n\
                 content-length: {}\r\n\r\n{payload}",
                payload.len()
            )
        } else if method == "POST" && path.ends_with("/response") {
            send(Answer::Response(body));
            accepted()
        } else if method == "POST" && path.ends_with("/error") {
            send(Answer::Error(String::from_utf8_lossy(&body).into_owned()));
            accepted()
        } else {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn accepted() -> String {
    let body = r#"{"status":"OK"}"#;
    format!(
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}
