//! A store wrapper that injects faults at chosen steps, for the reliability tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use lambda_idempotency::record::Record;
use lambda_idempotency::store::{
    BeginOutcome, BeginRequest, Lease, Store, TransactionalStore, WriteOutcome,
};
use lambda_idempotency::{Error, Result};

/// The store call a fault hits (`complete_with_writes` counts as `Complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Begin,
    Complete,
    Fail,
}

/// What an injected fault does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call never reaches the store: nothing is written, the caller sees
    /// `StoreUnavailable`.
    Unavailable,
    /// The call reaches the store and is applied, but its answer is lost: the caller
    /// sees `StoreUnavailable` although the write happened.
    AnswerLost,
}

/// Wraps a store; each call first takes the next fault queued for its step, if any.
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    queued: Arc<Mutex<HashMap<Step, VecDeque<Fault>>>>,
    injected: Arc<Mutex<HashMap<Step, usize>>>,
}

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            queued: Arc::default(),
            injected: Arc::default(),
        }
    }

    /// Queues `fault` for the next `times` calls of `step`.
    pub fn inject(&self, step: Step, fault: Fault, times: usize) {
        let mut queued = self.queued.lock().unwrap();
        queued
            .entry(step)
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Drops the faults still queued for `step`.
    pub fn clear(&self, step: Step) {
        self.queued.lock().unwrap().remove(&step);
    }

    /// How many faults have hit `step` so far.
    pub fn injected(&self, step: Step) -> usize {
        self.injected
            .lock()
            .unwrap()
            .get(&step)
            .copied()
            .unwrap_or(0)
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn next_fault(&self, step: Step) -> Option<Fault> {
        let fault = {
            let mut queued = self.queued.lock().unwrap();
            queued.get_mut(&step).and_then(VecDeque::pop_front)
        };
        if fault.is_some() {
            *self.injected.lock().unwrap().entry(step).or_default() += 1;
        }
        fault
    }

    async fn run<T>(
        &self,
        step: Step,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.next_fault(step) {
            None => call.await,
            Some(Fault::Unavailable) => Err(unavailable(step, "the call never reached the store")),
            Some(Fault::AnswerLost) => {
                // Applied (or refused) for real; only the answer goes missing.
                let _ = call.await;
                Err(unavailable(
                    step,
                    "the call was applied but its answer was lost",
                ))
            }
        }
    }
}

fn unavailable(step: Step, what: &str) -> Error {
    Error::StoreUnavailable {
        message: format!("injected fault at {step:?}: {what}"),
        source: None,
    }
}

#[async_trait]
impl<S: Store> Store for FaultyStore<S> {
    async fn begin(&self, request: &BeginRequest) -> Result<BeginOutcome> {
        self.run(Step::Begin, self.inner.begin(request)).await
    }

    async fn complete(&self, lease: &Lease, response: &[u8]) -> Result<WriteOutcome> {
        self.run(Step::Complete, self.inner.complete(lease, response))
            .await
    }

    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        self.inner
            .transactional()
            .map(|_| self as &dyn TransactionalStore)
    }

    async fn fail(&self, lease: &Lease) -> Result<WriteOutcome> {
        self.run(Step::Fail, self.inner.fail(lease)).await
    }

    async fn get(&self, partition_key: &str) -> Result<Option<Record>> {
        self.inner.get(partition_key).await
    }

    async fn delete(&self, partition_key: &str) -> Result<bool> {
        self.inner.delete(partition_key).await
    }
}

#[async_trait]
impl<S: Store> TransactionalStore for FaultyStore<S> {
    async fn complete_with_writes(
        &self,
        lease: &Lease,
        response: &[u8],
        writes: Vec<TransactWriteItem>,
    ) -> Result<WriteOutcome> {
        let inner = self
            .inner
            .transactional()
            .ok_or_else(|| Error::StoreRejected {
                message: "the wrapped store is not transactional".into(),
                source: None,
            })?;
        self.run(
            Step::Complete,
            inner.complete_with_writes(lease, response, writes),
        )
        .await
    }
}
