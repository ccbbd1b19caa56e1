use lambda_http::{Body, Error, Request, Response};
use lambda_idempotency::idempotent;

#[idempotent(expiry = "4d")]
async fn handler(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::new(Body::Empty))
}

fn main() {}
