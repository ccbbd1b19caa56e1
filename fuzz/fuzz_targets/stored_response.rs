//! The stored-response decoder (what a replay reads back from a record): never
//! panics; whatever it accepts encodes back to a response that decodes the same, and
//! becomes an HTTP response without panicking.
#![no_main]

use lambda_idempotency::__internals::StoredResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match StoredResponse::decode(data) {
        Ok(stored) => {
            let again = StoredResponse::decode(&stored.encode()).expect("re-encoded decodes");
            assert_eq!(again, stored);
            let response = stored.to_response();
            assert_eq!(response.status(), stored.status);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
