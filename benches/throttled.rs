//! The layer's cost per request at Lambda's smallest size: a 128 MB function gets
//! about 1/13 of a vCPU, enforced as a CPU quota. The in-process layer (`MemoryStore`,
//! 1 KB JSON body; new key, replay, and the handler unwrapped as the baseline) runs in
//! a child process pinned to one core (`taskset -c 0`), once unthrottled and once in a
//! cgroup (v1 `cpu` controller) whose quota is 1/13 of that core (7,692 us per
//! 100,000 us period), and reports per request the CPU time it used (its thread's
//! clock) and the wall time it took, and the whole run's time. The kernel applies the
//! quota at a syscall, and each timed request starts and ends with one (the CPU
//! clock), so the pauses fall between requests: the per-request figures show the
//! request's own cost, and the run's time how much wall time each µs of CPU costs at
//! that share.
//!
//!     cargo bench --bench throttled
//!
//! Without a writable cgroup (not root, cgroup v2 only, a container) it says so and
//! runs a sleep-interleaved stand-in instead: after each request the child sleeps 12
//! times the CPU the request used, so on average it gets 1/13 of the core (this
//! spreads the pause over every request instead of the quota's long pauses, so only
//! its mean wall time compares). Each request's allocations are counted too (a
//! counting global allocator in this bench's binary; the median is reported).
//! `THROTTLED_REQUESTS` (default 20000 per scenario).
//! Results: a table and `target/bench-results/throttled.json`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it measures 200 unthrottled requests in
//! process and writes nothing.

mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use lambda_http::{Body, Request, Response, service_fn};
use lambda_idempotency::http::IdempotencyLayer;
use lambda_idempotency::store::MemoryStore;
use serde_json::{Value, json};
use support::{Stats, json_of, request, thread_cpu, us};
use tower::{Layer, Service, ServiceExt};

/// Counts the allocations of this process (only this bench's binary), so that each
/// request's count can be reported.
struct Counting;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `alloc` above, with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as for `realloc`'s caller.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

const CHILD_ENV: &str = "THROTTLED_CHILD";
const SLEEP_ENV: &str = "THROTTLED_SLEEP_FACTOR";
/// Lambda's CPU share at 128 MB: about 1/13 of a vCPU (a full vCPU at 1,769 MB).
const SHARE: u64 = 13;
const PERIOD_US: u64 = 100_000;
const SCENARIOS: [&str; 3] = ["unwrapped", "layer new key", "layer replay"];

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let bench = support::bench_mode();
    if !bench {
        let runs = measure(200, 0);
        println!(
            "throttled smoke run: 200 requests per scenario in process, layer new key CPU p50 {:.1} µs; \
             pass --bench (cargo bench --bench throttled) for the throttled figures",
            us(runs[1].1.p50)
        );
        return;
    }
    let requests = support::env_usize("THROTTLED_REQUESTS", 20_000);
    let (unthrottled, unthrottled_s) = run_child(requests, None, 0);
    let ((throttled, throttled_s), how) = match Cgroup::create() {
        Ok(cgroup) => {
            let results = run_child(requests, Some(&cgroup), 0);
            let how = format!(
                "cgroup v1 cpu quota {} / {PERIOD_US} us (1/{SHARE} of one core), taskset -c 0; {}",
                PERIOD_US / SHARE,
                cgroup.stat()
            );
            (results, how)
        }
        Err(e) => {
            println!("no writable cgroup ({e}): a sleep-interleaved stand-in instead");
            (
                run_child(requests, None, SHARE - 1),
                format!(
                    "sleep-interleaved stand-in: {} x the CPU used, after each request",
                    SHARE - 1
                ),
            )
        }
    };
    println!(
        "whole run: {unthrottled_s:.2} s unthrottled, {throttled_s:.2} s throttled ({:.1}x)",
        throttled_s / unthrottled_s
    );

    println!();
    println!(
        "per request, {requests} requests per scenario, 1 KB JSON body, MemoryStore; throttled: {how}"
    );
    println!(
        "{:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "scenario",
        "CPU p50",
        "CPU p50 thr",
        "wall p50",
        "wall p50 thr",
        "wall mean",
        "wall mean thr",
        "wall p99 thr",
        "allocs"
    );
    let mut rows = serde_json::Map::new();
    for (i, name) in SCENARIOS.iter().enumerate() {
        let (u, t) = (&unthrottled[i], &throttled[i]);
        println!(
            "{:<16} {:>9.2} µs {:>9.2} µs {:>9.2} µs {:>9.2} µs {:>9.2} µs {:>9.2} µs {:>9.1} µs {:>8}",
            name,
            u.cpu_p50_us,
            t.cpu_p50_us,
            u.wall_p50_us,
            t.wall_p50_us,
            u.wall_mean_us,
            t.wall_mean_us,
            t.wall_p99_us,
            u.allocations_p50
        );
        rows.insert(
            (*name).to_owned(),
            json!({"unthrottled": u.to_json(), "throttled": t.to_json()}),
        );
    }
    let added = |r: &[Row], i: usize, pick: fn(&Row) -> f64| pick(&r[i]) - pick(&r[0]);
    println!();
    for (i, name) in [(1, "new key"), (2, "replay")] {
        println!(
            "layer added, {name}: CPU p50 +{:.2} µs unthrottled, +{:.2} µs throttled; wall mean +{:.1} µs unthrottled, +{:.1} µs throttled",
            added(&unthrottled, i, |r| r.cpu_p50_us),
            added(&throttled, i, |r| r.cpu_p50_us),
            added(&unthrottled, i, |r| r.wall_mean_us),
            added(&throttled, i, |r| r.wall_mean_us),
        );
    }
    // The quota pauses the process at a syscall, and each request's edges are syscalls
    // (the thread CPU clock), so the pauses fall between the timed requests: the run's
    // whole time shows them. Each µs of CPU cost `stretch` µs of wall time.
    let stretch = throttled_s / unthrottled_s;
    println!(
        "at this share each µs of CPU took {stretch:.1} µs of wall time over the run: the layer's \
         added CPU then costs about {:.0} µs (new key) and {:.0} µs (replay) of wall time per request",
        stretch * added(&throttled, 1, |r| r.cpu_p50_us),
        stretch * added(&throttled, 2, |r| r.cpu_p50_us),
    );
    let path = support::write_results(
        "throttled",
        &json!({
            "requests": requests, "throttling": how, "share": format!("1/{SHARE}"),
            "run_s": {"unthrottled": unthrottled_s, "throttled": throttled_s},
            "wall_per_cpu_throttled": stretch,
            "scenarios": rows,
        }),
    );
    println!("results: {}", path.display());
}

/// One scenario's figures, in microseconds.
struct Row {
    allocations_p50: u64,
    cpu_p50_us: f64,
    wall_p50_us: f64,
    wall_mean_us: f64,
    wall_p99_us: f64,
}

impl Row {
    fn of(cpu: &Stats, wall: &Stats, allocations_p50: u64) -> Row {
        Row {
            allocations_p50,
            cpu_p50_us: us(cpu.p50),
            wall_p50_us: us(wall.p50),
            wall_mean_us: us(wall.mean),
            wall_p99_us: us(wall.p99),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "allocations_p50": self.allocations_p50,
            "cpu_p50_us": self.cpu_p50_us, "wall_p50_us": self.wall_p50_us,
            "wall_mean_us": self.wall_mean_us, "wall_p99_us": self.wall_p99_us,
        })
    }

    fn from_json(v: &Value) -> Row {
        let f = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("child result without {k}: {v}"))
        };
        Row {
            allocations_p50: f("allocations_p50") as u64,
            cpu_p50_us: f("cpu_p50_us"),
            wall_p50_us: f("wall_p50_us"),
            wall_mean_us: f("wall_mean_us"),
            wall_p99_us: f("wall_p99_us"),
        }
    }
}

/// Runs the measurement in a child pinned to core 0, in `cgroup` if given, and reads
/// its figures back.
fn run_child(requests: usize, cgroup: Option<&Cgroup>, sleep_factor: u64) -> (Vec<Row>, f64) {
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(std::env::current_exe().expect("this executable"))
        .env(CHILD_ENV, requests.to_string())
        .env(SLEEP_ENV, sleep_factor.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("taskset (util-linux) runs the child");
    if let Some(cgroup) = cgroup {
        cgroup.add(child.id());
    }
    // Go: the child starts measuring once it is in its cgroup.
    writeln!(child.stdin.take().unwrap()).expect("start the child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the child's results");
    let status = child.wait().expect("the child ends");
    assert!(status.success(), "the measuring child failed: {status}");
    let results: Value = serde_json::from_str(&line).expect("the child's JSON line");
    let rows = SCENARIOS
        .iter()
        .map(|s| Row::from_json(&results[s]))
        .collect();
    (rows, results["run_s"].as_f64().unwrap_or(0.0))
}

/// The child: waits for its go, measures, prints one JSON line.
fn child() {
    let requests: usize = std::env::var(CHILD_ENV).unwrap().parse().unwrap();
    let sleep_factor: u32 = std::env::var(SLEEP_ENV)
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("go");
    let started = Instant::now();
    let rows = measure(requests, sleep_factor);
    let mut results: serde_json::Map<String, Value> = SCENARIOS
        .iter()
        .zip(&rows)
        .map(|(name, (wall, cpu, allocs))| {
            ((*name).to_owned(), Row::of(cpu, wall, *allocs).to_json())
        })
        .collect();
    results.insert("run_s".into(), json!(started.elapsed().as_secs_f64()));
    println!("{}", Value::Object(results));
}

async fn handler(_req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"orderId":"ord_1","status":"CREATED"}"#))?)
}

/// `requests` rounds of the three scenarios, interleaved; per scenario the (wall,
/// CPU) statistics. With a `sleep_factor`, each request is followed by a sleep of
/// that many times its CPU time (the stand-in for a quota).
fn measure(requests: usize, sleep_factor: u32) -> Vec<(Stats, Stats, u64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = json_of(1024);
    let layer = || {
        IdempotencyLayer::builder(MemoryStore::new())
            .build()
            .unwrap()
            .layer(service_fn(handler))
    };
    let mut replaying = layer();
    let mut unwrapped = service_fn(handler);
    runtime.block_on(async {
        let first = replaying
            .ready()
            .await
            .unwrap()
            .call(request("same", &body))
            .await;
        assert_eq!(first.unwrap().status(), 201);
    });
    let mut wall = vec![Vec::with_capacity(requests); SCENARIOS.len()];
    let mut cpu = vec![Vec::with_capacity(requests); SCENARIOS.len()];
    let mut allocs: Vec<Vec<u64>> = vec![Vec::with_capacity(requests); SCENARIOS.len()];
    for _ in 0..requests {
        for i in 0..SCENARIOS.len() {
            // A fresh store for a new key (as in benches/overhead.rs), built untimed.
            let mut fresh = layer();
            let req = request(if i == 2 { "same" } else { "key" }, &body);
            let allocs_before = allocations();
            let (cpu_started, started) = (thread_cpu(), Instant::now());
            let response = runtime.block_on(async {
                match i {
                    0 => unwrapped.ready().await.unwrap().call(req).await,
                    1 => fresh.ready().await.unwrap().call(req).await,
                    _ => replaying.ready().await.unwrap().call(req).await,
                }
            });
            let (elapsed, used) = (started.elapsed(), thread_cpu().saturating_sub(cpu_started));
            // Counted while the response is alive: its allocations count, its drop not.
            allocs[i].push(allocations() - allocs_before);
            assert_eq!(response.unwrap().status(), 201, "{}", SCENARIOS[i]);
            wall[i].push(elapsed);
            cpu[i].push(used);
            if sleep_factor > 0 {
                std::thread::sleep(used * sleep_factor);
            }
            drop(fresh);
        }
    }
    wall.iter()
        .zip(&cpu)
        .zip(&mut allocs)
        .map(|((w, c), a)| {
            a.sort_unstable();
            (Stats::of(w), Stats::of(c), a[a.len() / 2])
        })
        .collect()
}

/// A cgroup (v1, `cpu` controller) with a quota of 1/[`SHARE`] of a core, removed on
/// drop.
struct Cgroup {
    path: std::path::PathBuf,
}

impl Cgroup {
    fn create() -> std::io::Result<Cgroup> {
        let path = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/lambda-idempotency-bench-{}",
            std::process::id()
        ));
        std::fs::create_dir(&path)?;
        let cgroup = Cgroup { path };
        std::fs::write(cgroup.path.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
        std::fs::write(
            cgroup.path.join("cpu.cfs_quota_us"),
            (PERIOD_US / SHARE).to_string(),
        )?;
        Ok(cgroup)
    }

    /// How often the quota paused the group, from its `cpu.stat`.
    fn stat(&self) -> String {
        let stat = std::fs::read_to_string(self.path.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        format!(
            "throttled {} of {} periods, {:.2} s in all",
            field("nr_throttled"),
            field("nr_periods"),
            field("throttled_time") as f64 / 1e9
        )
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .expect("move the child into the cgroup");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty by now: its only process has exited.
        let _ = std::fs::remove_dir(&self.path);
    }
}
