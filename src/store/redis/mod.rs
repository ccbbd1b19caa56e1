//! The Redis (or Valkey) store: the same protocol as the DynamoDB store, each step
//! one Lua script on one key (feature `redis`).
//!
//! A record is one hash, under a key of its own. Begin is one script that applies the
//! begin rule of [`Record::may_begin_over`] (new, expired, `ERRORED` under the same
//! request, `PENDING` with a lapsed lease under the same request) and returns the
//! blocking record when it does not begin, so a replay, a conflict or an in-flight
//! answer costs one round trip, as on DynamoDB. Complete and fail are scripts fenced
//! on the lease token. The key expires with the record (`PEXPIREAT` a minute after its
//! expiry, so a server clock ahead of the function's cannot cut a live lease short),
//! and every read checks the expiry, so an expired record is absent on time.
//!
//! The client is [`redis`](https://docs.rs/redis) (redis-rs) on tokio: the most used
//! Rust client, with a reconnecting multiplexed connection (`ConnectionManager`),
//! cluster support, TLS (`rediss://`) and AUTH (`redis://user:password@host`) in its
//! URL, and `Script`, which sends each script by its SHA-1 (`EVALSHA`) and loads it
//! on the server's first "no such script". In cluster mode every key carries a hash
//! tag derived from the record's key, so records spread over the slots and each
//! script touches one slot.
//!
//! # What Redis does not give
//!
//! - **No atomic completion.** Redis is not where a handler's data lives, so there is
//!   no transaction to join: [`Store::transactional`] is `None`, and the layers behave
//!   exactly as with any non-transactional store (the handler writes directly; a
//!   failure between its effect and the completion leaves the record `PENDING` until
//!   its lease lapses).
//! - **Failover.** Redis replicates asynchronously: a begin acknowledged by a primary
//!   that fails before its replica received it is lost, and a retry on the promoted
//!   replica begins again and runs the handler a second time. For exactly-once across
//!   a failover, use a store whose writes are durable when acknowledged: DynamoDB,
//!   or Amazon MemoryDB (a multi-AZ transaction log; its primary acknowledges a write
//!   only once it is durable). `WAIT 1 <ms>` after each begin narrows the window on
//!   Redis or ElastiCache but does not close it: Redis documents that a write
//!   acknowledged by `WAIT` can still be lost in a failover.
//! - **Size.** A Redis value may be up to 512 MB, but the store keeps the DynamoDB
//!   store's size rule, so both behave alike and memory stays bounded: responses over
//!   350 KB are compressed with zstd, and one still over 390 KB compressed is not kept
//!   (the record completes without it; see the README's "Large responses").
//!
//! ```no_run
//! use lambda_idempotency::store::redis::RedisStore;
//!
//! # async fn example() -> Result<(), lambda_idempotency::Error> {
//! // From IDEMPOTENCY_REDIS_URL, e.g. rediss://default:secret@my-cache.serverless.euw1.cache.amazonaws.com:6379
//! let store = RedisStore::from_env().await?;
//! // Or a URL of your own:
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! # Ok(()) }
//! ```

mod codec;
#[cfg(feature = "testing")]
pub(crate) mod raw;
mod scripts;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, Script, Value};
use sha2::{Digest, Sha256};

use super::{BeginOutcome, BeginRequest, Lease, Store, WriteOutcome};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::record::{Record, Status};
use crate::store::fit::{Fitted, fit};
use codec::field;

/// Environment variable with the Redis URL (`redis://` or `rediss://` for TLS, with
/// `user:password@` for AUTH).
pub const ENV_REDIS_URL: &str = "IDEMPOTENCY_REDIS_URL";

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "idempotency:";

/// How many times begin re-tries when the script reports a blocking record that the
/// rules would not let block (it cannot happen with one clock; kept as the DynamoDB
/// store keeps it).
const BEGIN_ATTEMPTS: usize = 3;

/// How many times a begin is sent when the connection fails (the first try
/// included), and the pause before the second (doubling): about 350 ms in all.
const SEND_ATTEMPTS: u32 = 4;
const SEND_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Idempotency records in Redis or Valkey; see the [module docs](self).
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    clock: SharedClock,
    begin: Arc<Script>,
    fenced_update: Arc<Script>,
    /// `check` accepts a server that may evict keys (see [`RedisStore::allow_eviction`]).
    eviction_allowed: bool,
}

/// A standalone (or ElastiCache Serverless, or proxy) connection, or a cluster's.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "mode",
                &match self.connection {
                    Connection::Single(_) => "single",
                    Connection::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://host:port`, `rediss://` for TLS,
    /// `redis://user:password@host:port/db` for AUTH and a database); the connection
    /// reconnects by itself after a drop.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| invalid_url(url, e))?;
        let manager = ConnectionManager::new_with_config(client, connection_config())
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(Connection::Single(manager)))
    }

    /// Connects to a Redis Cluster (or ElastiCache / MemoryDB in cluster mode) through
    /// one or more of its nodes' URLs.
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self> {
        let client = redis::cluster::ClusterClient::builder(urls.to_vec())
            .retries(2)
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()
            .map_err(|e| invalid_url(&urls.join(","), e))?;
        let connection = client.get_async_connection().await.map_err(unavailable)?;
        Ok(Self::with_connection(Connection::Cluster(connection)))
    }

    /// Connects to the URL in `IDEMPOTENCY_REDIS_URL`.
    pub async fn from_env() -> Result<Self> {
        let url = std::env::var(ENV_REDIS_URL)
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or(ConfigError::MissingEnv {
                name: ENV_REDIS_URL,
            })?;
        Self::connect(&url).await
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: Arc::from(DEFAULT_PREFIX),
            clock: Arc::new(SystemClock),
            begin: Arc::new(Script::new(scripts::BEGIN)),
            fenced_update: Arc::new(Script::new(scripts::FENCED_UPDATE)),
            eviction_allowed: false,
        }
    }

    /// Puts every key under `prefix` (default [`DEFAULT_PREFIX`]), to share a server
    /// with other data or give each test its own key space.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Reads time from `clock` instead of the system clock (the scripts compare
    /// against the time the store sends, as the DynamoDB store does). Redis deletes
    /// keys by its own clock (a minute after the record's expiry): a clock far from
    /// the server's (a test's manual clock set back) would have keys deleted early.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The Redis key of the record `partition_key`: a hash tag of its own first (the
    /// first 16 hex digits of its SHA-256), so cluster slots spread whatever the
    /// prefix or the key contain, then the prefix and the key itself.
    pub fn redis_key(&self, partition_key: &str) -> String {
        redis_key(&self.prefix, partition_key)
    }

    /// Lets [`check`](Self::check) accept a server whose memory policy may evict
    /// keys. Every record has a TTL, so under any `volatile-*` or `allkeys-*` policy
    /// Redis may drop a live record when memory runs short, and a retry then runs the
    /// handler again: allow it only where that is acceptable.
    #[must_use]
    pub fn allow_eviction(mut self) -> Self {
        self.eviction_allowed = true;
        self
    }

    /// Checks at start-up that the server answers and keeps records as the protocol
    /// needs: its `maxmemory-policy` is `noeviction` (unless
    /// [`allow_eviction`](Self::allow_eviction); a server that does not report it,
    /// such as ElastiCache Serverless, is accepted with a warning), and a standalone
    /// connection is not talking to a cluster (use
    /// [`connect_cluster`](Self::connect_cluster)). A refusal is
    /// [`Error::StoreRejected`] saying what to change.
    pub async fn check(&self) -> Result<()> {
        let pong: String = self.query(redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(rejected(format!("PING answered {pong:?}")));
        }
        // One section per INFO: servers before Redis 7 take only one.
        let mut memory = redis::cmd("INFO");
        memory.arg("memory");
        let mut cluster = redis::cmd("INFO");
        cluster.arg("cluster");
        let info = format!(
            "{}\n{}",
            self.query::<String>(memory).await?,
            self.query::<String>(cluster).await?
        );
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        match field("maxmemory_policy") {
            Some("noeviction") => {}
            Some(policy) if !self.eviction_allowed => {
                return Err(rejected(format!(
                    "the server's maxmemory-policy is {policy}: it may evict a live idempotency record under memory pressure, and a retry would then run its handler again. Set maxmemory-policy noeviction (an ElastiCache parameter group), or RedisStore::allow_eviction() if that is acceptable"
                )));
            }
            Some(_) => {}
            None => tracing::warn!(
                "the Redis server does not report its maxmemory-policy; make sure it never evicts keys"
            ),
        }
        if matches!(self.connection, Connection::Single(_)) && field("cluster_enabled") == Some("1")
        {
            return Err(rejected(
                "the server is a cluster node: connect with RedisStore::connect_cluster".to_owned(),
            ));
        }
        Ok(())
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        match &self.connection {
            Connection::Single(c) => query_on(c.clone(), cmd).await,
            Connection::Cluster(c) => query_on(c.clone(), cmd).await,
        }
    }

    async fn run(&self, script: &Script, key: &str, args: Vec<Vec<u8>>) -> Result<Value> {
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let result = match &self.connection {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        };
        result.map_err(map_error)
    }

    /// Sends the begin script for `record`, again after a transient error (as the AWS
    /// SDK resends a `PutItem`): an attempt that was applied but whose answer was
    /// lost (a connection dropped, a server killed after its append-only file had the
    /// write) is recognised by the next one, which meets its own token. Without this,
    /// the key would stay `PENDING` under a request that never ran, until its lease
    /// lapses.
    async fn begin_resent(
        &self,
        request: &BeginRequest,
        record: &Record,
    ) -> Result<Option<BeginOutcome>> {
        let mut delay = SEND_BACKOFF;
        for attempt in 1..=SEND_ATTEMPTS {
            match self.begin_once(request, record).await {
                Err(e) if e.is_transient() && attempt < SEND_ATTEMPTS => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                outcome => return outcome,
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn begin_once(
        &self,
        request: &BeginRequest,
        record: &Record,
    ) -> Result<Option<BeginOutcome>> {
        let now_ms = self.clock.now_millis();
        let now_secs = self.clock.now_secs();
        let mut args = vec![
            now_ms.to_string().into_bytes(),
            now_secs.to_string().into_bytes(),
            request.fingerprint.as_str().as_bytes().to_vec(),
            key_expires_at_ms(record).to_string().into_bytes(),
        ];
        args.extend(codec::encode(record));
        let key = self.redis_key(&record.partition_key);
        let (began, old) = flag_and_record(self.run(&self.begin, &key, args).await?)?;
        if began {
            return Ok(Some(BeginOutcome::Started {
                lease: record.lease(),
                replaced: decode_replaced(&old),
            }));
        }
        let existing = codec::decode(&old)?;
        Ok(BeginOutcome::blocked_by(existing, record, now_ms, now_secs))
    }

    async fn fenced_update(
        &self,
        lease: &Lease,
        status: Status,
        response: Option<&[u8]>,
    ) -> Result<WriteOutcome> {
        let now_ms = self.clock.now_millis();
        let mut set: Vec<Vec<u8>> = vec![
            field::STATUS.into(),
            status.as_str().into(),
            field::UPDATED.into(),
            now_ms.to_string().into_bytes(),
        ];
        let mut remove: Vec<Vec<u8>> = Vec::new();
        let mut omitted = None;
        if let Some(bytes) = response {
            match fit(bytes) {
                Fitted::Plain => {
                    set.extend([field::RESPONSE.into(), bytes.to_vec()]);
                    remove.push(field::ENCODING.into());
                }
                Fitted::Zstd(compressed) => {
                    set.extend([field::RESPONSE.into(), compressed]);
                    set.extend([field::ENCODING.into(), codec::ZSTD.into()]);
                }
                Fitted::Omitted => {
                    set.extend([field::OMITTED.into(), bytes.len().to_string().into_bytes()]);
                    remove.extend([field::RESPONSE.into(), field::ENCODING.into()]);
                    omitted = Some(bytes.len());
                }
            }
        }
        let mut args = vec![
            lease.token.as_str().as_bytes().to_vec(),
            set.len().to_string().into_bytes(),
        ];
        args.extend(set);
        args.extend(remove);
        let key = self.redis_key(&lease.partition_key);
        let (written, current) = flag_and_record(self.run(&self.fenced_update, &key, args).await?)?;
        if written {
            return Ok(WriteOutcome::written(omitted));
        }
        Ok(WriteOutcome::after_failed_fence(
            decode_replaced(&current),
            lease,
            status,
            response,
            omitted,
        ))
    }
}

/// How long connecting may take before a call fails as unavailable.
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// How long an answer may take (a script on a large response included).
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A dropped connection is re-established once, quickly: a server that is down must
/// be a fast 503 (a Lambda behind API Gateway has 29 s in all), not redis-rs's default
/// of six reconnects with backoff, which kept a request waiting about 28 s here. The
/// begin is resent on top of this (see `begin_resent`), and completions by the
/// engine's own retries.
fn connection_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(std::time::Duration::from_millis(50))
        .set_max_delay(std::time::Duration::from_millis(200))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// How long after a record's expiry Redis deletes its key. The read-side check makes
/// the record absent on time; the key outlives it by a minute so that a server clock
/// running ahead of the function's (`PEXPIREAT` is the server's time) never deletes a
/// record whose lease the function still counts as live.
pub(crate) const KEY_GRACE_MS: i64 = 60_000;

/// When Redis deletes the record's key (epoch ms).
fn key_expires_at_ms(record: &Record) -> i64 {
    record
        .expires_at
        .saturating_mul(1000)
        .saturating_add(KEY_GRACE_MS)
}

/// See [`RedisStore::redis_key`].
fn redis_key(prefix: &str, partition_key: &str) -> String {
    let digest = Sha256::digest(partition_key.as_bytes());
    let mut key = String::with_capacity(18 + prefix.len() + partition_key.len());
    key.push('{');
    for byte in &digest[..8] {
        key.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        key.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    key.push('}');
    key.push_str(prefix);
    key.push_str(partition_key);
    key
}

async fn query_on<C: ConnectionLike, T: redis::FromRedisValue>(
    mut connection: C,
    cmd: redis::Cmd,
) -> Result<T> {
    cmd.query_async(&mut connection).await.map_err(map_error)
}

/// A script's answer: its leading `1` / `0`, and the record fields after it.
fn flag_and_record(reply: Value) -> Result<(bool, Vec<Vec<u8>>)> {
    let unexpected = |what: String| Error::StoreRejected {
        message: format!("unexpected answer from the idempotency script: {what}"),
        source: None,
    };
    let Value::Array(items) = reply else {
        return Err(unexpected(format!("{reply:?}")));
    };
    let mut items = items.into_iter();
    let flag = match items.next() {
        Some(Value::Int(1)) => true,
        Some(Value::Int(0)) => false,
        other => return Err(unexpected(format!("flag {other:?}"))),
    };
    let mut fields = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::BulkString(bytes) => fields.push(bytes),
            Value::SimpleString(text) => fields.push(text.into_bytes()),
            other => return Err(unexpected(format!("field {other:?}"))),
        }
    }
    Ok((flag, fields))
}

/// The record a script returned beside its answer, when there is one that decodes
/// (a corrupt one is logged: it was overwritten, or is reported by `get`).
fn decode_replaced(fields: &[Vec<u8>]) -> Option<Box<Record>> {
    if fields.is_empty() {
        return None;
    }
    match codec::decode(fields) {
        Ok(record) => Some(Box::new(record)),
        Err(e) => {
            tracing::warn!(error = %e, "could not decode the previous idempotency record");
            None
        }
    }
}

fn invalid_url(url: &str, e: RedisError) -> Error {
    // The URL may hold a password: never repeat it.
    let shown = url.rsplit_once('@').map_or(url.to_owned(), |(_, host)| {
        let scheme = url.split("://").next().unwrap_or("redis");
        format!("{scheme}://***@{host}")
    });
    Error::Config(ConfigError::InvalidEnv {
        name: ENV_REDIS_URL,
        value: shown,
        reason: e.to_string(),
    })
}

fn rejected(message: String) -> Error {
    Error::StoreRejected {
        message,
        source: None,
    }
}

fn unavailable(e: RedisError) -> Error {
    Error::StoreUnavailable {
        message: format!("Redis: {e}"),
        source: Some(Box::new(e)),
    }
}

/// Connection trouble, and what the server says will pass (loading its data after a
/// restart, out of memory, busy with a script, a cluster resharding or failing over),
/// is transient: the layer answers 503 and a retry may work. Anything else will not go
/// away by retrying: a script error, a wrong type, AUTH or a missing permission, and a
/// cluster redirection on a standalone connection (a cluster's configuration endpoint
/// given to [`RedisStore::connect`] instead of [`RedisStore::connect_cluster`]).
fn map_error(e: RedisError) -> Error {
    use redis::{ErrorKind, ServerErrorKind};
    let transient = match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => false,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        _ => {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || matches!(e.code(), Some("OOM" | "BUSY"))
        }
    };
    if transient {
        unavailable(e)
    } else {
        Error::StoreRejected {
            message: format!("Redis: {e}"),
            source: Some(Box::new(e)),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        for _ in 0..BEGIN_ATTEMPTS {
            let record = request.pending_record(self.clock.now_millis());
            if let Some(outcome) = self.begin_resent(request, &record).await? {
                return Ok(outcome);
            }
        }
        Err(Error::StoreRejected {
            message: "begin kept being blocked by a record the rules let it replace".to_owned(),
            source: None,
        })
    }

    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        self.fenced_update(lease, Status::Completed, Some(response))
            .await
    }

    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        self.fenced_update(lease, Status::Errored, None).await
    }

    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.redis_key(partition_key));
        let flat: Vec<Vec<u8>> = self.query(cmd).await?;
        if flat.is_empty() {
            return Ok(None);
        }
        let now_secs = self.clock.now_secs();
        Ok(Some(codec::decode(&flat)?).filter(|record| !record.is_expired(now_secs)))
    }

    async fn delete(&self, partition_key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.redis_key(partition_key));
        let deleted: i64 = self.query(cmd).await?;
        Ok(deleted > 0)
    }
}
