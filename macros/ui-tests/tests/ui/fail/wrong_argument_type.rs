use lambda_idempotency::idempotent;
use lambda_runtime::Error;

#[idempotent(key = "/orderId")]
async fn handler(body: String) -> Result<String, Error> {
    Ok(body)
}

fn main() {}
