//! The production store: Redis, standalone or Cluster, shared by any number of gateways.
//!
//! It keeps the rules of the embedded store (the conformance suite runs against both) and adds what one
//! process cannot give: durability, and retention that Redis enforces by itself with TTLs even when no
//! gateway is running.
//!
//! # Key layout
//!
//! `P` is [`RedisOptions::key_prefix`] (default `idg`). Keys of one case share the hash tag `{<case id>}`
//! so that every multi-key change of a case is one Lua script on one Cluster slot.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P:{<case>}:case` | hash | the [`CaseRecord`], no personal data (fields below) | record TTL after creation, again after a final status |
//! | `P:{<case>}:pii:key` | string | the wrapped data key: `0x01 ‖ u16 BE len ‖ kek id ‖ wrapped bytes` | when the personal data is due |
//! | `P:{<case>}:pii:body` | string | the sealed body ([`Body::to_bytes`]) | when the personal data is due |
//! | `P:idem:{<account>}:<request>` | string | the case id holding this request | record TTL, refreshed at a final status |
//! | `P:acct:{<account>}` | set | ids of the account's cases (erasure index) | record TTL, refreshed on each new case |
//! | `P:expiry` | zset | case id → `pii_expires_at_unix` (sweep index, re-wrapping index) | — (entries removed by `sweep`) |
//! | `P:records` | zset | final case id → `updated_at_unix` (index for forgetting old records) | — (entries removed by `sweep`) |
//! | `P:audit` | stream | audit events; the event id is the stream id | trimmed with `MINID ~` on append |
//! | `P:rl:{<key>}:<window secs>:<window start>` | string | a rate-window counter | window length + 60 s |
//! | `P:bind:{<id index>}` | hash | account → `v:<case>` (bound by that verified case) or `c:<case>:<until>` (a candidate written just before the step that would verify the case; it binds only once that case is `verified`, counts while the case is in flight, and is dropped otherwise) | `ttl_seconds` after the last change |
//! | `P:{<case>}:review` | hash | a case in the review queue (fields below); the truth about its lease | with the personal data; deleted when the case ends |
//! | `P:review:queue` | stream + group `reviewers` | one entry `case=<id>` per queued case; the group's pending entries are the leases (see `redis_review.rs`) | entries deleted when their case ends (or by the next claim that meets them) |
//! | `P:reviewer:{<principal>}` | string | a reviewer's X25519 public key (32 bytes) | — (replaced on registration) |
//!
//! Case hash fields: `v` (encoding version, `2`), `id`, `account`, `request`, `principal`, `purpose`
//! ([`Purpose::as_str`]), `status` ([`CaseStatus::as_str`]), `created`, `updated`, `lease`,
//! `status_at` (decimal unix seconds), `fp` (the keyed content fingerprint), `mac` (the integrity
//! tag, see `record_mac`), and when present `provider`, `refusal`, `pii_exp`, `anchor` (the blind
//! index a verified anchor case bound), `erase` (`1`: erasure arrived while processing), `why` (a
//! review reason code: why the case went to review). An absent
//! optional field is `None`. A record whose tag does not verify is [`StoreError::Integrity`].
//!
//! Review hash fields: `queued` (unix seconds, caller's clock), `entry` (its queue stream id), `holder`,
//! `until`, `leased` (the lease: reviewer, end, start), `claimed`, `approvals`, `supplements` (JSON arrays of
//! principals / supplement request ids), `supplement` (`1` once the supplement is complete). No personal data.
//!
//! The indexes live on other slots than the cases they point to, so they are updated in separate
//! commands and may be stale: every reader of an index re-checks the case inside the case's script.
//! The account index is written *before* the case (so erasure can never miss a case), and so is the
//! expiry zset entry of a case about to become pending review: it is the status index by which the
//! sweep finds such a case even if the gateway dies right after the case script — to queue it (the
//! queue entry comes after the script) and to expire it. The records zset comes after the case
//! script (a missed entry only delays forgetting, which the record's own TTL bounds).
//!
//! # Time
//!
//! The store has no clock: times come from the caller. TTLs of personal data are therefore relative
//! (`pii_expires_at_unix − now_unix`, set with `PX`), not `PEXPIREAT` on Redis's clock, which also
//! keeps retention right when the gateway's and Redis's clocks disagree.
//!
//! # What it must never do
//!
//! Receive, store or log plaintext personal data (it only ever gets sealed bytes); log or put in an
//! error any stored value (errors name the operation and the Redis error kind only); panic on what
//! Redis returns (a malformed value is [`StoreError::Unavailable`] with a warning naming the field);
//! wait on a dead Redis longer than the response timeout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Script, ScriptInvocation, Value};

use super::{AuditEvent, Begin, CaseRecord, CaseStatus, Finish, SealedPii, Store, StoreError};

// The review queue (`impl ReviewQueue for RedisStore`): a child module, so that it shares this
// module's connection, key names and reply decoding without widening their visibility.
#[path = "redis_review.rs"]
pub(crate) mod review;
use crate::crypto::blind_index::{BlindIndexer, IndexUse};
use crate::crypto::envelope::{Body, WrappedKey};
use crate::crypto::live::Live;
use crate::domain::Purpose;

/// Connection settings of the Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Longest wait to open a connection to one Redis node.
    pub connect_timeout: Duration,
    /// Longest wait for one reply; a dead or stalled Redis fails a call after this.
    pub response_timeout: Duration,
    /// First part of every key, so several deployments (or tests) can share one Redis.
    /// Must not contain `{` or `}` (they would change the Cluster hash tags).
    pub key_prefix: String,
    /// How long a case record and its idempotency key are kept: from creation, and again from the
    /// final status. `CaseRecord` carries no TTL of its own.
    pub record_ttl: Duration,
    /// The keys of the records' integrity tags (the gateway's blind-index keys; never stored in
    /// Redis). Every gateway sharing a Redis must hold the same keys.
    /// Replaced by a key reload (SIGHUP) like the gateway's other keys. `None`: a fresh random key
    /// made when the store connects, so records are readable by this store only (tests; a
    /// deployment must set it).
    pub record_keys: Option<Live<BlindIndexer>>,
}

/// Default record retention: 90 days.
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(90 * 86_400);

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            key_prefix: "idg".to_owned(),
            record_ttl: DEFAULT_RECORD_TTL,
            record_keys: None,
        }
    }
}

/// How long a rate-window counter outlives its window (clock skew between gateways).
const WINDOW_MARGIN_SECONDS: u64 = 60;
/// How often `watch` reloads a case.
const WATCH_POLL: Duration = Duration::from_millis(250);
/// A watch ends after this many failed reloads in a row (Redis gone for a while): the watcher can
/// come back, but must not be left waiting on a stream that can no longer change.
const WATCH_MAX_FAILURES: u32 = 20;
/// Index entries handled per round trip by `sweep` and the re-wrapping scan.
const BATCH: isize = 256;
/// Version of the case hash encoding (field `v`). Version 2 added the integrity tag (`mac`), the
/// content fingerprint (`fp`), `status_at`, `anchor` and `erase`; a version-1 record has no tag and
/// is refused as failing its integrity check.
const RECORD_VERSION: &str = "2";
/// Version byte of the wrapped-key encoding.
const WRAPPED_KEY_VERSION: u8 = 1;

/// The one connection type every operation is written against: a reconnecting standalone
/// connection or a Cluster connection. Both are cheap to clone (they share one multiplexed link).
#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Key names (see the module docs).
struct Keys {
    prefix: String,
}

impl Keys {
    fn case(&self, id: &str) -> String {
        format!("{}:{{{id}}}:case", self.prefix)
    }
    fn pii_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:pii:key", self.prefix)
    }
    fn pii_body(&self, id: &str) -> String {
        format!("{}:{{{id}}}:pii:body", self.prefix)
    }
    fn idem(&self, account_id: &str, request_id: &str) -> String {
        format!("{}:idem:{{{account_id}}}:{request_id}", self.prefix)
    }
    fn account(&self, account_id: &str) -> String {
        format!("{}:acct:{{{account_id}}}", self.prefix)
    }
    fn expiry(&self) -> String {
        format!("{}:expiry", self.prefix)
    }
    fn records(&self) -> String {
        format!("{}:records", self.prefix)
    }
    fn audit(&self) -> String {
        format!("{}:audit", self.prefix)
    }
    fn window(&self, key: &str, window_seconds: u64, start: i64) -> String {
        format!("{}:rl:{{{key}}}:{window_seconds}:{start}", self.prefix)
    }
    fn binding(&self, id_index: &str) -> String {
        format!("{}:bind:{{{id_index}}}", self.prefix)
    }
    fn review(&self, id: &str) -> String {
        format!("{}:{{{id}}}:review", self.prefix)
    }
    fn review_queue(&self) -> String {
        format!("{}:review:queue", self.prefix)
    }
    fn reviewer(&self, principal: &str) -> String {
        format!("{}:reviewer:{{{principal}}}", self.prefix)
    }
}

/// The Lua scripts. Each touches the keys of one case (or one other key) only, so it runs on one
/// Cluster slot and is atomic. Replies start with a status word; case scripts then append the case
/// hash (`HGETALL`).
struct Scripts {
    claim: Script,
    finish: Script,
    shred: Script,
    forget: Script,
    delete_if_equal: Script,
    replace_key: Script,
    add_to_set: Script,
    count: Script,
    bind_candidate: Script,
    confirm_binding: Script,
    drop_binding: Script,
}

/// Claims a case for `begin`: creates it if absent, takes over a `Processing` case whose lease ran
/// out if it holds the same request (same content fingerprint), or reports it as it stands.
/// KEYS: case. ARGV: now, new lease, record ttl (s), fingerprint, then field/value pairs of a new case.
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'started', unpack(redis.call('HGETALL', KEYS[1]))}
end
local status = redis.call('HGET', KEYS[1], 'status')
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease'))
if status == 'processing' and lease ~= nil and lease <= tonumber(ARGV[1])
   and redis.call('HGET', KEYS[1], 'fp') == ARGV[4] then
  redis.call('HSET', KEYS[1], 'lease', ARGV[2], 'updated', ARGV[1])
  return {'started', unpack(redis.call('HGETALL', KEYS[1]))}
end
return {'existing', unpack(redis.call('HGETALL', KEYS[1]))}
";

/// Ends the provider phase; a case pending review gets its review hash (queued now, same TTL as
/// its personal data). A case whose erasure was requested meanwhile ends `erased` with nothing kept.
/// KEYS: case, pii key, pii body, review.
/// ARGV: 1 status, 2 now, 3 record ttl (s), 4 is final, 5 provider?, 6 refusal?, 7 pii_exp?,
/// 8 pii ttl (ms)?, 9 wrapped key, 10 body, 11 the tag read before (compare-and-set), 12 the new
/// tag, 13 the tag of the erased record, 14 anchor index?, 15 review reason? — `?` = empty string
/// for none.
const FINISH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[11] then return {'conflict'} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[1], 'pii_exp', 'refusal', 'anchor')
if redis.call('HGET', KEYS[1], 'erase') == '1' then
  redis.call('HSET', KEYS[1], 'status', 'erased', 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[13])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'provider', ARGV[5]) end
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'erased', unpack(redis.call('HGETALL', KEYS[1]))}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[12])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'provider', ARGV[5]) else redis.call('HDEL', KEYS[1], 'provider') end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'refusal', ARGV[6]) end
if ARGV[14] ~= '' then redis.call('HSET', KEYS[1], 'anchor', ARGV[14]) end
if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'why', ARGV[15]) end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'pii_exp', ARGV[7])
  if ARGV[8] ~= '' then
    redis.call('SET', KEYS[2], ARGV[9], 'PX', ARGV[8])
    redis.call('SET', KEYS[3], ARGV[10], 'PX', ARGV[8])
    redis.call('HSET', KEYS[4], 'queued', ARGV[2])
    redis.call('PEXPIRE', KEYS[4], ARGV[8])
  end
end
if ARGV[4] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {'ok', unpack(redis.call('HGETALL', KEYS[1]))}
";

/// Ends a pending case by expiry or erasure and destroys its personal data (crypto-shredding: the
/// wrapped data key and the body go in the same step) and takes it out of the review queue (the
/// review hash goes here; its stream entry is dropped by the next claim that meets it). Erasure of a
/// case still processing marks it (`erase`), so that it ends `erased` instead of storing anything.
/// KEYS: case, pii key, pii body, review. ARGV: 1 `expire` | `erase`, 2 now, 3 record ttl (s),
/// 4 account (erase: the case must be its), 5 the tag read before, 6 the new tag, 7 principal
/// (erase: only its cases; empty = any).
const SHRED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if ARGV[1] == 'erase' then
  if redis.call('HGET', KEYS[1], 'account') ~= ARGV[4] then return {'other_account'} end
  if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'principal') ~= ARGV[7] then return {'other_principal'} end
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'processing' then
  if ARGV[1] == 'erase' then
    if redis.call('HGET', KEYS[1], 'erase') == '1' then return {'final'} end
    redis.call('HSET', KEYS[1], 'erase', '1')
    return {'marked'}
  end
  return {'keep'}
end
if status ~= 'pending_review' then return {'final'} end
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[5] then return {'changed'} end
local next_status = 'erased'
if ARGV[1] == 'expire' then
  local due = redis.call('HGET', KEYS[1], 'pii_exp')
  if not due then return {'final'} end
  if tonumber(due) == nil or tonumber(due) > tonumber(ARGV[2]) then return {'later', due} end
  next_status = 'expired'
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[1], 'pii_exp')
redis.call('HSET', KEYS[1], 'status', next_status, 'updated', ARGV[2], 'status_at', ARGV[2], 'mac', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'done', unpack(redis.call('HGETALL', KEYS[1]))}
";

/// Forgets a final case last changed before a time. KEYS: case, pii key, pii body, review.
/// ARGV: before.
const FORGET: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'verified' and status ~= 'not_verified' and status ~= 'expired' and status ~= 'erased' then
  return {'keep'}
end
local updated = redis.call('HGET', KEYS[1], 'updated')
if tonumber(updated) ~= nil and tonumber(updated) >= tonumber(ARGV[1]) then return {'later', updated} end
local account = redis.call('HGET', KEYS[1], 'account') or ''
local request = redis.call('HGET', KEYS[1], 'request') or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'forgot', account, request}
";

/// Deletes a key if it still holds a value (compare-and-delete). KEYS: key. ARGV: value.
const DELETE_IF_EQUAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Replaces a wrapped data key if unchanged and the body still exists, keeping its TTL.
/// KEYS: pii key, pii body. ARGV: old, new.
const REPLACE_KEY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
";

/// Adds a member to a set and renews the set's TTL. KEYS: set. ARGV: member, ttl (s).
const ADD_TO_SET: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Counts one event in a window. KEYS: counter. ARGV: ttl (s).
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Records a candidate binding (`c:<case>:<until>`) of an account under an anchor ID, before the
/// step that would verify the case; an account already bound keeps its binding. The candidate is
/// only a hint: it binds nothing unless its case is `verified` (see `anchor_bound`).
/// KEYS: binding hash. ARGV: account, candidate, ttl (s).
const BIND_CANDIDATE: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or string.sub(current, 1, 2) ~= 'v:' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Confirms a binding whose case is verified (`v:<case>`), if the entry still names that case.
/// KEYS: binding hash. ARGV: account, case, ttl (s; `0`: keep the hash's TTL, as a reader does).
const CONFIRM_BINDING: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and (current == 'v:' .. ARGV[2] or string.sub(current, 1, string.len(ARGV[2]) + 3) == 'c:' .. ARGV[2] .. ':') then
  redis.call('HSET', KEYS[1], ARGV[1], 'v:' .. ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
  return 1
end
return 0
";

/// Removes an account's entry if it still names the given case (any state) or, with an empty case,
/// whatever it names. KEYS: binding hash. ARGV: account, case.
const DROP_BINDING: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if ARGV[2] == '' or current == 'v:' .. ARGV[2] or string.sub(current, 1, string.len(ARGV[2]) + 3) == 'c:' .. ARGV[2] .. ':' then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
";

impl Scripts {
    fn new() -> Self {
        Self {
            claim: Script::new(CLAIM),
            finish: Script::new(FINISH),
            shred: Script::new(SHRED),
            forget: Script::new(FORGET),
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
            replace_key: Script::new(REPLACE_KEY),
            add_to_set: Script::new(ADD_TO_SET),
            count: Script::new(COUNT),
            bind_candidate: Script::new(BIND_CANDIDATE),
            confirm_binding: Script::new(CONFIRM_BINDING),
            drop_binding: Script::new(DROP_BINDING),
        }
    }
}

struct Inner {
    connection: Connection,
    keys: Keys,
    scripts: Scripts,
    response_timeout: Duration,
    /// [`RedisOptions::record_ttl`] in whole seconds (what `EXPIRE` takes), at least 1.
    record_ttl_seconds: u64,
    /// [`RedisOptions::record_keys`].
    record_keys: Live<BlindIndexer>,
    /// Test hook: called with a step name between the steps of a multi-step change (see
    /// [`RedisStore::with_step_hook`]).
    step_hook: Option<StepHook>,
}

/// A function called between steps, for tests that kill Redis (or fail) right there.
pub type StepHook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The Redis store (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.connection {
            Connection::Standalone(_) => "standalone",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("key_prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(op: &'static str, error: &redis::RedisError) -> StoreError {
    // The kind only: a Redis error message can quote a command argument, which may be a stored value.
    tracing::warn!(op, kind = ?error.kind(), "redis call failed");
    StoreError::Unavailable
}

fn corrupt(op: &'static str, field: &'static str) -> StoreError {
    tracing::warn!(op, field, "unexpected data in redis");
    StoreError::Unavailable
}

fn check_options(options: &RedisOptions) -> Result<(), StoreError> {
    if options.key_prefix.is_empty() || options.key_prefix.contains(['{', '}']) {
        tracing::warn!("redis key prefix must be non-empty and must not contain '{{' or '}}'");
        return Err(StoreError::Unavailable);
    }
    Ok(())
}

impl RedisStore {
    /// Connects to a standalone Redis (`redis://host:port/db`). The connection reconnects by itself
    /// after Redis comes back; until then calls fail with [`StoreError::Unavailable`].
    pub async fn standalone(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        check_options(&options)?;
        let client = redis::Client::open(url).map_err(|e| unavailable("connect", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            // Reconnect quickly once Redis is back; the backoff stays under one connect timeout.
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(options.connect_timeout);
        let connect = ConnectionManager::new_with_config(client, config);
        let manager = tokio::time::timeout(options.connect_timeout * 2, connect)
            .await
            .map_err(|_| {
                tracing::warn!(op = "connect", "redis connection timed out");
                StoreError::Unavailable
            })?
            .map_err(|e| unavailable("connect", &e))?;
        let store = Self::with_connection(Connection::Standalone(manager), options)?;
        store.ping().await?;
        Ok(store)
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port`).
    pub async fn cluster(nodes: &[String], options: RedisOptions) -> Result<Self, StoreError> {
        check_options(&options)?;
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.response_timeout)
            .build()
            .map_err(|e| unavailable("connect", &e))?;
        let connect = client.get_async_connection();
        let connection = tokio::time::timeout(options.connect_timeout * 2, connect)
            .await
            .map_err(|_| {
                tracing::warn!(op = "connect", "redis cluster connection timed out");
                StoreError::Unavailable
            })?
            .map_err(|e| unavailable("connect", &e))?;
        let store = Self::with_connection(Connection::Cluster(connection), options)?;
        store.ping().await?;
        Ok(store)
    }

    fn with_connection(connection: Connection, options: RedisOptions) -> Result<Self, StoreError> {
        let record_keys = match options.record_keys {
            Some(keys) => keys,
            None => {
                let key = crate::crypto::SecretKey32::random().map_err(|_| {
                    tracing::warn!("no randomness for an ephemeral record key");
                    StoreError::Unavailable
                })?;
                Live::new(BlindIndexer::new("ephemeral".to_owned(), &key))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                keys: Keys {
                    prefix: options.key_prefix,
                },
                scripts: Scripts::new(),
                response_timeout: options.response_timeout,
                record_ttl_seconds: options.record_ttl.as_secs().max(1),
                record_keys,
                step_hook: None,
            }),
        })
    }

    /// The same store with `hook` called between the steps of multi-step changes (for failure
    /// tests: the hook may kill Redis, so the next step fails as after a crash).
    #[doc(hidden)]
    pub fn with_step_hook(&self, hook: StepHook) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                connection: inner.connection.clone(),
                keys: Keys {
                    prefix: inner.keys.prefix.clone(),
                },
                scripts: Scripts::new(),
                response_timeout: inner.response_timeout,
                record_ttl_seconds: inner.record_ttl_seconds,
                record_keys: inner.record_keys.clone(),
                step_hook: Some(hook),
            }),
        }
    }

    fn step(&self, name: &'static str) {
        if let Some(hook) = &self.inner.step_hook {
            hook(name);
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query("ping", &redis::cmd("PING")).await?;
        Ok(())
    }

    /// Runs one round trip, bounded by the response timeout whatever the connection does meanwhile
    /// (a reconnecting manager would otherwise make callers wait through its backoff).
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.response_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(unavailable(op, &error)),
            Err(_) => {
                tracing::warn!(op, "redis call timed out");
                Err(StoreError::Unavailable)
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        self.bounded(op, cmd.query_async(&mut connection)).await
    }

    async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        self.bounded(op, invocation.invoke_async(&mut connection)).await
    }

    /// Runs a case script (`KEYS` = case, pii key, pii body, review) and splits its reply.
    async fn case_script(
        &self,
        op: &'static str,
        script: &Script,
        id: &str,
        args: &[&[u8]],
    ) -> Result<Reply, StoreError> {
        let keys = &self.inner.keys;
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.case(id))
            .key(keys.pii_key(id))
            .key(keys.pii_body(id))
            .key(keys.review(id));
        for arg in args {
            invocation.arg(*arg);
        }
        let raw: Vec<Vec<u8>> = self.eval(op, &invocation).await?;
        Reply::parse(op, raw)
    }

    async fn add_to_set(&self, op: &'static str, key: String, member: &str) -> Result<(), StoreError> {
        let mut invocation = self.inner.scripts.add_to_set.prepare_invoke();
        invocation.key(key).arg(member).arg(self.inner.record_ttl_seconds);
        let _: i64 = self.eval(op, &invocation).await?;
        Ok(())
    }

    /// Index updates after a case reached a final status: keep its idempotency key as long as the
    /// record, and list it for forgetting.
    async fn after_final(&self, op: &'static str, record: &CaseRecord) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let _: i64 = self
            .query(
                op,
                redis::cmd("EXPIRE")
                    .arg(keys.idem(&record.account_id, &record.request_id))
                    .arg(self.inner.record_ttl_seconds),
            )
            .await?;
        let _: i64 = self
            .query(
                op,
                redis::cmd("ZADD")
                    .arg(keys.records())
                    .arg(record.updated_at_unix)
                    .arg(&record.id),
            )
            .await?;
        Ok(())
    }

    /// Removes `ids` from an index zset.
    async fn zrem(&self, op: &'static str, key: String, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = self.query(op, redis::cmd("ZREM").arg(key).arg(ids)).await?;
        Ok(())
    }

    /// Ids of an index zset with a score up to `max` (inclusive or not), from `offset`.
    async fn zrange_upto(
        &self,
        op: &'static str,
        key: String,
        max: String,
        offset: isize,
    ) -> Result<Vec<String>, StoreError> {
        self.query(
            op,
            redis::cmd("ZRANGE")
                .arg(key)
                .arg("-inf")
                .arg(max)
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(offset)
                .arg(BATCH),
        )
        .await
    }

    /// The case and its stored integrity tag (checked), or `None` for an unknown case.
    async fn read_tagged(&self, op: &'static str, id: &str) -> Result<Option<(CaseRecord, String)>, StoreError> {
        let pairs: Vec<Vec<u8>> = self
            .query(op, redis::cmd("HGETALL").arg(self.inner.keys.case(id)))
            .await?;
        if pairs.is_empty() {
            return Ok(None);
        }
        decode_record_tagged(&self.inner.record_keys.load(), op, id, pairs).map(Some)
    }

    /// Accounts other than `account_id` bound under `indexes` (see [`BIND_CANDIDATE`]): a confirmed
    /// entry; a candidate whose case is `verified` (confirmed on the way); a candidate whose case is
    /// still `processing` under a live lease (in flight: counted, to stay on the safe side). Any other
    /// candidate is stale and removed.
    async fn bound_accounts(
        &self,
        op: &'static str,
        indexes: &[String],
        except_account: Option<&str>,
        ttl_seconds: u64,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut bound = Vec::new();
        for index in indexes {
            let key = self.inner.keys.binding(index);
            let entries: HashMap<String, String> = self.query(op, redis::cmd("HGETALL").arg(&key)).await?;
            for (account, value) in entries {
                if Some(account.as_str()) == except_account || bound.contains(&account) {
                    continue;
                }
                if value.starts_with("v:") {
                    bound.push(account);
                    continue;
                }
                let mut parts = value.splitn(3, ':');
                let (Some("c"), Some(case), Some(until)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                let until: i64 = until.parse().unwrap_or(0);
                let fields: Vec<Option<String>> = self
                    .query(
                        op,
                        redis::cmd("HMGET")
                            .arg(self.inner.keys.case(case))
                            .arg("status")
                            .arg("lease"),
                    )
                    .await?;
                let status = fields.first().cloned().flatten();
                match status.as_deref() {
                    Some("verified") => {
                        self.binding_script(
                            op,
                            &self.inner.scripts.confirm_binding,
                            &key,
                            &account,
                            case,
                            ttl_seconds,
                        )
                        .await?;
                        bound.push(account);
                    }
                    Some("processing") if until > now_unix => bound.push(account),
                    _ => {
                        self.binding_script(op, &self.inner.scripts.drop_binding, &key, &account, case, ttl_seconds)
                            .await?;
                    }
                }
            }
        }
        Ok(bound)
    }

    async fn binding_script(
        &self,
        op: &'static str,
        script: &Script,
        key: &str,
        account: &str,
        case: &str,
        ttl_seconds: u64,
    ) -> Result<(), StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.key(key).arg(account).arg(case).arg(ttl_seconds);
        let _: i64 = self.eval(op, &invocation).await?;
        Ok(())
    }

    /// Before the step that would verify `record` under `claim`: records a candidate binding and
    /// says whether the limit allows it (`false`: the case must end refused; our candidate is
    /// dropped again).
    async fn anchor_allows(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &super::AnchorClaim,
        in_flight_until: i64,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let key = self.inner.keys.binding(&claim.index);
        let mut invocation = self.inner.scripts.bind_candidate.prepare_invoke();
        invocation
            .key(&key)
            .arg(&record.account_id)
            .arg(format!("c:{}:{in_flight_until}", record.id))
            .arg(claim.ttl_seconds.max(1));
        let _: i64 = self.eval(op, &invocation).await?;
        let mut consult = claim.consult.clone();
        if !consult.contains(&claim.index) {
            consult.push(claim.index.clone());
        }
        let others = self
            .bound_accounts(op, &consult, Some(&record.account_id), claim.ttl_seconds, now_unix)
            .await?;
        if others.len() >= claim.max_accounts as usize {
            self.drop_candidate(op, record, claim).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Removes `record`'s own entry under `claim` (its candidate bound nothing).
    async fn drop_candidate(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &super::AnchorClaim,
    ) -> Result<(), StoreError> {
        self.claim_script(op, &self.inner.scripts.drop_binding, record, claim)
            .await
    }

    /// After the step that verified `record`: its candidate becomes a confirmed binding (if this
    /// step is lost, readers confirm it when they find the case verified).
    async fn confirm_anchor(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &super::AnchorClaim,
    ) -> Result<(), StoreError> {
        self.claim_script(op, &self.inner.scripts.confirm_binding, record, claim)
            .await
    }

    /// Runs a binding script on `record`'s entry under `claim`.
    async fn claim_script(
        &self,
        op: &'static str,
        script: &Script,
        record: &CaseRecord,
        claim: &super::AnchorClaim,
    ) -> Result<(), StoreError> {
        let key = self.inner.keys.binding(&claim.index);
        self.binding_script(op, script, &key, &record.account_id, &record.id, claim.ttl_seconds)
            .await
    }

    async fn sweep_expired(&self, now_unix: i64) -> Result<u64, StoreError> {
        const OP: &str = "sweep";
        let ttl = self.inner.record_ttl_seconds.to_string();
        let now = now_unix.to_string();
        let mut expired = 0;
        // Entries that stay (not due after all, or still processing) are skipped by offset.
        let mut offset = 0;
        loop {
            let ids = self
                .zrange_upto(OP, self.inner.keys.expiry(), now.clone(), offset)
                .await?;
            let mut done = Vec::new();
            for id in &ids {
                let (old_mac, new_mac) = match self.read_tagged(OP, id).await {
                    Ok(Some((record, mac))) => {
                        let next = mac_after(
                            &self.inner.record_keys.load(),
                            &record,
                            CaseStatus::Expired,
                            None,
                            now_unix,
                        );
                        (mac, next)
                    }
                    // Forgotten meanwhile: nothing left to expire.
                    Ok(None) => {
                        done.push(id.clone());
                        continue;
                    }
                    // A record that fails its check is never rewritten (its data expires by TTL).
                    Err(StoreError::Integrity { .. }) => {
                        offset += 1;
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                let reply = self
                    .case_script(
                        OP,
                        &self.inner.scripts.shred,
                        id,
                        &[
                            b"expire",
                            now.as_bytes(),
                            ttl.as_bytes(),
                            b"",
                            old_mac.as_bytes(),
                            new_mac.as_bytes(),
                            b"",
                        ],
                    )
                    .await?;
                match reply.status.as_str() {
                    "done" => {
                        let record = reply.record(&self.inner.record_keys.load(), OP, id)?;
                        self.after_final(OP, &record).await?;
                        expired += 1;
                        done.push(id.clone());
                    }
                    // Changed between our read and the script: look again next time.
                    "changed" => offset += 1,
                    "later" => {
                        // A stale score: put the entry where the case says it is due.
                        let due = reply.word(OP, 0)?;
                        let _: i64 = self
                            .query(OP, redis::cmd("ZADD").arg(self.inner.keys.expiry()).arg(due).arg(id))
                            .await?;
                        // Now scored after `now`: out of this range, so no offset.
                    }
                    // Still in the range: skip it in the next batch.
                    "keep" => offset += 1,
                    // Final or forgotten: nothing left to expire.
                    _ => done.push(id.clone()),
                }
            }
            self.zrem(OP, self.inner.keys.expiry(), &done).await?;
            if ids.len() < BATCH as usize {
                return Ok(expired);
            }
        }
    }

    async fn forget_records(&self, records_before_unix: i64) -> Result<(), StoreError> {
        const OP: &str = "sweep";
        let before = records_before_unix.to_string();
        let mut offset = 0;
        loop {
            let ids = self
                .zrange_upto(OP, self.inner.keys.records(), format!("({before}"), offset)
                .await?;
            let mut done = Vec::new();
            for id in &ids {
                let reply = self
                    .case_script(OP, &self.inner.scripts.forget, id, &[before.as_bytes()])
                    .await?;
                match reply.status.as_str() {
                    "forgot" => {
                        let account = reply.word(OP, 0)?;
                        let request = reply.word(OP, 1)?;
                        // The idempotency key may be claimed again (only if it still names this case).
                        let mut invocation = self.inner.scripts.delete_if_equal.prepare_invoke();
                        invocation.key(self.inner.keys.idem(&account, &request)).arg(id);
                        let _: i64 = self.eval(OP, &invocation).await?;
                        let _: i64 = self
                            .query(OP, redis::cmd("SREM").arg(self.inner.keys.account(&account)).arg(id))
                            .await?;
                        done.push(id.clone());
                    }
                    "later" => {
                        let updated = reply.word(OP, 0)?;
                        let _: i64 = self
                            .query(
                                OP,
                                redis::cmd("ZADD").arg(self.inner.keys.records()).arg(updated).arg(id),
                            )
                            .await?;
                        // Now scored at or after `before`: out of this range.
                    }
                    "keep" => offset += 1,
                    _ => done.push(id.clone()),
                }
            }
            self.zrem(OP, self.inner.keys.records(), &done).await?;
            if ids.len() < BATCH as usize {
                return Ok(());
            }
        }
    }
}

/// A script reply: a status word, then either a case hash (field/value pairs) or more words.
struct Reply {
    status: String,
    rest: Vec<Vec<u8>>,
}

impl Reply {
    fn parse(op: &'static str, mut raw: Vec<Vec<u8>>) -> Result<Self, StoreError> {
        if raw.is_empty() {
            return Err(corrupt(op, "reply"));
        }
        let status = String::from_utf8(raw.remove(0)).map_err(|_| corrupt(op, "reply"))?;
        Ok(Self { status, rest: raw })
    }

    fn word(&self, op: &'static str, index: usize) -> Result<String, StoreError> {
        self.rest
            .get(index)
            .and_then(|w| String::from_utf8(w.clone()).ok())
            .ok_or_else(|| corrupt(op, "reply"))
    }

    fn record(self, keys: &BlindIndexer, op: &'static str, id: &str) -> Result<CaseRecord, StoreError> {
        decode_record(keys, op, id, self.rest)
    }
}

fn parse_status(s: &str) -> Option<CaseStatus> {
    use CaseStatus::*;
    [Processing, Verified, NotVerified, PendingReview, Expired, Erased]
        .into_iter()
        .find(|status| status.as_str() == s)
}

/// The record's integrity tag (field `mac`): a keyed MAC, under a key the gateway holds and Redis
/// never sees, over the fields an answer is made of — identity, purpose, content fingerprint,
/// status, refusal and the time the status was set. Someone who can write to Redis cannot turn a
/// case into `verified` without it.
fn record_mac(keys: &BlindIndexer, record: &CaseRecord) -> String {
    let status_at = record.status_at_unix.to_string();
    keys.tag(IndexUse::RecordMac, &record_mac_parts(record, &status_at))
}

fn record_mac_parts<'a>(record: &'a CaseRecord, status_at: &'a str) -> [&'a [u8]; 11] {
    [
        b"idgate.v1.case",
        RECORD_VERSION.as_bytes(),
        record.id.as_bytes(),
        record.account_id.as_bytes(),
        record.request_id.as_bytes(),
        record.principal.as_bytes(),
        record.purpose.as_str().as_bytes(),
        record.fingerprint.as_bytes(),
        record.status.as_str().as_bytes(),
        record.refusal.as_deref().unwrap_or("").as_bytes(),
        status_at.as_bytes(),
    ]
}

/// The tag `record` would carry with `status` / `refusal` set at `now_unix` (what a script is about
/// to write).
fn mac_after(
    keys: &BlindIndexer,
    record: &CaseRecord,
    status: CaseStatus,
    refusal: Option<&str>,
    now_unix: i64,
) -> String {
    let mut next = record.clone();
    next.status = status;
    next.refusal = refusal.map(str::to_owned);
    next.status_at_unix = now_unix;
    record_mac(keys, &next)
}

/// The case hash of a record (see the module docs), as field/value pairs, with its integrity tag.
pub(crate) fn encode_record(keys: &BlindIndexer, record: &CaseRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("v", RECORD_VERSION.to_owned()),
        ("id", record.id.clone()),
        ("account", record.account_id.clone()),
        ("request", record.request_id.clone()),
        ("principal", record.principal.clone()),
        ("purpose", record.purpose.as_str().to_owned()),
        ("status", record.status.as_str().to_owned()),
        ("created", record.created_at_unix.to_string()),
        ("updated", record.updated_at_unix.to_string()),
        ("lease", record.lease_until_unix.to_string()),
        ("fp", record.fingerprint.clone()),
        ("status_at", record.status_at_unix.to_string()),
        ("mac", record_mac(keys, record)),
    ];
    if let Some(provider) = &record.provider {
        fields.push(("provider", provider.clone()));
    }
    if let Some(refusal) = &record.refusal {
        fields.push(("refusal", refusal.clone()));
    }
    if let Some(at) = record.pii_expires_at_unix {
        fields.push(("pii_exp", at.to_string()));
    }
    if let Some(index) = &record.anchor_index {
        fields.push(("anchor", index.clone()));
    }
    if record.erase_requested {
        fields.push(("erase", "1".to_owned()));
    }
    if let Some(why) = &record.review_reason {
        fields.push(("why", why.clone()));
    }
    fields
}

/// Reads a case hash given as `HGETALL` pairs and checks its integrity tag. `id` is the case the key
/// was built from. Returns the record and its stored tag (for compare-and-set by the scripts).
fn decode_record_tagged(
    keys: &BlindIndexer,
    op: &'static str,
    id: &str,
    pairs: Vec<Vec<u8>>,
) -> Result<(CaseRecord, String), StoreError> {
    if !pairs.len().is_multiple_of(2) {
        return Err(corrupt(op, "case"));
    }
    let mut fields: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(pairs.len() / 2);
    let mut pairs = pairs.into_iter();
    while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
        fields.insert(name, value);
    }
    let text = |field: &'static str| -> Result<Option<String>, StoreError> {
        fields
            .get(field.as_bytes())
            .map(|v| String::from_utf8(v.clone()).map_err(|_| corrupt(op, field)))
            .transpose()
    };
    let required = |field: &'static str| text(field)?.ok_or_else(|| corrupt(op, field));
    let number = |field: &'static str| -> Result<Option<i64>, StoreError> {
        text(field)?
            .map(|v| v.parse::<i64>().map_err(|_| corrupt(op, field)))
            .transpose()
    };
    let required_number = |field: &'static str| number(field)?.ok_or_else(|| corrupt(op, field));
    let integrity = || {
        tracing::warn!(op, "case record failed its integrity check");
        StoreError::Integrity { case_id: id.to_owned() }
    };

    // A record of another version (or none) carries no valid tag: never trusted.
    if text("v")?.as_deref() != Some(RECORD_VERSION) {
        return Err(integrity());
    }
    let stored_id = required("id")?;
    if stored_id != id {
        return Err(corrupt(op, "id"));
    }
    let record = CaseRecord {
        id: stored_id,
        account_id: required("account")?,
        request_id: required("request")?,
        principal: required("principal")?,
        purpose: Purpose::from_str_name(&required("purpose")?).ok_or_else(integrity)?,
        status: parse_status(&required("status")?).ok_or_else(integrity)?,
        refusal: text("refusal")?,
        provider: text("provider")?,
        created_at_unix: required_number("created")?,
        updated_at_unix: required_number("updated")?,
        lease_until_unix: required_number("lease")?,
        pii_expires_at_unix: number("pii_exp")?,
        fingerprint: required("fp")?,
        status_at_unix: required_number("status_at")?,
        anchor_index: text("anchor")?,
        erase_requested: text("erase")?.as_deref() == Some("1"),
        review_reason: text("why")?,
    };
    let mac = text("mac")?.ok_or_else(integrity)?;
    let status_at = record.status_at_unix.to_string();
    if !keys.tag_matches(IndexUse::RecordMac, &mac, &record_mac_parts(&record, &status_at)) {
        return Err(integrity());
    }
    Ok((record, mac))
}

/// [`decode_record_tagged`] without the tag.
pub(crate) fn decode_record(
    keys: &BlindIndexer,
    op: &'static str,
    id: &str,
    pairs: Vec<Vec<u8>>,
) -> Result<CaseRecord, StoreError> {
    decode_record_tagged(keys, op, id, pairs).map(|(record, _)| record)
}

/// `0x01 ‖ u16 BE length of the KEK id ‖ KEK id ‖ wrapped bytes`.
pub(crate) fn encode_wrapped_key(key: &WrappedKey) -> Result<Vec<u8>, StoreError> {
    let id = key.kek_id.as_bytes();
    let len = u16::try_from(id.len()).map_err(|_| corrupt("encode", "kek_id"))?;
    let mut out = Vec::with_capacity(3 + id.len() + key.bytes.len());
    out.push(WRAPPED_KEY_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&key.bytes);
    Ok(out)
}

pub(crate) fn decode_wrapped_key(op: &'static str, bytes: &[u8]) -> Result<WrappedKey, StoreError> {
    let bad = || corrupt(op, "pii:key");
    let (&version, rest) = bytes.split_first().ok_or_else(bad)?;
    if version != WRAPPED_KEY_VERSION || rest.len() < 2 {
        return Err(bad());
    }
    let (len, rest) = rest.split_at(2);
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if rest.len() < len {
        return Err(bad());
    }
    let (id, wrapped) = rest.split_at(len);
    Ok(WrappedKey {
        kek_id: String::from_utf8(id.to_vec()).map_err(|_| bad())?,
        bytes: wrapped.to_vec(),
    })
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        const OP: &str = "begin";
        let keys = &self.inner.keys;
        let idem = keys.idem(&record.account_id, &record.request_id);
        // Step 1 (idempotency slot): claim the request for our id, or learn whose it is. The key
        // can vanish between SET NX and GET (TTL, forgetting): then try again, a bounded number of
        // times.
        let mut claimed_id = None;
        for _ in 0..3 {
            let set: Option<String> = self
                .query(
                    OP,
                    redis::cmd("SET")
                        .arg(&idem)
                        .arg(&record.id)
                        .arg("NX")
                        .arg("EX")
                        .arg(self.inner.record_ttl_seconds),
                )
                .await?;
            if set.is_some() {
                claimed_id = Some(record.id.clone());
                break;
            }
            let holder: Option<Vec<u8>> = self.query(OP, redis::cmd("GET").arg(&idem)).await?;
            if let Some(holder) = holder {
                claimed_id = Some(String::from_utf8(holder).map_err(|_| corrupt(OP, "idem"))?);
                break;
            }
        }
        let Some(id) = claimed_id else {
            tracing::warn!(op = OP, "idempotency key kept vanishing");
            return Err(StoreError::Unavailable);
        };
        // Index first, so that erasure can never miss the case (a stale entry is harmless).
        self.add_to_set(OP, keys.account(&record.account_id), &id).await?;
        // Step 2 (case slot), one script whoever gets here: creates the case if absent (we won step
        // 1, or the winner died before creating it), takes over a Processing case whose lease ran
        // out, or reports the case. Exactly one concurrent caller sees it absent or expired.
        let mut fresh = record;
        fresh.id.clone_from(&id);
        let lease = fresh.lease_until_unix.to_string();
        let now = now_unix.to_string();
        let ttl = self.inner.record_ttl_seconds.to_string();
        let mut invocation = self.inner.scripts.claim.prepare_invoke();
        invocation
            .key(keys.case(&id))
            .arg(&now)
            .arg(&lease)
            .arg(&ttl)
            .arg(&fresh.fingerprint);
        for (field, value) in encode_record(&self.inner.record_keys.load(), &fresh) {
            invocation.arg(field).arg(value);
        }
        let raw: Vec<Vec<u8>> = self.eval(OP, &invocation).await?;
        let reply = Reply::parse(OP, raw)?;
        let started = match reply.status.as_str() {
            "started" => true,
            "existing" => false,
            _ => return Err(corrupt(OP, "reply")),
        };
        let case = reply.record(&self.inner.record_keys.load(), OP, &id)?;
        // The case under this id must be this request's (a clash of random ids, or a tampered
        // idempotency key, must not hand out another request's case).
        if case.account_id != fresh.account_id || case.request_id != fresh.request_id {
            tracing::warn!(op = OP, "case id already used by another request");
            return Err(StoreError::Conflict);
        }
        Ok(if started {
            Begin::Started(case)
        } else {
            Begin::Existing(case)
        })
    }

    async fn find(&self, account_id: &str, request_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        const OP: &str = "find";
        let holder: Option<Vec<u8>> = self
            .query(OP, redis::cmd("GET").arg(self.inner.keys.idem(account_id, request_id)))
            .await?;
        let Some(holder) = holder else { return Ok(None) };
        let id = String::from_utf8(holder).map_err(|_| corrupt(OP, "idem"))?;
        let Some(case) = self.get(&id).await? else {
            // Claimed but not created yet (or forgotten): `begin` settles it.
            return Ok(None);
        };
        if case.account_id != account_id || case.request_id != request_id {
            tracing::warn!(op = OP, "idempotency key names another request's case");
            return Err(StoreError::Conflict);
        }
        Ok(Some(case))
    }

    async fn finish(&self, id: &str, finish: Finish, now_unix: i64) -> Result<CaseRecord, StoreError> {
        const OP: &str = "finish";
        if !CaseStatus::Processing.may_become(finish.status) {
            return Err(StoreError::Conflict);
        }
        let (current, old_mac) = self.read_tagged(OP, id).await?.ok_or(StoreError::NotFound)?;
        if current.status != CaseStatus::Processing {
            return Err(StoreError::Conflict);
        }
        let mut status = finish.status;
        let mut refusal = finish.refusal;
        // The anchor limit is judged before the step that verifies the case; the binding counts only
        // once that step has made the case `verified` (see `bound_accounts`).
        let mut anchor = None;
        if status == CaseStatus::Verified
            && let Some(claim) = &finish.anchor
        {
            if self
                .anchor_allows(OP, &current, claim, current.lease_until_unix, now_unix)
                .await?
            {
                anchor = Some(claim.clone());
            } else {
                status = CaseStatus::NotVerified;
                refusal = Some(super::ID_ACCOUNT_LIMIT.to_owned());
            }
        }
        self.step("finish:before-script");
        // Personal data is kept for a pending review only.
        let pii = match (status, finish.pii) {
            (CaseStatus::PendingReview, Some((pii, expires_at))) => Some((pii, expires_at)),
            _ => None,
        };
        let (expires_at, ttl_ms, key, body) = match &pii {
            Some((pii, expires_at)) => {
                let ttl_ms = expires_at.saturating_sub(now_unix).saturating_mul(1000);
                // Already due: keep nothing; the case still records the due time so that a sweep
                // expires it.
                let ttl_ms = if ttl_ms > 0 { ttl_ms.to_string() } else { String::new() };
                (
                    expires_at.to_string(),
                    ttl_ms,
                    encode_wrapped_key(&pii.wrapped_key)?,
                    pii.body.to_bytes(),
                )
            }
            None => (String::new(), String::new(), Vec::new(), Vec::new()),
        };
        if let Some((_, at)) = &pii {
            // The status index first: a gateway that dies right after the case script leaves a
            // pending case the sweep still finds (to queue it, and to expire it).
            let _: i64 = self
                .query(OP, redis::cmd("ZADD").arg(self.inner.keys.expiry()).arg(*at).arg(id))
                .await?;
        }
        let keys = &self.inner.record_keys.load();
        let new_mac = mac_after(keys, &current, status, refusal.as_deref(), now_unix);
        let erased_mac = mac_after(keys, &current, CaseStatus::Erased, None, now_unix);
        let anchor_index = anchor.as_ref().map(|c| c.index.as_str()).unwrap_or("");
        let review_reason = match status {
            CaseStatus::PendingReview => finish.review_reason.as_deref().unwrap_or(""),
            _ => "",
        };
        let reply = self
            .case_script(
                OP,
                &self.inner.scripts.finish,
                id,
                &[
                    status.as_str().as_bytes(),
                    now_unix.to_string().as_bytes(),
                    self.inner.record_ttl_seconds.to_string().as_bytes(),
                    if status.is_final() { b"1" } else { b"0" },
                    finish.provider.as_deref().unwrap_or("").as_bytes(),
                    refusal.as_deref().unwrap_or("").as_bytes(),
                    expires_at.as_bytes(),
                    ttl_ms.as_bytes(),
                    &key,
                    &body,
                    old_mac.as_bytes(),
                    new_mac.as_bytes(),
                    erased_mac.as_bytes(),
                    anchor_index.as_bytes(),
                    review_reason.as_bytes(),
                ],
            )
            .await?;
        match reply.status.as_str() {
            "not_found" => return Err(StoreError::NotFound),
            "conflict" => return Err(StoreError::Conflict),
            "ok" | "erased" => {}
            _ => return Err(corrupt(OP, "reply")),
        }
        let record = reply.record(keys, OP, id)?;
        self.step("finish:after-script");
        if let Some(claim) = &anchor
            && record.status == CaseStatus::Verified
        {
            self.confirm_anchor(OP, &record, claim).await?;
        }
        // Only a case whose data is held gets a review hash (see FINISH) and so a queue entry.
        if record.status == CaseStatus::PendingReview && !ttl_ms.is_empty() {
            self.enqueue_review(OP, id).await?;
        }
        if record.status.is_final() {
            self.after_final(OP, &record).await?;
        }
        Ok(record)
    }

    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        const OP: &str = "get";
        let pairs: Vec<Vec<u8>> = self
            .query(OP, redis::cmd("HGETALL").arg(self.inner.keys.case(id)))
            .await?;
        if pairs.is_empty() {
            return Ok(None);
        }
        // A pending case past its due time is reported as it is: expiring is the sweep's (or the
        // use case's) decision, on the caller's clock.
        decode_record(&self.inner.record_keys.load(), OP, id, pairs).map(Some)
    }

    async fn watch(&self, id: &str) -> Result<Option<BoxStream<'static, CaseRecord>>, StoreError> {
        let Some(first) = self.get(id).await? else {
            return Ok(None);
        };
        // Polling keeps this the same on standalone and Cluster and needs no server configuration
        // (keyspace notifications are off by default). State: last record sent, failures in a row.
        let store = self.clone();
        let id = id.to_owned();
        let changes = futures_util::stream::unfold(
            (store, id, first.clone(), 0u32),
            |(store, id, last, mut failures)| async move {
                if last.status.is_final() {
                    return None;
                }
                loop {
                    tokio::time::sleep(WATCH_POLL).await;
                    match store.get(&id).await {
                        Ok(Some(record)) if record != last => {
                            return Some((record.clone(), (store, id, record, 0)));
                        }
                        Ok(Some(_)) => failures = 0,
                        // Forgotten: nothing more will happen to it.
                        Ok(None) => return None,
                        Err(_) => {
                            failures += 1;
                            if failures >= WATCH_MAX_FAILURES {
                                tracing::warn!(op = "watch", "watch ended: redis unavailable");
                                return None;
                            }
                        }
                    }
                }
            },
        );
        Ok(Some(
            futures_util::stream::once(async move { first }).chain(changes).boxed(),
        ))
    }

    async fn sealed_pii(&self, id: &str) -> Result<Option<SealedPii>, StoreError> {
        const OP: &str = "sealed_pii";
        let keys = &self.inner.keys;
        // Both keys share the case's slot, so one MGET reads them together.
        let (key, body): (Option<Vec<u8>>, Option<Vec<u8>>) = self
            .query(OP, redis::cmd("MGET").arg(keys.pii_key(id)).arg(keys.pii_body(id)))
            .await?;
        match (key, body) {
            (Some(key), Some(body)) => Ok(Some(SealedPii {
                wrapped_key: decode_wrapped_key(OP, &key)?,
                body: Body::from_bytes(&body).map_err(|_| corrupt(OP, "pii:body"))?,
            })),
            // Half gone means being shredded or expiring: the data is not usable.
            _ => Ok(None),
        }
    }

    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError> {
        // Audit trimming, rate windows and anchor bindings need nothing here: Redis expires them.
        let expired = self.sweep_expired(now_unix).await?;
        self.forget_records(records_before_unix).await?;
        self.requeue_orphans(now_unix).await?;
        Ok(expired)
    }

    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        const OP: &str = "erase_account";
        let keys = &self.inner.keys;
        let mut ids: Vec<String> = self
            .query(OP, redis::cmd("SMEMBERS").arg(keys.account(account_id)))
            .await?;
        ids.sort();
        let now = now_unix.to_string();
        let ttl = self.inner.record_ttl_seconds.to_string();
        let principal_arg = principal.unwrap_or("");
        let mut erased = Vec::new();
        let mut settled = Vec::new();
        for id in ids {
            let (record, old_mac) = match self.read_tagged(OP, &id).await {
                Ok(Some(found)) => found,
                // Not created yet (its `begin` may be on the way): stays listed.
                Ok(None) => continue,
                Err(StoreError::Integrity { .. }) => {
                    // Its status cannot be trusted, but erasure must be complete: its sealed data
                    // goes (crypto-shredding), whatever the record claims.
                    tracing::warn!(op = OP, verification_id = %id, "case record failed its integrity check; shredding its data");
                    let _: i64 = self
                        .query(
                            OP,
                            redis::cmd("DEL")
                                .arg(keys.pii_key(&id))
                                .arg(keys.pii_body(&id))
                                .arg(keys.review(&id)),
                        )
                        .await?;
                    continue;
                }
                Err(other) => return Err(other),
            };
            if record.account_id == account_id
                && principal.is_none_or(|p| p == record.principal)
                && let Some(index) = &record.anchor_index
            {
                // The binding this case earned goes with the account.
                self.binding_script(
                    OP,
                    &self.inner.scripts.drop_binding,
                    &keys.binding(index),
                    account_id,
                    "",
                    1,
                )
                .await?;
            }
            let new_mac = mac_after(
                &self.inner.record_keys.load(),
                &record,
                CaseStatus::Erased,
                None,
                now_unix,
            );
            let reply = self
                .case_script(
                    OP,
                    &self.inner.scripts.shred,
                    &id,
                    &[
                        b"erase",
                        now.as_bytes(),
                        ttl.as_bytes(),
                        account_id.as_bytes(),
                        old_mac.as_bytes(),
                        new_mac.as_bytes(),
                        principal_arg.as_bytes(),
                    ],
                )
                .await?;
            match reply.status.as_str() {
                "done" => {
                    let record = reply.record(&self.inner.record_keys.load(), OP, &id)?;
                    self.after_final(OP, &record).await?;
                    settled.push(id.clone());
                    erased.push(id);
                }
                // Still processing: it ends `erased` when its provider phase finishes.
                "marked" => erased.push(id),
                // A final case never becomes pending again; another account's (the index is not
                // trusted) is not this one's. Another principal's case stays listed for an operator.
                "final" | "other_account" => settled.push(id),
                _ => {}
            }
        }
        if !settled.is_empty() {
            let _: i64 = self
                .query(OP, redis::cmd("SREM").arg(keys.account(account_id)).arg(&settled))
                .await?;
        }
        self.zrem(OP, keys.expiry(), &erased).await?;
        Ok(erased)
    }

    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError> {
        let retention = i64::try_from(retention_seconds).unwrap_or(i64::MAX);
        let min_ms = event.at_unix.saturating_sub(retention).saturating_mul(1000).max(0);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.inner.keys.audit())
            .arg("MINID")
            .arg("~")
            .arg(min_ms)
            .arg("*")
            .arg("at")
            .arg(event.at_unix)
            .arg("actor")
            .arg(&event.actor)
            .arg("action")
            .arg(&event.action)
            .arg("detail")
            .arg(&event.detail);
        if let Some(case_id) = &event.case_id {
            cmd.arg("case").arg(case_id);
        }
        let _: String = self.query("append_audit", &cmd).await?;
        Ok(())
    }

    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError> {
        const OP: &str = "audit_events";
        let start = match after {
            // Only a stream id is a cursor; anything else is unknown, as in the embedded store.
            Some(cursor) if is_stream_id(cursor) => format!("({cursor}"),
            Some(_) => return Err(StoreError::NotFound),
            None => "-".to_owned(),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, Vec<Vec<u8>>)> = self
            .query(
                OP,
                redis::cmd("XRANGE")
                    .arg(self.inner.keys.audit())
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        entries
            .into_iter()
            .map(|(id, fields)| Ok((id, decode_audit(fields)?)))
            .collect()
    }

    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let window_seconds = window_seconds.max(1);
        let window = i64::try_from(window_seconds).unwrap_or(i64::MAX);
        let start = now_unix - now_unix.rem_euclid(window);
        let mut invocation = self.inner.scripts.count.prepare_invoke();
        invocation
            .key(self.inner.keys.window(key, window_seconds, start))
            .arg(window_seconds.saturating_add(WINDOW_MARGIN_SECONDS));
        self.eval("count_in_window", &invocation).await
    }

    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let window_seconds = window_seconds.max(1);
        let window = i64::try_from(window_seconds).unwrap_or(i64::MAX);
        let start = now_unix - now_unix.rem_euclid(window);
        let count: Option<u64> = self
            .query(
                "peek_window",
                redis::cmd("GET").arg(self.inner.keys.window(key, window_seconds, start)),
            )
            .await?;
        Ok(count.unwrap_or(0))
    }

    async fn anchor_accounts(&self, indexes: &[String], now_unix: i64) -> Result<Vec<String>, StoreError> {
        // A read: a confirmation on the way only writes what a verified case already earned.
        let mut accounts = self
            .bound_accounts("anchor_accounts", indexes, None, 0, now_unix)
            .await?;
        accounts.sort();
        Ok(accounts)
    }

    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, WrappedKey)>, StoreError> {
        const OP: &str = "wrapped_keys_not_under";
        let keys = &self.inner.keys;
        let mut found = Vec::new();
        // Every case holding personal data is in the expiry index (stale entries are skipped).
        let mut offset = 0;
        while found.len() < limit {
            let ids: Vec<String> = self
                .query(
                    OP,
                    redis::cmd("ZRANGE")
                        .arg(keys.expiry())
                        .arg(offset)
                        .arg(offset + BATCH - 1),
                )
                .await?;
            for id in &ids {
                let key: Option<Vec<u8>> = self.query(OP, redis::cmd("GET").arg(keys.pii_key(id))).await?;
                if let Some(key) = key {
                    let key = decode_wrapped_key(OP, &key)?;
                    if key.kek_id != kek_id {
                        found.push((id.clone(), key));
                        if found.len() == limit {
                            break;
                        }
                    }
                }
            }
            if ids.len() < BATCH as usize {
                break;
            }
            offset += BATCH;
        }
        Ok(found)
    }

    async fn replace_wrapped_key(&self, case_id: &str, old: &WrappedKey, new: WrappedKey) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let mut invocation = self.inner.scripts.replace_key.prepare_invoke();
        invocation
            .key(keys.pii_key(case_id))
            .key(keys.pii_body(case_id))
            .arg(encode_wrapped_key(old)?)
            .arg(encode_wrapped_key(&new)?);
        let replaced: i64 = self.eval("replace_wrapped_key", &invocation).await?;
        Ok(replaced == 1)
    }
}

/// `<ms>-<seq>` or `<ms>`, digits only: what `XADD *` hands out.
fn is_stream_id(s: &str) -> bool {
    let mut parts = s.splitn(2, '-');
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
}

pub(crate) fn decode_audit(fields: Vec<Vec<u8>>) -> Result<AuditEvent, StoreError> {
    const OP: &str = "audit_events";
    if !fields.len().is_multiple_of(2) {
        return Err(corrupt(OP, "audit"));
    }
    let mut map: HashMap<Vec<u8>, String> = HashMap::with_capacity(fields.len() / 2);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let value = String::from_utf8(value).map_err(|_| corrupt(OP, "audit"))?;
        map.insert(name, value);
    }
    let mut take = |field: &'static str| map.remove(field.as_bytes());
    let required = |value: Option<String>, field: &'static str| value.ok_or_else(|| corrupt(OP, field));
    let at = required(take("at"), "at")?;
    Ok(AuditEvent {
        at_unix: at.parse().map_err(|_| corrupt(OP, "at"))?,
        actor: required(take("actor"), "actor")?,
        action: required(take("action"), "action")?,
        case_id: take("case"),
        detail: required(take("detail"), "detail")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CaseRecord {
        CaseRecord {
            id: "vf_1".into(),
            account_id: "acct".into(),
            request_id: "r".into(),
            principal: "onboarding".into(),
            purpose: Purpose::Radio,
            status: CaseStatus::PendingReview,
            refusal: None,
            provider: Some("p".into()),
            created_at_unix: 1,
            updated_at_unix: 2,
            lease_until_unix: 3,
            pii_expires_at_unix: Some(4),
            fingerprint: "bk-1:00ff".into(),
            status_at_unix: 2,
            anchor_index: None,
            erase_requested: false,
            review_reason: Some("SIMILARITY_GREY_ZONE".into()),
        }
    }

    fn keys() -> BlindIndexer {
        BlindIndexer::new("bk-1".into(), &crate::crypto::SecretKey32::from_bytes([9; 32]))
    }

    fn pairs(record: &CaseRecord) -> Vec<Vec<u8>> {
        encode_record(&keys(), record)
            .into_iter()
            .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.into_bytes()])
            .collect()
    }

    #[test]
    fn records_round_trip() {
        let r = record();
        assert_eq!(decode_record(&keys(), "t", "vf_1", pairs(&r)).unwrap(), r);
        let mut none = r.clone();
        none.provider = None;
        none.pii_expires_at_unix = None;
        none.refusal = Some("FACE_IMAGE_UNUSABLE".into());
        assert_eq!(decode_record(&keys(), "t", "vf_1", pairs(&none)).unwrap(), none);
        for status in [
            CaseStatus::Processing,
            CaseStatus::Verified,
            CaseStatus::NotVerified,
            CaseStatus::PendingReview,
            CaseStatus::Expired,
            CaseStatus::Erased,
        ] {
            assert_eq!(parse_status(status.as_str()), Some(status));
        }
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = pairs(&record());
        assert!(decode_record(&keys(), "t", "vf_2", good.clone()).is_err(), "other id");
        for i in (1..good.len()).step_by(2) {
            let mut bad = good.clone();
            bad[i] = vec![0xff, b'x'];
            assert!(decode_record(&keys(), "t", "vf_1", bad).is_err());
        }
        let mut odd = good.clone();
        odd.pop();
        assert!(decode_record(&keys(), "t", "vf_1", odd).is_err());
        assert!(decode_record(&keys(), "t", "vf_1", Vec::new()).is_err());
    }

    #[test]
    fn an_edited_record_fails_its_integrity_check_and_old_keys_still_verify() {
        let mut r = record();
        r.status = CaseStatus::NotVerified;
        let good = pairs(&r);
        // Someone with write access flips the status (or the refusal, or the time) in the store.
        for (field, value) in [
            ("status", "verified"),
            ("refusal", "X"),
            ("status_at", "9"),
            ("fp", "bk-1:01"),
        ] {
            let mut edited = good.clone();
            match edited.iter().position(|v| v.as_slice() == field.as_bytes()) {
                Some(at) => edited[at + 1] = value.as_bytes().to_vec(),
                None => edited.extend([field.as_bytes().to_vec(), value.as_bytes().to_vec()]),
            }
            assert!(
                matches!(
                    decode_record(&keys(), "t", "vf_1", edited),
                    Err(StoreError::Integrity { ref case_id }) if case_id == "vf_1"
                ),
                "{field}"
            );
        }
        // A record of the previous encoding has no tag: refused, never trusted.
        let mut v1 = good.clone();
        let at = v1.iter().position(|v| v.as_slice() == b"v").unwrap();
        v1[at + 1] = b"1".to_vec();
        assert!(matches!(
            decode_record(&keys(), "t", "vf_1", v1),
            Err(StoreError::Integrity { .. })
        ));
        // After a rotation the old key still verifies old records.
        let rotated = BlindIndexer::ring(vec![
            crate::crypto::blind_index::BlindKey {
                id: "bk-1".into(),
                version: 1,
                created_at_unix: 1,
                root: crate::crypto::SecretKey32::from_bytes([9; 32]),
            },
            crate::crypto::blind_index::BlindKey {
                id: "bk-2".into(),
                version: 2,
                created_at_unix: 2,
                root: crate::crypto::SecretKey32::from_bytes([10; 32]),
            },
        ])
        .unwrap();
        assert_eq!(decode_record(&rotated, "t", "vf_1", good).unwrap(), r);
    }

    #[test]
    fn wrapped_keys_round_trip_and_reject_garbage() {
        let key = WrappedKey {
            kek_id: "kek-1".into(),
            bytes: vec![7; 72],
        };
        let bytes = encode_wrapped_key(&key).unwrap();
        assert_eq!(decode_wrapped_key("t", &bytes).unwrap(), key);
        for cut in 0..8 {
            assert!(decode_wrapped_key("t", &bytes[..cut]).is_err());
        }
        assert!(decode_wrapped_key("t", &[2, 0, 0]).is_err());
    }

    #[test]
    fn stream_ids() {
        assert!(is_stream_id("1795000000000-0"));
        assert!(is_stream_id("17"));
        for bad in ["", "-", "1-", "a-1", "1-2-3", "(1", "+"] {
            assert!(!is_stream_id(bad), "{bad:?}");
        }
    }
}
