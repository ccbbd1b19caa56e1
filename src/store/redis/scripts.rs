//! The Lua scripts the Redis store runs: each is one atomic step on one key, the
//! Redis form of the DynamoDB store's conditional writes.
//!
//! A record is a hash. Field names are short and fixed (see `codec.rs`); the
//! scripts read `st` (status), `fp` (fingerprint), `tok` (lease token), `lease`
//! (lease end, epoch ms) and `exp` (expiry, epoch s).

/// Begin: write the `PENDING` record if, and only if, no live record blocks it, the
/// rule of `Record::may_begin_over` (the same as the DynamoDB condition
/// `attribute_not_exists(pk) OR exp < now_s OR (st = PENDING AND lease < now_ms AND
/// fp = :fp) OR (st = ERRORED AND fp = :fp)`).
///
/// `KEYS[1]`: the record. `ARGV`: now (ms), now (s), the new record's fingerprint,
/// the key's absolute expiry (ms, for `PEXPIREAT`), then the new record's fields as
/// name/value pairs.
///
/// Returns `{1, old...}` when it began (the record it replaced, as `HGETALL` gives
/// it, or nothing), `{0, old...}` when a live record blocks it.
pub(super) const BEGIN: &str = r#"
local key = KEYS[1]
local now_ms = tonumber(ARGV[1])
local now_s = tonumber(ARGV[2])
local fp = ARGV[3]
local old = redis.call('HGETALL', key)
local may_begin = true
if #old > 0 then
  local st, ofp, lease, exp = unpack(redis.call('HMGET', key, 'st', 'fp', 'lease', 'exp'))
  -- A missing or malformed number never lets a request begin (as a missing attribute
  -- fails DynamoDB's comparison): the record is returned, and read as corrupt.
  exp = tonumber(exp)
  lease = tonumber(lease)
  local same = ofp == fp
  may_begin = (exp ~= nil and exp < now_s)
    or (st == 'PENDING' and lease ~= nil and lease < now_ms and same)
    or (st == 'ERRORED' and same)
end
if not may_begin then
  local out = {0}
  for i = 1, #old do out[#out + 1] = old[i] end
  return out
end
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 5))
redis.call('PEXPIREAT', key, ARGV[4])
local out = {1}
for i = 1, #old do out[#out + 1] = old[i] end
return out
"#;

/// A fenced update (complete or fail): change the record only while it is still
/// the caller's, `PENDING` under its lease token, as the DynamoDB store's
/// `UpdateItem` conditional on `tok = :tok AND st = PENDING`.
///
/// `KEYS[1]`: the record. `ARGV`: the lease token, how many of the arguments after
/// this one are fields to set (name/value pairs), those, then the names of fields to
/// remove.
///
/// Returns `{1}` when written, `{0, current...}` when not (the record as `HGETALL`
/// gives it; nothing when it is gone).
pub(super) const FENCED_UPDATE: &str = r#"
local key = KEYS[1]
local tok, st = unpack(redis.call('HMGET', key, 'tok', 'st'))
if tok ~= ARGV[1] or st ~= 'PENDING' then
  local out = {0}
  local current = redis.call('HGETALL', key)
  for i = 1, #current do out[#out + 1] = current[i] end
  return out
end
local n_set = tonumber(ARGV[2])
redis.call('HSET', key, unpack(ARGV, 3, 2 + n_set))
if #ARGV > 2 + n_set then
  redis.call('HDEL', key, unpack(ARGV, 3 + n_set))
end
return {1}
"#;
