//! Where the API's side effects land: orders, payment attempts, refunds and
//! inventory reservations. Every write here is a side effect the idempotency layer
//! must never repeat, so the repository can also count them.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;

pub mod dynamodb;
mod memory;

pub use memory::MemoryRepo;

/// An order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units ordered (at least 1).
    pub quantity: u32,
    /// Price per unit in minor units (cents).
    pub unit_price_cents: u64,
}

/// A created order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `ord_…`.
    pub order_id: String,
    /// Who ordered.
    pub customer_id: String,
    /// What was ordered.
    pub items: Vec<LineItem>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Sum of the lines, minor units.
    pub total_cents: u64,
    /// Refunded so far, minor units.
    pub refunded_cents: u64,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
}

/// A payment attempt against an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAttempt {
    /// `pay_…`.
    pub payment_attempt_id: String,
    /// The order paid for.
    pub order_id: String,
    /// Amount, minor units.
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The payment method token.
    pub payment_method: String,
    /// `AUTHORIZED` or `DECLINED`.
    pub status: String,
    /// The gateway's reference.
    pub gateway_reference: String,
}

/// A refund against an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// `ref_…`.
    pub refund_id: String,
    /// The order refunded.
    pub order_id: String,
    /// Amount, minor units.
    pub amount_cents: u64,
    /// Why.
    pub reason: String,
}

/// A stock reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// `res_…`.
    pub reservation_id: String,
    /// The item reserved.
    pub sku: String,
    /// Units reserved.
    pub quantity: u32,
}

/// What a refund attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Recorded; the order's refunded total is now this.
    Recorded {
        /// Refunded so far, including this refund.
        refunded_cents: u64,
    },
    /// The order does not exist.
    UnknownOrder,
    /// The refund would exceed what the order cost.
    ExceedsTotal {
        /// What can still be refunded.
        refundable_cents: u64,
    },
}

/// What a reservation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Reserved; this much stock remains.
    Reserved {
        /// Units left after the reservation.
        remaining: u64,
    },
    /// The SKU has no stock record.
    UnknownSku,
    /// Not enough stock; nothing was decremented.
    Insufficient {
        /// Units available.
        available: u64,
    },
}

/// Side effects counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideEffects {
    /// Orders created.
    pub orders: usize,
    /// Payment attempts recorded.
    pub payment_attempts: usize,
    /// Refunds recorded.
    pub refunds: usize,
    /// Reservations made.
    pub reservations: usize,
}

impl SideEffects {
    /// All side effects together.
    pub fn total(&self) -> usize {
        self.orders + self.payment_attempts + self.refunds + self.reservations
    }
}

/// A repository failure; the handler answers 503 and the request may be retried.
#[derive(Debug, thiserror::Error)]
#[error("orders repository: {0}")]
pub struct RepoError(pub String);

/// Storage for the API's side effects.
#[async_trait]
pub trait OrdersRepo: Debug + Send + Sync + 'static {
    /// Stores a new order.
    async fn create_order(&self, order: &Order) -> Result<(), RepoError>;
    /// Reads an order.
    async fn get_order(&self, order_id: &str) -> Result<Option<Order>, RepoError>;
    /// Records a payment attempt.
    async fn add_payment_attempt(&self, attempt: &PaymentAttempt) -> Result<(), RepoError>;
    /// Records a refund and raises the order's refunded total, atomically, only if
    /// the total stays within the order's amount.
    async fn add_refund(&self, refund: &Refund) -> Result<RefundOutcome, RepoError>;
    /// Decrements stock and records the reservation, atomically, only if enough
    /// stock remains: stock never goes negative.
    async fn reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome, RepoError>;
    /// Sets the stock of a SKU (seeding, restocking).
    async fn set_stock(&self, sku: &str, available: u64) -> Result<(), RepoError>;
    /// Reads the stock of a SKU.
    async fn stock(&self, sku: &str) -> Result<Option<u64>, RepoError>;
    /// Counts the side effects stored so far.
    async fn side_effects(&self) -> Result<SideEffects, RepoError>;
}
