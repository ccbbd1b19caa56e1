//! A redis-server of a test's own, which the test can kill and restart.
//!
//! The shared server that `scripts/with-redis.sh` starts must outlive every test;
//! this one keeps its data in an append-only file synced on every write, so a restart
//! finds the records again, as a durable deployment would after a crash.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, wait_until_listening};

/// How long redis-server may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisProcess {
    server: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts redis-server (`REDIS_SERVER`, which `scripts/with-redis.sh` exports, or
    /// `redis-server` on the `PATH`) on a free random port, with its data in a fresh
    /// directory.
    pub fn start() -> Self {
        let server = std::env::var("REDIS_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from);
        let dir = std::env::temp_dir().join(format!("idempotency-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut process = Self {
            server,
            dir,
            port: free_port(),
            child: None,
        };
        process.spawn();
        process
    }

    /// The URL, the same across restarts.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        let log = self.dir.join("redis.log");
        let mut child = Command::new(&self.server)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (the Debian package redis-server)");
        wait_until_listening(&mut child, self.port, START_TIMEOUT, "redis-server", &log);
        self.child = Some(child);
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
