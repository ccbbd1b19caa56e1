//! An in-memory store with exactly the DynamoDB store's semantics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{BeginOutcome, BeginRequest, Lease, Store, WriteOutcome};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::Result;
use crate::record::{Record, Status};

/// Records in a map behind a mutex: for unit tests, the embedded demo, and
/// single-process use. Every operation is atomic, like DynamoDB's conditional
/// writes, and expired records read as absent, like the DynamoDB store.
///
/// ```
/// use lambda_idempotency::clock::ManualClock;
/// use lambda_idempotency::fingerprint::Fingerprint;
/// use lambda_idempotency::key::IdempotencyKey;
/// use lambda_idempotency::scope::Scope;
/// use lambda_idempotency::store::{BeginOutcome, BeginRequest, MemoryStore, Store};
/// use std::time::Duration;
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::with_clock(ManualClock::new(1_700_000_000_000));
/// let request = BeginRequest {
///     scope: Scope::new("POST /orders", "alice", IdempotencyKey::parse("k-1")?),
///     fingerprint: Fingerprint::from_stored("v1:example".into()),
///     lease: Duration::from_secs(30),
///     expiry: Duration::from_secs(3600),
/// };
/// let BeginOutcome::Started { lease, .. } = store.begin(&request).await? else { panic!() };
/// store.complete(&lease, b"{\"orderId\":1}").await?;
/// assert!(matches!(store.begin(&request).await?, BeginOutcome::Replay(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<String, Record>>>,
    clock: SharedClock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store reading time from `clock`.
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            records: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    /// Number of records held, expired or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `record` as is, bypassing every condition: for tests and tools that
    /// need a record in a given state.
    pub fn insert_raw(&self, record: Record) {
        self.lock().insert(record.partition_key.clone(), record);
    }

    /// Reads a record as stored, expired or not.
    pub fn get_raw(&self, partition_key: &str) -> Option<Record> {
        self.lock().get(partition_key).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock cannot leave a half-written record: every
        // critical section replaces whole values. So a poisoned lock is still sound.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fenced_update(
        &self,
        lease: &Lease,
        target: Status,
        response: Option<&[u8]>,
        apply: impl FnOnce(&mut Record),
    ) -> WriteOutcome {
        let mut records = self.lock();
        match records.get_mut(&lease.partition_key) {
            Some(r) if r.held_by(lease) => {
                apply(r);
                WriteOutcome::Written
            }
            // A retried update that had been applied: the record already holds it.
            Some(r) if r.already_written(lease, target, response) => WriteOutcome::Written,
            other => WriteOutcome::LeaseLost {
                current: other.map(|r| Box::new(r.clone())),
            },
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        let now_ms = self.clock.now_millis();
        let now_secs = self.clock.now_secs();
        let pk = request.scope.partition_key();
        let mut records = self.lock();
        let record = request.pending_record(now_ms);
        if let Some(existing) = records.get(pk)
            && let Some(blocked) =
                BeginOutcome::blocked_by(existing.clone(), &record, now_ms, now_secs)
        {
            return Ok(blocked);
        }
        let lease = record.lease();
        let replaced = records.insert(pk.to_owned(), record).map(Box::new);
        Ok(BeginOutcome::Started { lease, replaced })
    }

    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        let now_ms = self.clock.now_millis();
        let omitted = matches!(super::fit::fit(response), super::fit::Fitted::Omitted);
        let outcome = self.fenced_update(lease, Status::Completed, Some(response), |r| {
            r.status = Status::Completed;
            if omitted {
                r.response = None;
                r.response_omitted = Some(response.len() as u64);
            } else {
                r.response = Some(response.to_vec());
            }
            r.updated_at_ms = now_ms;
        });
        Ok(match outcome {
            WriteOutcome::Written if omitted => WriteOutcome::WrittenWithoutResponse {
                size: response.len(),
            },
            other => other,
        })
    }

    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        let now_ms = self.clock.now_millis();
        Ok(self.fenced_update(lease, Status::Errored, None, |r| {
            r.status = Status::Errored;
            r.updated_at_ms = now_ms;
        }))
    }

    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        let now_secs = self.clock.now_secs();
        Ok(self
            .lock()
            .get(partition_key)
            .filter(|r| !r.is_expired(now_secs))
            .cloned())
    }

    async fn delete(&self, partition_key: &str) -> Result<bool> {
        Ok(self.lock().remove(partition_key).is_some())
    }
}
