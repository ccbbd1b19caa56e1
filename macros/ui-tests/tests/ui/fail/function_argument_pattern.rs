use lambda_idempotency::idempotent;

#[idempotent(key = "/order", store = "memory")]
async fn reserve((order, quantity): (String, u32)) -> Result<u32, String> {
    let _ = order;
    Ok(quantity)
}

fn main() {}
