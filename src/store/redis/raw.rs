//! The Redis store's own round trips, sent without the store or the layer: the
//! baseline of the end-to-end bench (the `testing` feature, through `__internals`).

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::{codec, redis_key, scripts};
use crate::clock::{Clock, SystemClock};
use crate::store::BeginRequest;

/// The begin and fenced-update scripts, with the store's arguments.
pub struct Raw {
    connection: MultiplexedConnection,
    prefix: String,
    begin: Script,
    update: Script,
}

impl Raw {
    /// Connects to `url`; keys under `prefix`, as a store with that prefix.
    pub async fn connect(url: &str, prefix: &str) -> Self {
        let connection = redis::Client::open(url)
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("the redis-server answers");
        Self {
            connection,
            prefix: prefix.to_owned(),
            begin: Script::new(scripts::BEGIN),
            update: Script::new(scripts::FENCED_UPDATE),
        }
    }

    /// The begin script for `request`, as the store sends it: `Some(lease token)`
    /// when it began, `None` when a record blocked it (and came back).
    pub async fn begin(&self, request: &BeginRequest) -> Option<String> {
        let now_ms = SystemClock.now_millis();
        let record = request.pending_record(now_ms);
        let mut invocation = self
            .begin
            .key(redis_key(&self.prefix, &record.partition_key));
        invocation
            .arg(now_ms)
            .arg(now_ms.div_euclid(1000))
            .arg(request.fingerprint.as_str())
            .arg(super::key_expires_at_ms(&record));
        for field in codec::encode(&record) {
            invocation.arg(field);
        }
        let reply: Vec<redis::Value> = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .expect("the begin script runs");
        matches!(reply.first(), Some(redis::Value::Int(1)))
            .then(|| record.lease_token.as_str().to_owned())
    }

    /// The fenced update that completes `request`'s record with `response`.
    pub async fn complete(&self, request: &BeginRequest, token: &str, response: &[u8]) {
        let mut invocation = self
            .update
            .key(redis_key(&self.prefix, request.scope.partition_key()));
        invocation
            .arg(token)
            .arg(6)
            .arg(codec::field::STATUS)
            .arg("COMPLETED")
            .arg(codec::field::UPDATED)
            .arg(SystemClock.now_millis())
            .arg(codec::field::RESPONSE)
            .arg(response)
            .arg(codec::field::ENCODING);
        let reply: Vec<redis::Value> = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .expect("the update script runs");
        assert!(
            matches!(reply.first(), Some(redis::Value::Int(1))),
            "the raw record completes"
        );
    }
}
