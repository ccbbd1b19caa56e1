//! Compile tests for `#[idempotent]`: what it accepts (`ui/pass`, which also run)
//! and the errors it gives (`ui/fail/*.stderr`, regenerate with
//! `TRYBUILD=overwrite cargo test -p idempotent-ui-tests` and read them before
//! committing).
//!
//! trybuild builds these cases in a project of its own, against this crate's
//! dev-dependencies: the library without its `dynamodb` feature, so the AWS SDK is
//! not built a second time (and `store = "env"` is checked to say which feature it
//! needs).

#[test]
fn idempotent_attribute() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
