//! The sample events in `events/` and the data they refer to, shared by the demo
//! and the tests.

use lambda_http::Request;

use crate::repo::{LineItem, Order, OrdersRepo, RepoError};

/// The order the payment-attempt and refund events refer to.
pub const SEED_ORDER_ID: &str = "ord_4c1d2f6e9a7b4e0f8d3c2b1a0f9e8d7c";
/// The SKU the order and reservation events refer to.
pub const SEED_SKU: &str = "SKU-RED-MUG";
/// Stock seeded for [`SEED_SKU`].
pub const SEED_STOCK: u64 = 100;

/// The repository's `events/` folder.
pub fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// Reads `events/<name>.json` as a `lambda_http` request.
pub fn event(name: &str) -> Result<Request, String> {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    lambda_http::request::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Seeds the order and stock the events refer to.
pub async fn seed(repo: &dyn OrdersRepo) -> Result<(), RepoError> {
    repo.create_order(&Order {
        order_id: SEED_ORDER_ID.to_owned(),
        customer_id: "cust-42".to_owned(),
        items: vec![LineItem {
            sku: SEED_SKU.to_owned(),
            quantity: 2,
            unit_price_cents: 1250,
        }],
        currency: "EUR".to_owned(),
        total_cents: 2500,
        refunded_cents: 0,
        created_at_ms: 0,
    })
    .await?;
    repo.set_stock(SEED_SKU, SEED_STOCK).await
}
