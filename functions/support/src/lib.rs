//! What every function of this repository does at start-up, in one place.
//!
//! - Logging follows Lambda's advanced logging controls: the function's log level
//!   (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`) and format
//!   (`AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), through `lambda_runtime`'s default
//!   subscriber.
//! - Metrics go out as CloudWatch EMF on standard output, flushed after every
//!   idempotent request.
//! - A missing setting stops the start-up with one readable line, not a `Debug` dump.

use std::future::Future;

use lambda_idempotency::metrics::{EmfRecorder, install};
use lambda_runtime::Error;

/// Sets up logging and EMF metrics; call it first in `main`.
pub fn init() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    install(EmfRecorder::builder().build())?;
    Ok(())
}

/// The value of `name`, which must be set and not empty; `what` says what it names
/// (e.g. "a DynamoDB table") in the error.
pub fn required_env(name: &str, what: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("environment variable {name} must name {what}").into()),
    }
}

/// Runs the function `name`; if its start-up (or the runtime) fails, prints one line
/// and exits with status 1.
pub async fn run_or_exit(name: &str, function: impl Future<Output = Result<(), Error>>) {
    if let Err(e) = function.await {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_names_itself_and_what_it_is_for() {
        let err = required_env("FUNCTION_SUPPORT_TEST_UNSET", "a DynamoDB table").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FUNCTION_SUPPORT_TEST_UNSET must name a DynamoDB table"
        );
    }
}
