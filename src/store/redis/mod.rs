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
//! | `P:{<case>}:pii:key` | string | the wrapped data key of the identity material: `0x01 ‖ u16 BE len ‖ kek id ‖ wrapped bytes` | when the personal data is due |
//! | `P:{<case>}:pii:body` | string | the sealed identity material ([`Body::to_bytes`](crate::crypto::envelope::Body::to_bytes); in a record written before faces were kept apart, the face too) | when the personal data is due |
//! | `P:{<case>}:face:key` | string | the wrapped data key of the face (its own data key, same encoding) | when the personal data is due; deleted with the case's end, or alone when biometric consent is withdrawn |
//! | `P:{<case>}:face:body` | string | the sealed face image | as `face:key` |
//! | `P:idem:{<account>}:<request>` | string | the case id holding this request | record TTL, refreshed at a final status |
//! | `P:acct:{<account>}` | set | ids of the account's cases (erasure index) | record TTL, refreshed on each new case |
//! | `P:gone:{<account>}` | hash | the account's tombstones (`store::retention::Tombstone`): `erase` / `nobio` (any principal) or `erase:<principal>` / `nobio:<principal>` → unix time of the erasure / withdrawal; read by `begin` in the step that lists a case | `TOMBSTONE_SECONDS` after the last one |
//! | `P:{<case>}:gone` | hash | tombstones (same fields) → account, left by an erasure or withdrawal that found the case listed but not created yet; its creation honours them and deletes the hash | record TTL |
//! | `P:expiry` | zset | case id → `pii_expires_at_unix` (sweep index, re-wrapping index) | — (entries removed by `sweep`) |
//! | `P:records` | zset | final case id → `updated_at_unix` (index for forgetting old records) | — (entries removed by `sweep`) |
//! | `P:audit` | stream | audit events; the event id is the stream id | trimmed with `MINID ~` on append |
//! | `P:rl:{<key>}:<window secs>:<window start>` | string | a rate-window counter | window length + 60 s |
//! | `P:bind:{<id index>}` | hash | account → `v:<case>` (bound by that verified case) or `c:<case>:<until>` (a candidate written just before the step that would verify the case; it binds only once that case is `verified`, counts while the case is in flight, and is dropped otherwise) | `ttl_seconds` after the last change |
//! | `P:{<case>}:review` | hash | a case in the review queue (fields below); the truth about its lease | with the personal data; deleted when the case ends |
//! | `P:review:queue` | stream + group `reviewers` | one entry `case=<id>` per queued case; the group's pending entries are the leases (see `review.rs`) | entries deleted when their case ends (or by the next claim that meets them) |
//! | `P:review:waiting` | zset | anchor case id → `pii_expires_at_unix`: pending anchor cases waiting out of the queue for their supplement (so that a claimer without supplement gating can take them back; see `review.rs`) | — (entries removed when queued again, and by `sweep` once due) |
//! | `P:review:leases` | zset | case id → lease end: the cases handed to reviewers (an index for `queue_stats`; the review hash is the truth) | — (entries removed on release and decision, and by `queue_stats` once ended) |
//! | `P:review:skip:{<principal>}` | set | `a:<entry>` (the reviewer approved that queue entry's case) and `c:<entry>` (they claimed it: not theirs again under four-eyes): entries their claims pass over without a script (see `review.rs`) | record TTL, refreshed on each addition (members are also removed when approvals are voided, and by claims once their entry left the queue) |
//! | `P:reviewer:{<principal>}` | string | a reviewer's X25519 public key (32 bytes) | — (replaced on registration) |
//!
//! Case hash fields: `v` (encoding version, `2`), `id`, `account`, `request`, `principal`, `purpose`
//! ([`Purpose::as_str`](crate::domain::Purpose::as_str)), `status` ([`CaseStatus::as_str`](crate::store::CaseStatus::as_str)), `created`, `updated`, `lease`,
//! `status_at` (decimal unix seconds), `fp` (the keyed content fingerprint), `mac` (the integrity
//! tag, see `record.rs`), and when present `provider`, `refusal`, `pii_exp`, `anchor` (the blind
//! index a verified anchor case bound), `erase` (`1`: erasure arrived while processing), `nobio` (`1`:
//! the biometric consent was withdrawn while processing; no face is kept), `why` (a
//! review reason code: why the case went to review). An absent
//! optional field is `None`. A record whose tag does not verify is [`StoreError::Integrity`].
//!
//! Review hash fields: `queued` (unix seconds, caller's clock), `entry` (its queue stream id), `holder`,
//! `until`, `leased` (the lease: reviewer, end, start), `claimed`, `approvals`, `supplements` (JSON arrays of
//! principals / supplement request ids), `supplement` (`1` once the supplement is complete), `waiting`
//! (`docs` or `anchor`: out of the queue until the supplement completes it). No personal data.
//!
//! The indexes live on other slots than the cases they point to, so they are updated in separate
//! commands and may be stale: every reader of an index re-checks the case inside the case's script.
//! The account index is written *before* the case (so erasure can never miss a case), and so is the
//! expiry zset entry of a case about to become pending review: it is the status index by which the
//! sweep finds such a case even if the gateway dies right after the case script — to queue it (the
//! queue entry comes after the script) and to expire it. The records zset comes after the case
//! script (a missed entry only delays forgetting, which the record's own TTL bounds).
//!
//! # Files
//!
//! This file holds the connection, the key names and what every concern shares (script replies, the
//! index updates after a final status). Each storage interface is implemented in the file of its
//! name — `cases.rs`, `retention.rs`, `audit.rs`, `limits.rs`, `keys.rs`, `review.rs` — with its Lua
//! scripts beside it (`<file>_<script>.lua`, loaded with `include_str!`; each starts with its `KEYS`,
//! `ARGV` and replies). Each script touches the keys of one case (or one other key) only, so it runs
//! on one Cluster slot and is atomic; its reply starts with a status word, and a case script then
//! appends the case hash (`HGETALL`). The case hash and wrapped-key encodings are in `record.rs`.
//!
//! # Eviction
//!
//! Redis must run with `maxmemory-policy noeviction`: with any other policy it may drop keys under
//! memory pressure (a pending case's sealed data, a binding), and the rules above no longer hold.
//! Connecting reads the policy and refuses any other; where it cannot be read (`CONFIG` not allowed
//! to the gateway's ACL user) it warns and goes on. A pending anchor case found without its sealed
//! data is never approved (the review use case refuses: its anchor limit could not be applied).
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
//! Redis returns (a malformed value is [`StoreError::Unavailable`] with a warning naming the field;
//! the sweep and erasure skip such a case record instead, see `retention.rs`);
//! wait on a dead Redis longer than the response timeout.

mod access;
pub use access::{RedisAccess, RedisTls};
pub(crate) mod audit;
mod cases;
mod keys;
mod limits;
pub use limits::WINDOW_MARGIN_SECONDS;
pub(crate) mod record;
mod retention;
pub(crate) mod review;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Script, ScriptInvocation, Value};

use self::record::{decode_record, decode_record_tagged};
use super::{CaseRecord, PiiPart, StoreError};
use crate::crypto::blind_index::BlindIndexer;
use crate::live::Live;

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
    /// The ACL login and the TLS material of `rediss://` URLs.
    pub access: RedisAccess,
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
            access: RedisAccess::default(),
        }
    }
}

/// Index entries handled per round trip by `sweep` and the re-wrapping scan.
const BATCH: isize = 256;

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
    fn face_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:face:key", self.prefix)
    }
    fn face_body(&self, id: &str) -> String {
        format!("{}:{{{id}}}:face:body", self.prefix)
    }
    /// The wrapped-key and body keys of one sealed part of a case.
    fn part(&self, id: &str, part: PiiPart) -> (String, String) {
        match part {
            PiiPart::Identity => (self.pii_key(id), self.pii_body(id)),
            PiiPart::Face => (self.face_key(id), self.face_body(id)),
        }
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
    fn review_waiting(&self) -> String {
        format!("{}:review:waiting", self.prefix)
    }
    fn review_leases(&self) -> String {
        format!("{}:review:leases", self.prefix)
    }
    /// The queue entries a claim by `principal` passes over (see `review.rs`).
    fn review_skip(&self, principal: &str) -> String {
        format!("{}:review:skip:{{{principal}}}", self.prefix)
    }
    fn reviewer(&self, principal: &str) -> String {
        format!("{}:reviewer:{{{principal}}}", self.prefix)
    }
    /// An account's tombstones (same slot as its erasure index).
    fn tombstones(&self, account_id: &str) -> String {
        format!("{}:gone:{{{account_id}}}", self.prefix)
    }
    /// The tombstones an erasure or withdrawal left on a listed case not created yet.
    fn case_mark(&self, id: &str) -> String {
        format!("{}:{{{id}}}:gone", self.prefix)
    }
}

struct Inner {
    connection: Connection,
    keys: Keys,
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

fn check_options(options: &RedisOptions) -> Result<(), ConnectError> {
    if options.key_prefix.is_empty() || options.key_prefix.contains(['{', '}']) {
        return Err(ConnectError(
            "the Redis key prefix must be non-empty and must not contain '{' or '}'",
        ));
    }
    Ok(())
}

/// Why the store could not connect, in words fit for a start-up error: never a value from Redis,
/// never a password. Every such failure is [`StoreError::Unavailable`] to the storage interfaces.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(&'static str);

impl From<ConnectError> for StoreError {
    fn from(_: ConnectError) -> Self {
        StoreError::Unavailable
    }
}

fn connect_failed(error: &redis::RedisError) -> ConnectError {
    tracing::warn!(op = "connect", kind = ?error.kind(), "redis connection failed");
    ConnectError(access::connect_failure(error))
}

/// Bounds a connection attempt by twice the connect timeout.
async fn connect_within<T>(
    options: &RedisOptions,
    connect: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, ConnectError> {
    tokio::time::timeout(options.connect_timeout * 2, connect)
        .await
        .map_err(|_| {
            tracing::warn!(op = "connect", "redis connection timed out");
            ConnectError("Redis did not answer within the connect timeout")
        })?
        .map_err(|e| connect_failed(&e))
}

/// The only eviction policy the store can live with is `noeviction`: any other lets Redis drop keys
/// under memory pressure (every `volatile-*` policy the sealed data, which has a TTL), and a pending
/// anchor case whose data went could no longer be checked against its limit, a binding could vanish.
/// A policy that can be read and is not `noeviction` stops the start; one that cannot be read (an ACL
/// user without `CONFIG`, a managed Redis that renamed it) is warned about and the start goes on.
async fn check_eviction(connection: &mut Connection, options: &RedisOptions) -> Result<(), ConnectError> {
    let get = async {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async::<Value>(connection)
            .await
    };
    let reply = match tokio::time::timeout(options.connect_timeout * 2, get).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            tracing::warn!(op = "connect", kind = ?error.kind(), "could not read Redis's maxmemory-policy (CONFIG not allowed?); it must be noeviction");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(
                op = "connect",
                "Redis did not answer CONFIG GET maxmemory-policy; it must be noeviction"
            );
            return Ok(());
        }
    };
    let policies = eviction_policies(&reply);
    if policies.is_empty() {
        tracing::warn!(
            op = "connect",
            "Redis did not tell its maxmemory-policy; it must be noeviction"
        );
        return Ok(());
    }
    if policies.iter().any(|p| !p.eq_ignore_ascii_case("noeviction")) {
        return Err(ConnectError(
            "Redis maxmemory-policy must be noeviction (an evicting Redis can drop sealed data and anchor bindings)",
        ));
    }
    Ok(())
}

/// The policy values in a `CONFIG GET maxmemory-policy` reply: a `[name, value]` array or a map
/// (RESP3), or on Cluster one such reply per node.
fn eviction_policies(reply: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::BulkString(bytes) => out.push(String::from_utf8_lossy(bytes).into_owned()),
            Value::SimpleString(s) => out.push(s.clone()),
            Value::Array(items) | Value::Set(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
            _ => {}
        }
    }
    let mut words = Vec::new();
    walk(reply, &mut words);
    words.retain(|w| !w.eq_ignore_ascii_case("maxmemory-policy") && !w.contains(':'));
    words
}

impl RedisStore {
    /// Connects to a standalone Redis (`redis://host:port/db`, or `rediss://` for TLS) with the login
    /// and TLS material of [`RedisOptions::access`]. The connection reconnects by itself after Redis
    /// comes back; until then calls fail with [`StoreError::Unavailable`].
    pub async fn standalone(url: &str, options: RedisOptions) -> Result<Self, ConnectError> {
        check_options(&options)?;
        let client = options.access.client(url).map_err(|e| connect_failed(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            // Reconnect quickly once Redis is back; the backoff stays under one connect timeout.
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(options.connect_timeout);
        // One plain attempt first: the manager retries a refused login until the timeout, hiding why.
        let mut probe = connect_within(&options, client.get_multiplexed_async_connection()).await?;
        let ping = async { redis::cmd("PING").query_async::<String>(&mut probe).await };
        connect_within(&options, ping).await?;
        drop(probe);
        let manager = connect_within(&options, ConnectionManager::new_with_config(client, config)).await?;
        Self::connected(Connection::Standalone(manager), options).await
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port`, or `rediss://`),
    /// with the login and TLS material of [`RedisOptions::access`].
    pub async fn cluster(nodes: &[String], options: RedisOptions) -> Result<Self, ConnectError> {
        check_options(&options)?;
        let builder = ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.response_timeout);
        let client = options
            .access
            .cluster(builder)
            .build()
            .map_err(|e| connect_failed(&e))?;
        let connection = connect_within(&options, client.get_async_connection()).await?;
        Self::connected(Connection::Cluster(connection), options).await
    }

    /// The store over a fresh connection, once a first `PING` went through (a refused login or ACL
    /// shows here, not at the first real call).
    async fn connected(mut connection: Connection, options: RedisOptions) -> Result<Self, ConnectError> {
        let ping = async { redis::cmd("PING").query_async::<String>(&mut connection).await };
        connect_within(&options, ping).await?;
        check_eviction(&mut connection, &options).await?;
        Self::with_connection(connection, options).map_err(|_| ConnectError("no randomness for a record key"))
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

    /// Runs a case script (`KEYS` = case, pii key, pii body, review, face key, face body) and splits
    /// its reply.
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
            .key(keys.review(id))
            .key(keys.face_key(id))
            .key(keys.face_body(id));
        for arg in args {
            invocation.arg(*arg);
        }
        let raw: Vec<Vec<u8>> = self.eval(op, &invocation).await?;
        Reply::parse(op, raw)
    }

    /// Index updates after a case reached a final status: keep its idempotency key as long as the
    /// record, and list it for forgetting.
    async fn after_final(&self, op: &'static str, record: &CaseRecord) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let _: i64 = self
            .query(
                op,
                redis::cmd("EXPIRE")
                    .arg(keys.idem(record.account_id.as_str(), record.request_id.as_str()))
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
