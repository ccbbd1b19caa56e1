//! In-memory repository for the embedded demo and unit tests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Order, OrdersRepo, PaymentAttempt, Refund, RefundOutcome, RepoError, Reservation,
    ReserveOutcome, SideEffects,
};

/// Everything in maps behind one mutex; each operation is atomic like the
/// DynamoDB transactions it stands in for.
#[derive(Debug, Default)]
pub struct MemoryRepo {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    orders: HashMap<String, Order>,
    payment_attempts: Vec<PaymentAttempt>,
    refunds: Vec<Refund>,
    reservations: Vec<Reservation>,
    stock: HashMap<String, u64>,
}

impl MemoryRepo {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl OrdersRepo for MemoryRepo {
    async fn create_order(&self, order: &Order) -> Result<(), RepoError> {
        self.lock()
            .orders
            .insert(order.order_id.clone(), order.clone());
        Ok(())
    }

    async fn get_order(&self, order_id: &str) -> Result<Option<Order>, RepoError> {
        Ok(self.lock().orders.get(order_id).cloned())
    }

    async fn add_payment_attempt(&self, attempt: &PaymentAttempt) -> Result<(), RepoError> {
        self.lock().payment_attempts.push(attempt.clone());
        Ok(())
    }

    async fn add_refund(&self, refund: &Refund) -> Result<RefundOutcome, RepoError> {
        let mut state = self.lock();
        let Some(order) = state.orders.get_mut(&refund.order_id) else {
            return Ok(RefundOutcome::UnknownOrder);
        };
        let refundable = order.total_cents - order.refunded_cents;
        if refund.amount_cents > refundable {
            return Ok(RefundOutcome::ExceedsTotal {
                refundable_cents: refundable,
            });
        }
        order.refunded_cents += refund.amount_cents;
        let refunded_cents = order.refunded_cents;
        state.refunds.push(refund.clone());
        Ok(RefundOutcome::Recorded { refunded_cents })
    }

    async fn reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome, RepoError> {
        let mut state = self.lock();
        let Some(available) = state.stock.get_mut(&reservation.sku) else {
            return Ok(ReserveOutcome::UnknownSku);
        };
        let wanted = u64::from(reservation.quantity);
        if *available < wanted {
            return Ok(ReserveOutcome::Insufficient {
                available: *available,
            });
        }
        *available -= wanted;
        let remaining = *available;
        state.reservations.push(reservation.clone());
        Ok(ReserveOutcome::Reserved { remaining })
    }

    async fn set_stock(&self, sku: &str, available: u64) -> Result<(), RepoError> {
        self.lock().stock.insert(sku.to_owned(), available);
        Ok(())
    }

    async fn stock(&self, sku: &str) -> Result<Option<u64>, RepoError> {
        Ok(self.lock().stock.get(sku).copied())
    }

    async fn side_effects(&self) -> Result<SideEffects, RepoError> {
        let state = self.lock();
        Ok(SideEffects {
            orders: state.orders.len(),
            payment_attempts: state.payment_attempts.len(),
            refunds: state.refunds.len(),
            reservations: state.reservations.len(),
        })
    }
}
