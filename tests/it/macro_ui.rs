//! Compile tests for `#[idempotent]`: what it accepts (`ui/pass`, which also run)
//! and the errors it gives (`ui/fail/*.stderr`, regenerate with
//! `TRYBUILD=overwrite cargo test --test macro_ui` and read them before committing).

#[test]
fn idempotent_attribute() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
