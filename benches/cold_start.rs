//! Cold start of the release `orders-api` binary: its size (as built and stripped)
//! and its init time, from process spawn to its first
//! `GET /2018-06-01/runtime/invocation/next` on a local stand-in for the Lambda
//! Runtime API. Baseline in the same run: a trivial `lambda_runtime` function (this
//! bench's own executable, started with `COLD_START_HELLO=1`).
//!
//!     cargo build --release -p orders-api
//!     scripts/with-dynamodb-local.sh cargo bench --bench cold_start
//!
//! orders-api checks both its tables at start-up (two `DescribeTable` calls), so the
//! bench creates them in DynamoDB Local first and needs `AWS_ENDPOINT_URL_DYNAMODB`.
//! `COLD_START_RUNS` (default 50) and `COLD_START_WARMUP` (default 5) set the starts;
//! `COLD_START_BINARY` measures another build of orders-api instead.
//! Results: a table on stdout and `target/bench-results/cold_start.json`. Without
//! `--bench` (as `cargo test --all-targets` runs it) it checks the stand-in with a few
//! starts of the baseline only and writes nothing.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Stats, ms};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const HELLO_ENV: &str = "COLD_START_HELLO";
const SIZE_TARGET_BYTES: u64 = 10 * 1000 * 1000;
const INIT_TARGET: Duration = Duration::from_millis(30);

fn main() {
    if std::env::var_os(HELLO_ENV).is_some() {
        return hello();
    }
    let bench = support::bench_mode();
    let endpoint = if bench {
        Some(support::dynamodb_endpoint("cold_start"))
    } else {
        None
    };
    let (runs, warmup) = if bench {
        (
            support::env_usize("COLD_START_RUNS", 50),
            support::env_usize("COLD_START_WARMUP", 5),
        )
    } else {
        (3, 1)
    };
    let api = RuntimeApi::start();
    let hello = Function {
        name: "hello (lambda_runtime baseline)",
        program: std::env::current_exe().expect("this executable"),
        env: vec![(HELLO_ENV.into(), "1".into())],
    };
    if !bench {
        let stats = measure(&api, &hello, runs, warmup);
        println!(
            "cold_start smoke run: baseline reached /next in {:.2} ms (p50 of {runs}); pass \
             --bench, as `cargo bench` does, for the orders-api figures",
            ms(stats.p50)
        );
        return;
    }

    let binary = match std::env::var_os("COLD_START_BINARY") {
        Some(path) => PathBuf::from(path),
        None => support::target_dir().join("release").join("orders-api"),
    };
    if !binary.is_file() {
        panic!(
            "{} is missing: build it first with `cargo build --release -p orders-api` \
             (`make bench` does)",
            binary.display()
        );
    }
    let size = binary_size(&binary);

    let endpoint = endpoint.unwrap();
    let (idempotency_table, orders_table) = support::create_tables("cold-start");
    let orders = Function {
        name: "orders-api",
        program: binary.clone(),
        env: vec![
            ("IDEMPOTENCY_TABLE".into(), idempotency_table.clone()),
            ("ORDERS_TABLE".into(), orders_table.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint),
        ],
    };

    // Interleaved, so that both see the same machine load.
    let mut hello_samples = Vec::with_capacity(runs);
    let mut orders_samples = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let h = start_once(&api, &hello);
        let o = start_once(&api, &orders);
        if i >= warmup {
            hello_samples.push(h);
            orders_samples.push(o);
        }
    }
    let hello_stats = Stats::of(&hello_samples);
    let orders_stats = Stats::of(&orders_samples);

    println!();
    println!("cold start: orders-api binary ({})", binary.display());
    println!();
    println!("{:<44} {:>14} {:>10}", "binary size", "bytes", "MB");
    println!("{}", "-".repeat(70));
    println!(
        "{:<44} {:>14} {:>10.2}",
        "as built",
        size.as_built,
        size.as_built as f64 / 1e6
    );
    match size.stripped {
        Some(stripped) => println!(
            "{:<44} {:>14} {:>10.2}",
            "stripped copy (strip)",
            stripped,
            stripped as f64 / 1e6
        ),
        None => println!("{:<44} {:>14}", "stripped copy", "strip not found"),
    }
    let measured_size = size.stripped.unwrap_or(size.as_built);
    println!(
        "target < 10 MB: {}",
        if measured_size < SIZE_TARGET_BYTES {
            "met"
        } else {
            "MISSED"
        }
    );
    println!();
    println!("init: spawn -> first GET {NEXT}, {runs} starts after {warmup} warm-up starts each");
    println!();
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "function", "p50 ms", "p99 ms", "min ms", "mean ms"
    );
    println!("{}", "-".repeat(84));
    for (name, s) in [(hello.name, hello_stats), (orders.name, orders_stats)] {
        println!(
            "{:<44} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            ms(s.p50),
            ms(s.p99),
            ms(s.min),
            ms(s.mean)
        );
    }
    let added = ms(orders_stats.p50) - ms(hello_stats.p50);
    println!(
        "orders-api over the baseline at p50: +{added:.2} ms ({:.2}x)",
        ms(orders_stats.p50) / ms(hello_stats.p50)
    );
    println!(
        "target init < 30 ms (p50): {}",
        if orders_stats.p50 < INIT_TARGET {
            "met"
        } else {
            "MISSED"
        }
    );

    let path = support::write_results(
        "cold_start",
        &json!({
            "bench": "cold_start",
            "date": support::utc_now(),
            "binary": binary.display().to_string(),
            "size_bytes": size.as_built,
            "stripped_size_bytes": size.stripped,
            "size_target_bytes": SIZE_TARGET_BYTES,
            "size_target_met": measured_size < SIZE_TARGET_BYTES,
            "runs": runs,
            "warmup": warmup,
            "init_ms": {
                "orders-api": ms_json(orders_stats),
                "hello-baseline": ms_json(hello_stats),
            },
            "init_target_ms": 30,
            "init_target_met": orders_stats.p50 < INIT_TARGET,
        }),
    );
    println!("results: {}", path.display());

    support::drop_tables(&[idempotency_table, orders_table]);
}

fn ms_json(s: Stats) -> serde_json::Value {
    json!({
        "samples": s.n,
        "min": ms(s.min),
        "p50": ms(s.p50),
        "p99": ms(s.p99),
        "max": ms(s.max),
        "mean": ms(s.mean),
    })
}

/// The baseline: the smallest `lambda_runtime` function, echoing its payload.
fn hello() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            Ok::<_, lambda_runtime::Error>(event.payload)
        },
    )));
    if let Err(e) = result {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}

struct Size {
    as_built: u64,
    stripped: Option<u64>,
}

/// The binary's size as built, and of a copy stripped with `strip` (if installed).
fn binary_size(binary: &Path) -> Size {
    let as_built = std::fs::metadata(binary).expect("binary metadata").len();
    let copy = support::target_dir()
        .join("bench-results")
        .join("orders-api.stripped");
    std::fs::create_dir_all(copy.parent().unwrap()).expect("results folder");
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| std::fs::metadata(&copy).expect("stripped copy").len());
    let _ = std::fs::remove_file(&copy);
    Size { as_built, stripped }
}

struct Function {
    name: &'static str,
    program: PathBuf,
    env: Vec<(String, String)>,
}

fn measure(api: &RuntimeApi, f: &Function, runs: usize, warmup: usize) -> Stats {
    let samples: Vec<Duration> = (0..warmup + runs)
        .map(|_| start_once(api, f))
        .skip(warmup)
        .collect();
    Stats::of(&samples)
}

/// Spawns the function in a Lambda-like environment, waits for its first `/next`,
/// kills it, and returns the time from spawn to that request.
fn start_once(api: &RuntimeApi, f: &Function) -> Duration {
    while api.events.try_recv().is_ok() {}
    let log = support::target_dir()
        .join("bench-results")
        .join("cold_start.stderr.log");
    std::fs::create_dir_all(log.parent().unwrap()).expect("results folder");
    let stderr = std::fs::File::create(&log).expect("stderr log");
    let mut command = support::lambda_command(&f.program, &api.address);
    command
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", f.program.display()));
    // Poll, so that a function that exits during init is reported at once.
    let mut event = None;
    let mut exited = None;
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(e) = api.events.recv_timeout(Duration::from_millis(20)) {
            event = Some(e);
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            // It may have asked for /next just before exiting.
            event = api.events.try_recv().ok();
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    match event {
        Some(Event::Next(at)) => at.duration_since(started),
        Some(Event::InitError(body)) => panic!(
            "{} reported an init error: {body}\nits stderr:\n{}",
            f.name,
            stderr()
        ),
        None => match exited {
            Some(status) => panic!(
                "{} exited ({status}) before asking for an invocation\nits stderr:\n{}",
                f.name,
                stderr()
            ),
            None => panic!(
                "{} did not ask for an invocation within 20 s\nits stderr:\n{}",
                f.name,
                stderr()
            ),
        },
    }
}

enum Event {
    Next(Instant),
    InitError(String),
}

/// A minimal stand-in for the Lambda Runtime API on 127.0.0.1: it records when a
/// `GET .../invocation/next` arrives and never answers it (the function is killed
/// then); `POST .../init/error` is reported with its body; anything else gets `404`.
struct RuntimeApi {
    address: String,
    events: Receiver<Event>,
}

impl RuntimeApi {
    fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().unwrap().to_string();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || serve(stream, tx));
            }
        });
        RuntimeApi { address, events }
    }
}

fn serve(stream: TcpStream, tx: Sender<Event>) {
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
        let (at, method, path, body) = (
            request.at,
            request.method.as_str(),
            request.path.as_str(),
            request.body,
        );
        if method == "GET" && path == NEXT {
            let _ = tx.send(Event::Next(at));
            // Hold the connection until the function is killed.
            let _ = reader.read_line(&mut String::new());
            return;
        }
        if method == "POST" && path.ends_with("/init/error") {
            let _ = tx.send(Event::InitError(
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        let _ = writer.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    }
}
