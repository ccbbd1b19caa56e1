//! The stored record, and the rules every store applies to it.
//!
//! Every rule of the protocol lives here as a plain function over data: what a begin
//! writes ([`Record::pending`]) and when it may replace a record
//! ([`Record::may_begin_over`]), why a live record blocks a request
//! ([`Record::conflict_with`]), what a lease is ([`Record::lease`]), when a fenced
//! update finds its own earlier write ([`Record::already_written`]), and when a record
//! expires ([`Record::is_expired`], [`expires_at_for`]). Stores only translate them:
//! the in-memory store calls them, and the DynamoDB store's condition expressions are
//! the same predicates in DynamoDB's language; the shared behaviour suite runs both.

use std::fmt;
use std::time::Duration;

use crate::fingerprint::Fingerprint;
use crate::scope::Scope;

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A request holds the key and its handler is (or was) running.
    Pending,
    /// The handler finished and its response is stored for replay.
    Completed,
    /// The handler failed; the same request may run again.
    Errored,
}

impl Status {
    /// The stored spelling: `PENDING`, `COMPLETED`, `ERRORED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Errored => "ERRORED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "COMPLETED" => Some(Self::Completed),
            "ERRORED" => Some(Self::Errored),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A random token naming one holder of a key. Completion is fenced on it: a holder
/// whose lease was taken over can no longer write.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// A fresh random token (UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A token read back from storage.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseToken({})", self.0)
    }
}

/// One idempotency record: one per (route, actor, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partition key, from [`Scope::partition_key`](crate::scope::Scope::partition_key).
    pub partition_key: String,
    /// Where the record is in its life.
    pub status: Status,
    /// The fingerprint of the request that created it.
    pub fingerprint: Fingerprint,
    /// The token of the request that holds (or last held) the key.
    pub lease_token: LeaseToken,
    /// When the holder's lease lapses, epoch milliseconds.
    pub lease_expires_at_ms: i64,
    /// When the record expires, epoch seconds (the table's TTL attribute).
    pub expires_at: i64,
    /// The stored response, once completed.
    pub response: Option<Vec<u8>>,
    /// Set when the request completed but its response was too large to keep (even
    /// compressed, about 384 KB in DynamoDB): the response's size in bytes.
    pub response_omitted: Option<u64>,
    /// When the record was (re)created, epoch milliseconds.
    pub created_at_ms: i64,
    /// When the record last changed, epoch milliseconds.
    pub updated_at_ms: i64,
    /// The raw route, for operators.
    pub route: String,
    /// The raw actor, for operators.
    pub actor: String,
    /// The raw key, for operators.
    pub key: String,
}

/// The lease a request holds after a successful begin: the record it may complete,
/// and the token its completion is fenced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The record's partition key.
    pub partition_key: String,
    /// The token completion is fenced on.
    pub token: LeaseToken,
    /// When the lease lapses, epoch milliseconds.
    pub expires_at_ms: i64,
    /// When the record expires, epoch seconds.
    pub record_expires_at: i64,
}

/// The longest informational copy of the route or actor kept in a record, in bytes
/// (the partition key already identifies the record; these are for operators).
const MAX_INFORMATIONAL_BYTES: usize = 1024;

/// Caps an informational attribute at [`MAX_INFORMATIONAL_BYTES`] on a character
/// boundary.
fn cap(text: &str) -> String {
    if text.len() <= MAX_INFORMATIONAL_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_INFORMATIONAL_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Record {
    /// The `PENDING` record a successful begin writes at `now_ms`: a fresh lease token,
    /// a lease of `lease` from now, and an expiry that outlives the lease
    /// ([`expires_at_for`]).
    pub fn pending(
        scope: &Scope,
        fingerprint: &Fingerprint,
        lease: Duration,
        expiry: Duration,
        now_ms: i64,
    ) -> Record {
        let lease_expires_at_ms = now_ms.saturating_add(crate::clock::millis(lease));
        Record {
            partition_key: scope.partition_key().to_owned(),
            status: Status::Pending,
            fingerprint: fingerprint.clone(),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms,
            expires_at: expires_at_for(now_ms, expiry, lease_expires_at_ms),
            response: None,
            response_omitted: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            route: cap(scope.route()),
            actor: cap(scope.actor()),
            key: scope.key().as_str().to_owned(),
        }
    }

    /// The lease this record grants its holder.
    pub fn lease(&self) -> Lease {
        Lease {
            partition_key: self.partition_key.clone(),
            token: self.lease_token.clone(),
            expires_at_ms: self.lease_expires_at_ms,
            record_expires_at: self.expires_at,
        }
    }

    /// Whether this record is exactly what a fenced update under `lease` to `status`
    /// (with `response`, for a completion) would have written: the same token, the
    /// target status and the same response. Then a retried update that "failed" its
    /// condition had in fact been applied by an earlier attempt (an SDK retry, or
    /// ours after a lost answer), and counts as written.
    pub fn already_written(&self, lease: &Lease, status: Status, response: Option<&[u8]>) -> bool {
        if self.lease_token != lease.token || self.status != status {
            return false;
        }
        match response {
            None => true,
            Some(bytes) => match self.response.as_deref() {
                Some(stored) => stored == bytes,
                None => self.response_omitted == Some(bytes.len() as u64),
            },
        }
    }

    /// Whether a fenced update under `lease` may change this record: it is still the
    /// holder's (`PENDING` under the same token).
    pub fn held_by(&self, lease: &Lease) -> bool {
        self.lease_token == lease.token && self.status == Status::Pending
    }

    /// Whether this record was completed under `lease`: the token is unique to one
    /// holder, so only that request's own completion can have written it.
    pub fn completed_under(&self, lease: &Lease) -> bool {
        self.lease_token == lease.token && self.status == Status::Completed
    }

    /// Whether the record has expired and must behave as absent. DynamoDB's TTL
    /// deletes expired items late (up to days), so every read checks this.
    pub fn is_expired(&self, now_secs: i64) -> bool {
        self.expires_at < now_secs
    }

    /// Whether the holder's lease has lapsed.
    pub fn lease_lapsed(&self, now_ms: i64) -> bool {
        self.lease_expires_at_ms < now_ms
    }

    /// Whether a new request with `fingerprint` may begin over this record:
    /// it has expired, or it is `PENDING` with a lapsed lease, or `ERRORED`, and in
    /// the last two cases only for the same request. Within its expiry a key stays
    /// bound to the first request's fingerprint, even if that request was abandoned.
    pub fn may_begin_over(&self, fingerprint: &Fingerprint, now_ms: i64, now_secs: i64) -> bool {
        if self.is_expired(now_secs) {
            return true;
        }
        let same = self.fingerprint == *fingerprint;
        match self.status {
            Status::Pending => same && self.lease_lapsed(now_ms),
            Status::Errored => same,
            Status::Completed => false,
        }
    }

    /// Why a live record blocks a new request: replay it, report it in flight, or
    /// refuse a different request.
    /// `None` when [`Record::may_begin_over`] would have let it begin.
    pub fn conflict_with(
        &self,
        fingerprint: &Fingerprint,
        now_ms: i64,
        now_secs: i64,
    ) -> Option<Conflict> {
        if self.may_begin_over(fingerprint, now_ms, now_secs) {
            return None;
        }
        if self.fingerprint != *fingerprint {
            return Some(Conflict::Mismatch);
        }
        match self.status {
            Status::Completed => Some(Conflict::Replay),
            Status::Pending => Some(Conflict::InFlight),
            Status::Errored => None,
        }
    }
}

/// How long a record outlives its lease at least, in milliseconds: the default lease
/// margin again, so an instance whose clock runs ahead never sees the record expired
/// while another still sees its lease live.
pub const EXPIRY_AFTER_LEASE_MS: i64 = 3_000;

/// When a record begun at `now_ms` with `expiry` and a lease ending at
/// `lease_expires_at_ms` expires, in epoch seconds: after its expiry, and never while
/// its lease is live (at least [`EXPIRY_AFTER_LEASE_MS`] after the lease ends, rounded
/// up to a whole second). A record that expired under a running handler would let a
/// retry, or even a different request, take the key and run at the same time.
///
/// ```
/// use lambda_idempotency::record::expires_at_for;
/// use std::time::Duration;
///
/// let now = 1_700_000_000_000;
/// // Normally the expiry decides.
/// assert_eq!(expires_at_for(now, Duration::from_secs(3600), now + 30_000), 1_700_003_600);
/// // A lease longer than the expiry extends the record.
/// assert_eq!(expires_at_for(now, Duration::from_secs(300), now + 900_500), 1_700_000_904);
/// ```
pub fn expires_at_for(now_ms: i64, expiry: Duration, lease_expires_at_ms: i64) -> i64 {
    let by_expiry = now_ms
        .saturating_add(crate::clock::millis(expiry))
        .div_euclid(1000);
    let by_lease = lease_expires_at_ms
        .saturating_add(EXPIRY_AFTER_LEASE_MS)
        .saturating_add(999)
        .div_euclid(1000);
    by_expiry.max(by_lease)
}

/// Why a live record blocks a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Same request, completed: replay the stored response.
    Replay,
    /// Same request, still running under a live lease.
    InFlight,
    /// A different request used this key.
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, fp: &str) -> Record {
        Record {
            partition_key: "pk".into(),
            status,
            fingerprint: Fingerprint::from_stored(fp.into()),
            lease_token: LeaseToken::generate(),
            lease_expires_at_ms: 10_000,
            expires_at: 100,
            response: None,
            response_omitted: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            route: "r".into(),
            actor: "a".into(),
            key: "k".into(),
        }
    }

    #[test]
    fn informational_copies_are_capped_on_a_character_boundary() {
        assert_eq!(cap("short"), "short");
        let long = "é".repeat(1000);
        let capped = cap(&long);
        assert!(capped.len() <= MAX_INFORMATIONAL_BYTES);
        assert!(long.starts_with(&capped));
    }

    #[test]
    fn status_round_trips() {
        for s in [Status::Pending, Status::Completed, Status::Errored] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("pending"), None);
    }

    #[test]
    fn decisions() {
        let a = Fingerprint::from_stored("v1:a".into());
        let b = Fingerprint::from_stored("v1:b".into());
        let live = (5_000, 50);
        let lapsed = (10_001, 50);
        let expired = (5_000, 101);

        let completed = record(Status::Completed, "v1:a");
        assert_eq!(
            completed.conflict_with(&a, live.0, live.1),
            Some(Conflict::Replay)
        );
        assert_eq!(
            completed.conflict_with(&b, live.0, live.1),
            Some(Conflict::Mismatch)
        );
        assert_eq!(completed.conflict_with(&b, expired.0, expired.1), None);
        // Expiry is exclusive: at exactly expires_at the record still counts.
        assert_eq!(completed.conflict_with(&a, 0, 100), Some(Conflict::Replay));

        let pending = record(Status::Pending, "v1:a");
        assert_eq!(
            pending.conflict_with(&a, live.0, live.1),
            Some(Conflict::InFlight)
        );
        assert_eq!(
            pending.conflict_with(&b, live.0, live.1),
            Some(Conflict::Mismatch)
        );
        assert_eq!(pending.conflict_with(&a, lapsed.0, lapsed.1), None);
        assert_eq!(
            pending.conflict_with(&b, lapsed.0, lapsed.1),
            Some(Conflict::Mismatch)
        );
        assert_eq!(
            pending.conflict_with(&a, 10_000, 50),
            Some(Conflict::InFlight)
        );

        let errored = record(Status::Errored, "v1:a");
        assert_eq!(errored.conflict_with(&a, live.0, live.1), None);
        assert_eq!(
            errored.conflict_with(&b, live.0, live.1),
            Some(Conflict::Mismatch)
        );
        assert_eq!(errored.conflict_with(&b, expired.0, expired.1), None);
    }
}
