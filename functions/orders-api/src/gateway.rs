//! The payment gateway the payment-attempt endpoint calls: a simulated one, with a
//! configurable latency and outage, so the demo and tests can show in-flight
//! duplicates and retried failures without a real payment provider.

use std::fmt::Debug;
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
    /// Authorises `amount_cents` in `currency` on `payment_method`.
    async fn authorize(
        &self,
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
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn authorize(
        &self,
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
        Ok(Authorization {
            approved: payment_method != "pm_card_declined",
            reference: format!("gw_{}", uuid::Uuid::new_v4().simple()),
        })
    }
}
