//! What a global table does to the protocol, checked at start-up.
//!
//! The protocol needs a conditional write that sees every earlier write to its item.
//! On a global table in multi-Region *eventual* consistency (MREC, the default), a
//! conditional write is evaluated against the item as the local Region sees it, and
//! concurrent writes in two Regions are resolved last-writer-wins: two Regions can each
//! begin the same key and run the handler, and one record silently replaces the other.
//! So such a table is refused unless the operator states that every key is written
//! from one Region only ([`DynamoDbStore::with_single_region_keys`]).
//!
//! A table in multi-Region *strong* consistency (MRSC) gives every Region the latest
//! item, so conditional writes hold. MRSC does not support everything a single-Region
//! table does (as AWS documented it when this was written: no transactions and no Time
//! to Live), so on such a table the store turns atomic completion off (handlers write
//! directly; [`AtomicWrites::current`](crate::atomic::AtomicWrites::current) is `None`)
//! and says so at WARN, and expired records are removed by the sweeper rather than by
//! TTL (the read-side expiry check keeps them absent meanwhile).

use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::{MultiRegionConsistency, TableDescription};

use super::DynamoDbStore;
use crate::error::{Error, Result};

impl DynamoDbStore {
    /// Accepts a global table in multi-Region eventual consistency: you guarantee that
    /// every idempotency key is written from one Region only (for example, each key is
    /// routed to its home Region and never fails over while its records live).
    /// Without that guarantee two Regions can run the same request.
    #[must_use]
    pub fn with_single_region_keys(mut self) -> Self {
        self.single_region_keys = true;
        self
    }

    /// Whether the store commits a handler's writes with the completion; off on an
    /// MRSC global table once [`check_table`](Self::check_table) has seen one.
    pub fn transactions_enabled(&self) -> bool {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Applies the global-table rules above to a described table.
    pub(super) fn check_replication(&self, table: &TableDescription) -> Result<()> {
        let regions: Vec<String> = table
            .replicas()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_owned))
            .collect();
        if regions.is_empty() {
            return Ok(());
        }
        match table.multi_region_consistency() {
            Some(MultiRegionConsistency::Strong) => {
                self.transactions.store(false, Ordering::Relaxed);
                tracing::warn!(
                    table = %self.table,
                    regions = ?regions,
                    "the idempotency table is an MRSC global table: conditional writes hold in every Region, but transactions are not supported, so atomic completion is off (handlers write directly), and expired records are removed by the sweeper, not TTL"
                );
                Ok(())
            }
            // Eventual, unknown, or absent (tables made before the field existed).
            _ if self.single_region_keys => {
                tracing::warn!(
                    table = %self.table,
                    regions = ?regions,
                    "the idempotency table is an MREC global table, accepted because every key is written from one Region only"
                );
                Ok(())
            }
            _ => Err(Error::UnsafeGlobalTable {
                table: self.table.to_string(),
                regions,
            }),
        }
    }
}
