//! Nothing to build: this crate holds the compile tests of `#[idempotent]` (`tests/`).
