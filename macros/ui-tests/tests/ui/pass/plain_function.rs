use lambda_idempotency::event::IdempotencyError;
use lambda_idempotency::idempotent;
use serde::Serialize;

#[derive(Serialize)]
struct Order {
    id: String,
    quantity: u32,
}

#[idempotent(key = "/order/id", payload = ["/order", "/warehouse"], expiry = "1h", store = "memory", name = "reserve-stock")]
async fn reserve(order: &Order, warehouse: String) -> Result<String, std::io::Error> {
    Ok(format!("{}x{} at {warehouse}", order.quantity, order.id))
}

#[idempotent(key = "/body|json/orderId", store = "memory")]
async fn no_reference(body: String) -> Result<(), String> {
    let _ = body;
    Ok(())
}

async fn caller() -> Result<String, IdempotencyError<std::io::Error>> {
    let order = Order { id: "o-1".into(), quantity: 2 };
    reserve(&order, "north".to_owned()).await
}

fn main() {
    let _ = caller;
    let _ = no_reference;
}
