use lambda_idempotency::idempotent;

#[idempotent(store = "memory")]
async fn reserve(order: String) -> Result<String, String> {
    Ok(order)
}

fn main() {}
