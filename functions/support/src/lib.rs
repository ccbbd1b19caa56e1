//! What every function of this repository does at start-up, in one place.
//!
//! - Logging follows Lambda's advanced logging controls: the function's log level
//!   (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`) and format
//!   (`AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), through `lambda_runtime`'s default
//!   subscriber.
//! - Metrics go out as CloudWatch EMF on standard output, flushed after every
//!   idempotent request.
//! - A missing setting stops the start-up with one readable line, not a `Debug` dump.
//! - The TLS roots come from the system's CA bundle file alone (`SSL_CERT_FILE`, when
//!   neither it nor `SSL_CERT_DIR` is set): the SDK otherwise reads the bundle *and*
//!   every file of the certificate directory, the same authorities twice, which was
//!   the largest part of orders-api's start-up in a profile (BENCHMARKS.md).

use std::future::Future;

use lambda_idempotency::metrics::{EmfRecorder, install};
use lambda_runtime::Error;

/// The CA bundle files of the systems the functions run on, in the order tried:
/// Amazon Linux 2023 (Lambda's `provided.al2023`), then Debian and Ubuntu.
const CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The CA bundle to name in `SSL_CERT_FILE`: none when `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is set (the operator chose), else the first of [`CA_BUNDLES`] that
/// `exists`.
fn ca_bundle(
    var: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Option<&'static str> {
    if var("SSL_CERT_FILE").is_some() || var("SSL_CERT_DIR").is_some() {
        return None;
    }
    CA_BUNDLES.into_iter().find(|path| exists(path))
}

/// Sets up the TLS roots' source, logging and EMF metrics; call it first in `main`,
/// before the runtime or the SDK start other threads.
pub fn init() -> Result<(), Error> {
    let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    if let Some(bundle) = ca_bundle(var, |path| std::path::Path::new(path).is_file()) {
        // SAFETY: `init` runs first in `main`, on the current-thread runtime's only
        // thread, before anything that could read the environment concurrently starts.
        unsafe { std::env::set_var("SSL_CERT_FILE", bundle) };
    }
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
    fn the_ca_bundle_is_named_unless_the_operator_chose() {
        let none = |_: &str| None;
        let all = |_: &str| true;
        assert_eq!(
            ca_bundle(none, all),
            Some("/etc/pki/tls/certs/ca-bundle.crt")
        );
        assert_eq!(
            ca_bundle(none, |p: &str| p.starts_with("/etc/ssl")),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert_eq!(ca_bundle(none, |_: &str| false), None);
        for set in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let var = |name: &str| (name == set).then(|| "/custom".to_owned());
            assert_eq!(ca_bundle(var, all), None, "{set} set");
        }
    }

    #[test]
    fn a_missing_variable_names_itself_and_what_it_is_for() {
        let err = required_env("FUNCTION_SUPPORT_TEST_UNSET", "a DynamoDB table").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FUNCTION_SUPPORT_TEST_UNSET must name a DynamoDB table"
        );
    }
}
