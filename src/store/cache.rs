//! A warm in-process cache of completed records in front of any store.
//!
//! A Lambda execution environment is reused for many invocations; a client retrying
//! a request often lands on the same one. [`CachedStore`] remembers completed records
//! (from replays and from its own completions), so such a retry is answered with no
//! call to DynamoDB at all. It only ever answers *replay*: a cached record is never
//! served once expired, never for a different request (those go to the store, which
//! decides mismatch or new), and never turns into "in flight".
//!
//! Staleness: a record deleted from the table (`idem purge`, the sweeper) is still
//! replayed from a warm cache for at most `max_age` (default 5 minutes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{BeginOutcome, BeginRequest, Lease, Store, WriteOutcome};
use crate::clock::{Clock, SharedClock, SystemClock, millis};
use crate::error::Result;
use crate::record::{Record, Status};

/// Default number of cached records.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Default bound on the cached responses' total size.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Default longest time a record is served from the cache.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// A bounded LRU cache of completed records in front of `S`.
///
/// ```
/// use lambda_idempotency::store::{CachedStore, MemoryStore};
///
/// let store = CachedStore::new(MemoryStore::new()).with_capacity(256);
/// ```
#[derive(Debug, Clone)]
pub struct CachedStore<S> {
    inner: S,
    state: Arc<Mutex<Lru>>,
    pending: Arc<Mutex<HashMap<String, Record>>>,
    clock: SharedClock,
    max_age_ms: i64,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
}

#[derive(Debug)]
struct Entry {
    record: Record,
    tick: u64,
    cached_at_ms: i64,
}

impl Lru {
    fn get(&mut self, pk: &str) -> Option<(&Record, i64)> {
        let tick = self.tick + 1;
        let entry = self.entries.get_mut(pk)?;
        self.tick = tick;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, pk.to_owned());
        Some((&entry.record, entry.cached_at_ms))
    }

    fn insert(&mut self, record: Record, now_ms: i64) {
        // The old entry goes first, whatever happens to the new one: a record too
        // large to cache must not leave another request's response behind.
        let pk = record.partition_key.clone();
        self.remove(&pk);
        let size = record.response.as_ref().map_or(0, Vec::len);
        if size > self.max_bytes || self.capacity == 0 {
            return;
        }
        self.tick += 1;
        self.order.insert(self.tick, pk.clone());
        self.bytes += size;
        self.entries.insert(
            pk,
            Entry {
                record,
                tick: self.tick,
                cached_at_ms: now_ms,
            },
        );
        while self.entries.len() > self.capacity || self.bytes > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.record.response.as_ref().map_or(0, Vec::len);
            }
        }
    }

    fn remove(&mut self, pk: &str) {
        if let Some(e) = self.entries.remove(pk) {
            self.order.remove(&e.tick);
            self.bytes -= e.record.response.as_ref().map_or(0, Vec::len);
        }
    }
}

impl<S: Store> CachedStore<S> {
    /// A cache of [`DEFAULT_CAPACITY`] records, [`DEFAULT_MAX_BYTES`], [`DEFAULT_MAX_AGE`],
    /// on the system clock.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: Arc::new(Mutex::new(Lru {
                capacity: DEFAULT_CAPACITY,
                max_bytes: DEFAULT_MAX_BYTES,
                ..Lru::default()
            })),
            pending: Arc::default(),
            clock: Arc::new(SystemClock),
            max_age_ms: millis(DEFAULT_MAX_AGE),
        }
    }

    /// At most `capacity` records.
    #[must_use]
    pub fn with_capacity(self, capacity: usize) -> Self {
        lock(&self.state).capacity = capacity;
        self
    }

    /// At most `max_bytes` of cached responses.
    #[must_use]
    pub fn with_max_bytes(self, max_bytes: usize) -> Self {
        lock(&self.state).max_bytes = max_bytes;
        self
    }

    /// Serve a record from the cache for at most `max_age` after caching it.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age_ms = millis(max_age);
        self
    }

    /// Reads time from `clock` (share it with the inner store in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Number of cached records.
    pub fn cached(&self) -> usize {
        lock(&self.state).entries.len()
    }
}

#[async_trait]
impl<S: Store> Store for CachedStore<S> {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        let pk = request.scope.partition_key();
        let now_ms = self.clock.now_millis();
        {
            let mut lru = lock(&self.state);
            if let Some((record, cached_at)) = lru.get(pk) {
                let fresh = !record.is_expired(self.clock.now_secs())
                    && now_ms.saturating_sub(cached_at) <= self.max_age_ms;
                if fresh && record.fingerprint == request.fingerprint {
                    return Ok(BeginOutcome::Replay(Box::new(record.clone())));
                }
                if !fresh {
                    lru.remove(pk);
                }
            }
        }
        let outcome = self.inner.begin(request).await?;
        match &outcome {
            BeginOutcome::Replay(record) => lock(&self.state).insert((**record).clone(), now_ms),
            BeginOutcome::Started { lease, .. } => {
                lock(&self.state).remove(pk);
                let mut pending = lock(&self.pending);
                // Bounded: entries leave on complete/fail; a crashed handler's entry
                // is dropped here once many accumulate.
                if pending.len() >= 4096 {
                    pending.clear();
                }
                pending.insert(
                    lease.token.as_str().to_owned(),
                    pending_record(request, lease, now_ms),
                );
            }
            BeginOutcome::InFlight(_) | BeginOutcome::Mismatch(_) => {}
        }
        Ok(outcome)
    }

    #[cfg(feature = "dynamodb")]
    fn transactional(&self) -> Option<&dyn super::TransactionalStore> {
        self.inner
            .transactional()
            .map(|_| self as &dyn super::TransactionalStore)
    }

    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        let pending = lock(&self.pending).remove(lease.token.as_str());
        let outcome = self.inner.complete(lease, response).await?;
        self.cache_completed(&outcome, pending, response);
        Ok(outcome)
    }

    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        lock(&self.pending).remove(lease.token.as_str());
        self.inner.fail(lease).await
    }

    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        self.inner.get(partition_key).await
    }

    async fn delete(&self, partition_key: &str) -> Result<bool> {
        lock(&self.state).remove(partition_key);
        self.inner.delete(partition_key).await
    }
}

impl<S> CachedStore<S> {
    fn cache_completed(&self, outcome: &WriteOutcome, pending: Option<Record>, response: &[u8]) {
        if let (WriteOutcome::Written, Some(mut record)) = (outcome, pending) {
            let now_ms = self.clock.now_millis();
            record.status = Status::Completed;
            record.response = Some(response.to_vec());
            record.updated_at_ms = now_ms;
            lock(&self.state).insert(record, now_ms);
        }
    }
}

/// The `PENDING` record `request` wrote under `lease`, as the store holds it.
fn pending_record(request: &BeginRequest, lease: &Lease, now_ms: i64) -> Record {
    let mut record = request.pending_record(now_ms);
    record.lease_token = lease.token.clone();
    record.lease_expires_at_ms = lease.expires_at_ms;
    record.expires_at = lease.record_expires_at;
    record
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Atomic completion through the cache: committed by the inner store, then cached.
#[cfg(feature = "dynamodb")]
#[async_trait]
impl<S: Store> super::TransactionalStore for CachedStore<S> {
    async fn complete_with_writes(
        &self,
        lease: &Lease,
        response: &[u8],
        writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<WriteOutcome> {
        let pending = lock(&self.pending).remove(lease.token.as_str());
        let inner = self
            .inner
            .transactional()
            .ok_or_else(|| crate::Error::StoreRejected {
                message: "the cached store cannot commit a handler's writes atomically".to_owned(),
                source: None,
            })?;
        let outcome = inner.complete_with_writes(lease, response, writes).await?;
        self.cache_completed(&outcome, pending, response);
        Ok(outcome)
    }
}
