//! The request a handler is running for, as the layer scoped it.
//!
//! A handler's side effects outside DynamoDB (a payment provider, another service)
//! cannot join the layer's transaction. What protects them is the same idempotency
//! passed on: the provider must see one key per request, the same on every retry and
//! takeover, and a different one for any other request. [`CurrentRequest`] derives
//! such keys from the record's scope (route, actor, key), so the handler never builds
//! them from the client's key alone (which another caller may also send).
//!
//! ```
//! use lambda_http::{Body, Error, Request, Response, service_fn};
//! use lambda_idempotency::CurrentRequest;
//! use lambda_idempotency::http::IdempotencyLayer;
//! use lambda_idempotency::store::MemoryStore;
//! use tower::{Layer, ServiceExt};
//!
//! async fn pay(_req: Request) -> Result<Response<Body>, Error> {
//!     let key = CurrentRequest::get()
//!         .map(|current| current.downstream_key("payment-provider"))
//!         .ok_or("not under an idempotency layer")?;
//!     // provider.charge(amount).idempotency_key(&key).send().await?;
//!     Ok(Response::new(Body::from(key)))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let service = IdempotencyLayer::builder(MemoryStore::new()).build()?.layer(service_fn(pay));
//! let request = || {
//!     lambda_http::http::Request::builder()
//!         .method("POST")
//!         .uri("/payments")
//!         .header("idempotency-key", "pay-1")
//!         .body(Body::Empty)
//!         .unwrap()
//! };
//! let response = service.oneshot(request()).await?;
//! let Body::Text(key) = response.body() else { panic!() };
//! assert!(key.starts_with("idem-") && key.len() == 5 + 64);
//! # Ok::<(), Error>(())
//! # })?;
//! # Ok::<(), Error>(())
//! ```

use sha2::{Digest, Sha256};

/// The request the current handler runs for; see the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct CurrentRequest {
    /// Holds the raw actor: never shown (see the `Debug` impl).
    partition_key: String,
    key: String,
    fingerprint: String,
    /// The invocation's deadline, epoch ms; `0` when unknown. What an idempotent
    /// function called by the handler inherits.
    deadline_ms: i64,
}

impl std::fmt::Debug for CurrentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentRequest")
            .field("idempotency_key", &self.key)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    static CURRENT: CurrentRequest;
}

impl CurrentRequest {
    /// The request the calling handler runs for, inside either layer; `None`
    /// elsewhere (a request the layer does not protect, or passed through without a
    /// key).
    pub fn get() -> Option<CurrentRequest> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The client's idempotency key (or the one drawn from an event's payload).
    pub fn idempotency_key(&self) -> &str {
        &self.key
    }

    /// A key for a call to another service on this request's behalf: `idem-` and 64
    /// hex digits of SHA-256 over the record's scope (route, actor, key), the
    /// request's fingerprint and `purpose`. It is the same on every attempt of this
    /// request (a retry, a takeover after a crash), different for a different request
    /// under the same key and for every `purpose` (two calls to two providers), and
    /// it reveals neither the actor nor the client's key. 69 ASCII characters: within
    /// Stripe's 255 and the IETF draft's rules.
    ///
    /// The same request sent again with the same key after its record expired gets
    /// the same downstream key: a provider that remembers keys longer than the
    /// record's expiry answers with its first result instead of acting twice.
    pub fn downstream_key(&self, purpose: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"lambda-idempotency/downstream/v1");
        for part in [&self.partition_key, &self.fingerprint] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(purpose.as_bytes());
        let digest = hasher.finalize();
        let mut out = String::with_capacity(5 + 64);
        out.push_str("idem-");
        for byte in digest {
            out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        out
    }

    #[cfg_attr(not(any(feature = "http", feature = "event")), allow(dead_code))]
    pub(crate) fn new(partition_key: &str, key: &str, fingerprint: &str) -> Self {
        Self {
            partition_key: partition_key.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            deadline_ms: 0,
        }
    }

    /// With the invocation's deadline (epoch ms, `0` when unknown).
    #[cfg_attr(not(any(feature = "http", feature = "event")), allow(dead_code))]
    pub(crate) fn with_deadline(mut self, deadline_ms: i64) -> Self {
        self.deadline_ms = deadline_ms;
        self
    }

    /// The invocation's deadline (epoch ms, `0` when unknown).
    #[cfg_attr(not(feature = "event"), allow(dead_code))]
    pub(crate) fn deadline_ms(&self) -> i64 {
        self.deadline_ms
    }

    /// Runs `f` with this as the current request.
    #[cfg_attr(not(any(feature = "http", feature = "event")), allow(dead_code))]
    pub(crate) async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_keys_depend_on_the_scope_the_request_and_the_purpose() {
        let a = CurrentRequest::new("k1|4:POST|5:alice|k-1", "k-1", "v2:aa");
        let b = CurrentRequest::new("k1|4:POST|3:bob|k-1", "k-1", "v2:aa");
        let other_body = CurrentRequest::new("k1|4:POST|5:alice|k-1", "k-1", "v2:bb");
        assert_eq!(
            a.downstream_key("gateway"),
            a.clone().downstream_key("gateway")
        );
        assert_ne!(a.downstream_key("gateway"), b.downstream_key("gateway"));
        assert_ne!(
            a.downstream_key("gateway"),
            other_body.downstream_key("gateway")
        );
        assert_ne!(a.downstream_key("gateway"), a.downstream_key("ledger"));
        assert!(!a.downstream_key("gateway").contains("alice"));
        assert!(!format!("{a:?}").contains("alice"), "Debug hides the actor");
    }
}
