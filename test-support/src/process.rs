//! A DynamoDB Local of a test's own, which the test can kill and restart.
//!
//! The shared instance that `scripts/with-dynamodb-local.sh` starts is in memory and
//! must outlive every test; this one keeps its data on disk (`-dbPath`), so a restart
//! finds the table and its records again, as the real service would after an outage.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long DynamoDB Local may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(90);

pub struct DynamoDbProcess {
    jar: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl DynamoDbProcess {
    /// Starts DynamoDB Local on a free random port, with its data in a fresh
    /// directory. Needs `DYNAMODB_LOCAL_JAR`, which `scripts/with-dynamodb-local.sh`
    /// exports.
    pub fn start() -> Self {
        let jar = match std::env::var("DYNAMODB_LOCAL_JAR") {
            Ok(jar) if !jar.is_empty() => PathBuf::from(jar),
            _ => panic!(
                "DYNAMODB_LOCAL_JAR is not set: this test starts and kills a DynamoDB Local \
                 of its own. Run it with `make test`, or wrap the command in \
                 scripts/with-dynamodb-local.sh"
            ),
        };
        let dir = std::env::temp_dir().join(format!("idempotency-ddb-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut process = Self {
            jar,
            dir,
            port: free_port(),
            child: None,
        };
        process.spawn();
        process
    }

    /// The endpoint URL, the same across restarts.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process at once (SIGKILL): connections drop mid-request.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let jar_dir = self
            .jar
            .parent()
            .expect("the jar has a directory")
            .to_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dynamodb-local.log"))
            .unwrap();
        let mut child = Command::new("java")
            .current_dir(&jar_dir)
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(&self.jar)
            .args(["-sharedDb", "-disableTelemetry", "-dbPath"])
            .arg(&self.dir)
            .args(["-port", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("java starts (DynamoDB Local needs a Java 17+ runtime)");
        wait_until_listening(
            &mut child,
            self.port,
            START_TIMEOUT,
            "DynamoDB Local",
            &self.dir.join("dynamodb-local.log"),
        );
        self.child = Some(child);
    }
}

impl Drop for DynamoDbProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `child` (named `what`, logging to `log`) accepts connections on
/// `port` of 127.0.0.1; panics with its log if it exits first, or after `timeout`.
pub(crate) fn wait_until_listening(
    child: &mut Child,
    port: u16,
    timeout: Duration,
    what: &str,
    log: &std::path::Path,
) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before answering on port {port}; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{what} did not answer on port {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on, below the kernel's ephemeral range when there is room,
/// so that no outgoing connection takes it while the process is down.
pub(crate) fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (
        20_000u32,
        ephemeral_low.saturating_sub(1).clamp(21_000, 60_999),
    );
    for _ in 0..200 {
        let random = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap());
        let port = u16::try_from(low + random % (high - low + 1)).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("found no free port in {low}-{high}");
}
