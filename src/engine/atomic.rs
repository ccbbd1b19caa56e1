//! The atomic-writes scope around a handler: present only with a transactional
//! store (and the `dynamodb` feature).

use std::future::Future;

use super::HandlerWrites;
use crate::store::Store;

/// The writes the handler hands to the layer, when its store commits atomically.
pub(super) struct Scope {
    #[cfg(feature = "dynamodb")]
    writes: Option<crate::atomic::AtomicWrites>,
}

impl Scope {
    /// A scope for `store`: writes are collected only when it is transactional.
    #[cfg_attr(not(feature = "dynamodb"), allow(unused_variables))]
    pub(super) fn for_store(store: &dyn Store) -> Self {
        Self {
            #[cfg(feature = "dynamodb")]
            writes: store
                .transactional()
                .is_some()
                .then(crate::atomic::AtomicWrites::default),
        }
    }

    /// Runs `handler` with these writes as the current ones
    /// ([`AtomicWrites::current`](crate::atomic::AtomicWrites::current)), or with none
    /// for a store that does not commit atomically (hiding the writes of any request
    /// around it).
    pub(super) async fn run<F: Future>(&self, handler: F) -> F::Output {
        #[cfg(feature = "dynamodb")]
        return match &self.writes {
            Some(writes) => writes.clone().scope(handler).await,
            None => crate::atomic::AtomicWrites::without(handler).await,
        };
        #[cfg(not(feature = "dynamodb"))]
        handler.await
    }

    /// The writes the handler queued, if any.
    pub(super) fn take(&self) -> Option<HandlerWrites> {
        #[cfg(feature = "dynamodb")]
        {
            self.writes
                .as_ref()
                .map(crate::atomic::AtomicWrites::take)
                .filter(|w| !w.is_empty())
        }
        #[cfg(not(feature = "dynamodb"))]
        None
    }
}
