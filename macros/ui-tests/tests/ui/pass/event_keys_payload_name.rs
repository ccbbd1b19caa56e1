//! Several key pointers, a payload subset, a scope name, a destructured argument.

use lambda_idempotency::idempotent;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Payment {
    tenant: String,
    payment_id: String,
    amount: u64,
    received_at: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charged: u64,
}

#[idempotent(
    key = ["/tenant", "/payment_id"],
    payload = ["/amount"],
    name = "payments",
    expiry = "72h",
    store = "memory",
)]
async fn charge(LambdaEvent { payload, .. }: LambdaEvent<Payment>) -> Result<Receipt, Error> {
    Ok(Receipt {
        charged: payload.amount,
    })
}

fn main() {
    // A handler that is only compiled, as `lambda_runtime::run` would take it.
    let _ = lambda_runtime::service_fn(charge);
}
