//! The payment gateway the payment-attempt endpoint calls: a simulated one, with a
//! configurable latency and outage, so the demo and tests can show in-flight
//! duplicates and retried failures without a real payment provider.
//!
//! Like a real provider (Stripe's `Idempotency-Key`, Adyen's `idempotency-key`), it
//! deduplicates on the key the caller sends: an authorisation retried with the same
//! key returns the first answer and charges nothing again. The API passes a key
//! derived from the request's idempotency scope
//! ([`CurrentRequest::downstream_key`](lambda_idempotency::CurrentRequest::downstream_key)),
//! so a retry after a crash or a failed commit never authorises twice.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

/// The gateway's answer to an authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Whether the payment was approved.
    pub approved: bool,
    /// The gateway's reference for the attempt.
    pub reference: String,
}

/// The gateway could not be reached; the request may be retried.
#[derive(Debug, thiserror::Error)]
#[error("payment gateway unavailable")]
pub struct GatewayUnavailable;

/// Authorises payments.
#[async_trait]
pub trait PaymentGateway: Debug + Send + Sync + 'static {
    /// Authorises `amount_cents` in `currency` on `payment_method`, once per
    /// `idempotency_key`: a second call with the same key returns the first answer.
    async fn authorize(
        &self,
        idempotency_key: &str,
        amount_cents: u64,
        currency: &str,
        payment_method: &str,
    ) -> Result<Authorization, GatewayUnavailable>;
}

/// A simulated gateway: approves everything except the method `pm_card_declined`,
/// after `latency`, and is unavailable for its first `outages` calls.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    latency: Duration,
    outages: AtomicUsize,
    calls: AtomicUsize,
    /// Authorisations made, by idempotency key.
    authorized: Mutex<HashMap<String, Authorization>>,
}

impl SimulatedGateway {
    /// Answers at once, always available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `latency` to answer.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Is unavailable for the next `outages` calls.
    #[must_use]
    pub fn with_outages(self, outages: usize) -> Self {
        self.outages.store(outages, Ordering::SeqCst);
        self
    }

    /// How many authorisations were attempted.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many authorisations were made: the charges a customer would see.
    pub fn authorizations(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Authorization>> {
        self.authorized.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn authorize(
        &self,
        idempotency_key: &str,
        _amount_cents: u64,
        _currency: &str,
        payment_method: &str,
    ) -> Result<Authorization, GatewayUnavailable> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let outage = self
            .outages
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if outage {
            return Err(GatewayUnavailable);
        }
        let mut authorized = self.lock();
        let authorization = authorized
            .entry(idempotency_key.to_owned())
            .or_insert_with(|| Authorization {
                approved: payment_method != "pm_card_declined",
                reference: format!("gw_{}", uuid::Uuid::new_v4().simple()),
            });
        Ok(authorization.clone())
    }
}
