//! The manual-review queue on Redis (`impl ReviewQueue for RedisStore`): leases, four-eyes
//! approvals and supplements, with the same meaning as the embedded store's queue.
//!
//! # Two places, one truth
//!
//! - **The review hash** `P:{<case>}:review` (on the case's slot) is the truth about a case in
//!   review: when it was queued, who holds the lease and until when, who claimed and approved it,
//!   its supplements. Every decision about a case — may this reviewer have it, is this lease live,
//!   does this approval end it — is one Lua script over the case's keys, judged on the caller's
//!   clock (`now_unix`), never on Redis's. Ending a case (a decision, expiry, erasure) drops the
//!   hash together with the sealed data in the same script.
//! - **The queue stream** `P:review:queue` with the consumer group `reviewers` is the work queue:
//!   one entry `{case: <id>}` per queued case, in arrival order. It decides which case is looked at
//!   next, hands each new arrival to exactly one claimer (`XREADGROUP >`), and keeps every queued
//!   case in the group's pending entries list (PEL) until the case ends (`XACK` + `XDEL`). Its
//!   entries are hints: the stream lives on another Cluster slot than the cases, so it can never be
//!   changed in the same atomic step as a case, and every entry is re-checked by the case script.
//!
//! # The PEL as the lease table
//!
//! A pending entry's consumer is the reviewer holding the case, and its delivery time is the lease
//! start **on the caller's clock** (`XCLAIM … TIME`; Redis clamps a time in its future to its own
//! now), so its idle time is the lease's age and an idle time of at least the lease length marks
//! exactly the entries whose lease may have run out. An entry nobody holds (released,
//! awaiting a second approval, or not ready for the reviewer who last looked: four-eyes, a
//! missing supplement) is parked on the consumer [`UNASSIGNED`] with delivery time 1 ms, i.e.
//! idle for decades: every claim sees it at once. `claim_next` is then:
//!
//! 1. The PEL in id order (the oldest first), listed read-only by `XPENDING` in pages: every entry
//!    idle for at least the lease length (its lease may have run out) that the reviewer's skip set
//!    (below) does not pass over is taken with `XCLAIM <reviewer> <lease length> <id>`, which moves
//!    it only if it is still idle enough (a concurrent claimer may have taken it). Each entry taken
//!    is now ours and hidden from other claimers while the case
//!    script decides: *granted* — stamp it with our lease start and return; *held* (the lease is
//!    still live on the caller's clock: clocks disagree, or several gateways) — hand it back to its
//!    holder with its lease start; *not ready for us* — park it on [`UNASSIGNED`] so the next
//!    reviewer sees it at once; *gone* (ended, duplicate) — `XACK` + `XDEL`.
//! 2. Then new arrivals, `XREADGROUP GROUP reviewers <reviewer> COUNT 1 … >`, handled the same way.
//!    Every PEL entry is older than every undelivered one, so this keeps the oldest first.
//!
//! Moves that hide an entry (our stamp, a hand-back) are made only if we still own the entry
//! ([`MOVE_IF_OWNER`]); moves that free one are unconditional. So an entry whose case is ready can
//! be hidden only by a claimer that is about to decide it, or — after a rare interleaving of a
//! release with a concurrent hand-back — at most until the stale lease's end. A claimer that dies
//! holding an entry loses it after one lease length, like any consumer group member.
//!
//! **Order**: oldest first is arrival order at Redis (stream ids). `queued_at_unix` in the hash is
//! the caller's clock at arrival; both orders agree up to the clock skew between gateways. Entries
//! are never re-added on release or a second approval (they stay in the PEL), so a case keeps its
//! place; only a case re-queued by the sweep's orphan repair (a gateway died between the case
//! script and `XADD`) joins at the tail.
//!
//! # Skip sets
//!
//! A four-eyes leftover (a case the reviewer approved, or claimed under four-eyes) stays parked in
//! the PEL while it waits for another reviewer; walking it again costs its reviewer a script each
//! claim. So each reviewer has a skip set `P:review:skip:{<principal>}` of the entries that are not
//! ready for them: `a:<entry>` added after their approval (`decide`) or a `not_ready` grant without
//! four-eyes, `c:<entry>` after their release or a `not_ready` grant under four-eyes (passed over
//! under four-eyes only). A claim reads it once and passes over its entries client-side. It is a
//! hint like the stream: a member missing only costs a script; a member wrongly present keeps that
//! one reviewer (never another) from that case. So what voids approvals and claims (a supplement, a
//! withdrawal of biometric consent) takes the entry out of the old approvers' and claimers' sets
//! right after its script (a crash in between delays only them until the set expires or the case
//! ends). A claim prunes members whose entry it found no longer pending, and the set expires one
//! record TTL after its last addition.
//!
//! # Cases waiting for their documents
//!
//! A case nobody may take before its ID card front, back and handheld photo are in (a
//! document-review case always; an anchor case where the claimer gates anchors on their supplement)
//! is not kept in the walk: its review hash is marked `waiting` (`docs` or `anchor`) and it has no
//! queue entry. A document-review case finished without its documents is marked so by `finish` and
//! never queued; any other is taken out by the first claim that meets it (the grant script marks
//! it, the claimer drops the entry), an anchor case listed in `P:review:waiting` so that a claimer
//! without supplement gating can take it back (a bounded batch per claim). The supplement that
//! completes a waiting case queues it again (at the tail). The sweep's orphan repair leaves waiting
//! cases alone.
//!
//! # Costs
//!
//! A claim walks the PEL from its start: one `XPENDING` round trip per page of 500 entries and one
//! `SMEMBERS`; live leases and the entries of the skip set cost nothing more, every other entry
//! not ready for this reviewer (one not yet in their set) a few round trips, once; cases waiting
//! for documents are not in it. `queue_stats` counts the queued
//! cases in the expiry index (`ZCOUNT`, one round trip), checks the leases of the lease index
//! (about one per reviewer at work) against their review hashes, and reads the oldest queued cases
//! in due order until one nobody holds: a few round trips whatever the queue's length. Its figures
//! are those of the review hashes, except that a case expired or erased and not yet swept can count
//! as pending until the sweep, and the oldest is taken in due order (arrival order while the
//! retention setting is unchanged).
//!
//! # What it must never do
//!
//! Trust a stream entry or a PEL owner over the case script; compute or send the integrity tag of an
//! outcome the gateway has not decided (a decision sends the tag of the one status it writes, a
//! first approval of two none); use Redis's clock to decide a lease;
//! log or put in an error any stored value (case ids and principals are logged by the use case, not
//! here); panic on what Redis returns.

use std::sync::LazyLock;

use futures_util::future::try_join_all;
use redis::{Cmd, FromRedisValue, Script, Value};

use super::record::{
    decode_record, decode_sealed_value, decode_wrapped_key, encode_sealed_value, encode_wrapped_key, mac_after,
};
use super::{RedisStore, Reply, corrupt, unavailable};
use crate::crypto::envelope::{Body, WrappedKey};
use crate::domain::{CaseRefusal, Purpose, ReviewReason};
use crate::store::{
    AnchorClaim, CaseRecord, CaseStatus, Claim, Lease, QueueStats, ReviewError, ReviewQueue, ReviewState,
    ReviewVerdict, SealedPii, StoreError,
};

/// The consumer group of the queue stream.
const GROUP: &str = "reviewers";
/// The consumer that holds entries nobody has a lease on. Principals are certificate CNs of
/// printable ASCII without spaces, so no reviewer can have this name.
const UNASSIGNED: &str = "idgate unassigned";
/// Delivery time (ms) of a parked entry: idle for decades, so any claim may take it.
const PARKED_TIME_MS: i64 = 1;
/// Round trips one claim may spend walking the queue before giving up for this call.
const CLAIM_ROUNDS: usize = 10_000;
/// Pending entries one `XPENDING` page of a claim's walk lists.
const PEL_PAGE: usize = 500;
/// Cases of the expiry index read per page by `queue_stats` looking for the oldest one nobody holds.
const STATS_PAGE: usize = 16;
/// How far `queue_stats` looks for the oldest case nobody holds (past the held ones).
const STATS_OLDEST_SCAN: usize = 4 * STATS_PAGE;
/// Leases `queue_stats` reads at most (live ones: about one per reviewer at work).
const STATS_LEASES: usize = 1_000;
/// Waiting anchor cases one claim without supplement gating puts back into the queue.
const REQUEUE_BATCH: isize = 64;
/// A pending case without a queue entry is re-queued by the sweep only this long after it was
/// queued, so that a `finish` still on its way to `XADD` is not raced.
const ORPHAN_GRACE_SECONDS: i64 = 60;

/// List helpers (`list`, `enc`, `has`, `pending`) run before each case script (`review_lists.lua`).
const LISTS: &str = include_str!("review_lists.lua");
/// Leases the case to a reviewer if it is ready for them (`review_grant.lua`).
const GRANT: &str = include_str!("review_grant.lua");
/// Records a verdict under the caller's live lease (`review_decide.lua`).
const DECIDE: &str = include_str!("review_decide.lua");
/// Gives a leased case back (`review_release.lua`).
const RELEASE: &str = include_str!("review_release.lua");
/// Replaces the sealed data with supplemented material (`review_supplement.lua`).
const SUPPLEMENT: &str = include_str!("review_supplement.lua");
/// Records a case's queue entry unless it has one (`review_record_entry.lua`).
const RECORD_ENTRY: &str = include_str!("review_record_entry.lua");
/// Whether a pending case has no queue entry though queued before a time (`review_orphan.lua`).
const ORPHAN: &str = include_str!("review_orphan.lua");
/// Moves a pending entry to another consumer, only if the expected one still owns it
/// (`review_move_if_owner.lua`).
const MOVE_IF_OWNER: &str = include_str!("review_move_if_owner.lua");

struct ReviewScripts {
    grant: Script,
    decide: Script,
    release: Script,
    supplement: Script,
    record_entry: Script,
    orphan: Script,
    move_if_owner: Script,
}

/// Scripts are only source and hash: one set serves every store.
static SCRIPTS: LazyLock<ReviewScripts> = LazyLock::new(|| {
    let case = |body: &str| Script::new(&format!("{LISTS}{body}"));
    ReviewScripts {
        grant: case(GRANT),
        decide: case(DECIDE),
        release: case(RELEASE),
        supplement: case(SUPPLEMENT),
        record_entry: case(RECORD_ENTRY),
        orphan: case(ORPHAN),
        move_if_owner: Script::new(MOVE_IF_OWNER),
    }
});

/// What one decision step does, decided by the gateway before the step (see `decide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An approval that is not the last one needed: back to the queue, status unchanged.
    Requeue,
    /// The last approval: `verified`.
    Verify,
    /// The last approval, refused by the anchor-accounts-per-ID limit.
    Limit,
    /// A rejection.
    Reject,
}

impl Outcome {
    /// The word `review_decide.lua` takes.
    fn word(self) -> &'static str {
        match self {
            Self::Requeue => "requeue",
            Self::Verify => "verify",
            Self::Limit => "limit",
            Self::Reject => "reject",
        }
    }

    /// The status and refusal the step writes (`None`: the status stays as it is, no new tag).
    fn written(self) -> Option<(CaseStatus, Option<CaseRefusal>)> {
        match self {
            Self::Requeue => None,
            Self::Verify => Some((CaseStatus::Verified, None)),
            Self::Limit => Some((CaseStatus::NotVerified, Some(CaseRefusal::IdAccountLimit))),
            Self::Reject => Some((CaseStatus::NotVerified, None)),
        }
    }
}

/// Why a queue entry is in a reviewer's skip set (`P:review:skip:{<principal>}`), as the member's
/// prefix: `a:<entry>` / `c:<entry>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// They approved the case: not theirs again, four-eyes or not.
    Approved,
    /// They claimed it: not theirs again under four-eyes.
    Claimed,
}

impl Skip {
    fn member(self, entry: &str) -> String {
        match self {
            Self::Approved => format!("a:{entry}"),
            Self::Claimed => format!("c:{entry}"),
        }
    }

    /// The entry a skip-set member names, and whether a claim with `four_eyes` passes over it.
    fn parse(member: &str, four_eyes: bool) -> Option<(&str, bool)> {
        match member.split_once(':')? {
            ("a", entry) => Some((entry, true)),
            ("c", entry) => Some((entry, four_eyes)),
            _ => None,
        }
    }
}

/// A stream id `<ms>-<seq>` as a number pair (stream order).
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// A queue entry as delivered: its id, and the case it names (`None`: deleted or malformed).
pub(crate) struct Entry {
    id: String,
    pub(crate) case: Option<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `[[id, [field, value, …] | nil], …]` as returned by `XCLAIM`, `XREADGROUP` and `XRANGE`.
fn decode_entries(op: &'static str, value: &Value) -> Result<Vec<Entry>, StoreError> {
    let Value::Array(items) = value else {
        return Err(corrupt(op, "queue"));
    };
    items
        .iter()
        .map(|item| {
            let Value::Array(parts) = item else {
                return Err(corrupt(op, "queue"));
            };
            let id = parts.first().and_then(text).ok_or_else(|| corrupt(op, "queue"))?;
            let case = match parts.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|pair| pair.first().and_then(text).as_deref() == Some("case"))
                    .and_then(|pair| pair.get(1).and_then(text)),
                _ => None,
            };
            Ok(Entry { id, case })
        })
        .collect()
}

/// The entries of an `XREADGROUP` reply on one stream (RESP2 array or RESP3 map; nil when none).
pub(crate) fn decode_read(op: &'static str, value: &Value) -> Result<Vec<Entry>, StoreError> {
    let stream = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => match streams.first() {
            Some(Value::Array(pair)) => pair.get(1),
            None => return Ok(Vec::new()),
            _ => None,
        },
        Value::Map(streams) => streams.first().map(|(_, entries)| entries),
        _ => None,
    };
    decode_entries(op, stream.ok_or_else(|| corrupt(op, "queue"))?)
}

fn decode_list(op: &'static str, field: &'static str, raw: Option<&Vec<u8>>) -> Result<Vec<String>, StoreError> {
    match raw {
        None => Ok(Vec::new()),
        Some(raw) => serde_json::from_slice(raw).map_err(|_| corrupt(op, field)),
    }
}

fn decode_number(op: &'static str, field: &'static str, raw: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(op, field))
}

/// The review hash as `HGETALL` pairs (see the module docs of `redis/mod.rs` for its fields).
pub(crate) fn decode_review(op: &'static str, pairs: Vec<Vec<u8>>) -> Result<ReviewState, StoreError> {
    if !pairs.len().is_multiple_of(2) {
        return Err(corrupt(op, "review"));
    }
    let mut fields = std::collections::HashMap::with_capacity(pairs.len() / 2);
    let mut pairs = pairs.into_iter();
    while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
        fields.insert(name, value);
    }
    let get = |field: &str| fields.get(field.as_bytes());
    let queued = get("queued").ok_or_else(|| corrupt(op, "queued"))?;
    let lease = match (get("holder"), get("until")) {
        (Some(holder), Some(until)) => Some(Lease {
            reviewer: String::from_utf8(holder.clone()).map_err(|_| corrupt(op, "holder"))?,
            until_unix: decode_number(op, "until", until)?,
        }),
        _ => None,
    };
    Ok(ReviewState {
        queued_at_unix: decode_number(op, "queued", queued)?,
        lease,
        claimed_by: decode_list(op, "claimed", get("claimed"))?,
        approvals: decode_list(op, "approvals", get("approvals"))?,
        supplement_complete: get("supplement").is_some_and(|v| v.as_slice() == b"1"),
        supplement_requests: decode_list(op, "supplements", get("supplements"))?,
    })
}

/// Whether a Redis error is the given server error code (e.g. `NOGROUP`).
fn is_code(error: &redis::RedisError, code: &str) -> bool {
    error.code() == Some(code)
}

impl RedisStore {
    /// One round trip on the queue stream. A missing group (a fresh deployment, or the stream was
    /// deleted) is created and the command tried once more.
    async fn group_query<T: FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        let first = tokio::time::timeout(self.inner.response_timeout, cmd.query_async::<T>(&mut connection)).await;
        match first {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if is_code(&error, "NOGROUP") => {}
            Ok(Err(error)) => return Err(unavailable(op, &error)),
            Err(_) => {
                tracing::warn!(op, "redis call timed out");
                return Err(StoreError::Unavailable);
            }
        }
        // From id 0: entries added before the group existed are new to it.
        let create = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.inner.keys.review_queue())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .to_owned();
        let created = tokio::time::timeout(
            self.inner.response_timeout,
            create.query_async::<Value>(&mut connection),
        )
        .await;
        match created {
            Ok(Ok(_)) => {}
            // Another gateway created it meanwhile.
            Ok(Err(error)) if is_code(&error, "BUSYGROUP") => {}
            Ok(Err(error)) => return Err(unavailable(op, &error)),
            Err(_) => {
                tracing::warn!(op, "redis call timed out");
                return Err(StoreError::Unavailable);
            }
        }
        self.query(op, cmd).await
    }

    /// Puts a case that just became pending review (its review hash exists) into the queue.
    pub(super) async fn enqueue_review(&self, op: &'static str, id: &str) -> Result<(), StoreError> {
        let queue = self.inner.keys.review_queue();
        let entry: String = self
            .query(op, redis::cmd("XADD").arg(&queue).arg("*").arg("case").arg(id))
            .await?;
        let reply = self
            .case_script(op, &SCRIPTS.record_entry, id, &[entry.as_bytes()])
            .await?;
        match reply.status.as_str() {
            "ok" => Ok(()),
            "has" if reply.word(op, 0)? == entry => Ok(()),
            // Ended meanwhile, or it has another entry already: ours is not needed.
            "has" | "gone" => self.remove_entry(op, &entry).await,
            _ => Err(corrupt(op, "reply")),
        }
    }

    /// Sweep: re-queues pending cases whose entry was never added (a gateway died between the case
    /// script and `XADD`). Walks every case holding data (the expiry index).
    pub(super) async fn requeue_orphans(&self, now_unix: i64) -> Result<(), StoreError> {
        const OP: &str = "sweep";
        let before = now_unix.saturating_sub(ORPHAN_GRACE_SECONDS).to_string();
        let mut offset: isize = 0;
        loop {
            let ids: Vec<String> = self
                .query(
                    OP,
                    redis::cmd("ZRANGE")
                        .arg(self.inner.keys.expiry())
                        .arg(offset)
                        .arg(offset + super::BATCH - 1),
                )
                .await?;
            for id in &ids {
                let reply = self.case_script(OP, &SCRIPTS.orphan, id, &[before.as_bytes()]).await?;
                if reply.status == "orphan" {
                    tracing::warn!(op = OP, "re-queueing a pending case that had no queue entry");
                    self.enqueue_review(OP, id).await?;
                }
            }
            if ids.len() < super::BATCH as usize {
                break;
            }
            offset += super::BATCH;
        }
        // Waiting anchor cases now due are expired by this sweep: nothing left to take back.
        const BATCH: usize = super::BATCH as usize;
        let now = now_unix.to_string();
        loop {
            let due: Vec<String> = self
                .by_score(OP, self.inner.keys.review_waiting(), "-inf", &now, 0, BATCH)
                .await?;
            self.zrem(OP, self.inner.keys.review_waiting(), &due).await?;
            if due.len() < BATCH {
                return Ok(());
            }
        }
    }

    /// When case `case` was queued and until when it is leased, from its review hash (`None`: not
    /// queued any more).
    async fn queue_state(&self, op: &'static str, case: &str) -> Result<Option<(i64, Option<i64>)>, StoreError> {
        let fields: Vec<Option<Vec<u8>>> = self
            .query(
                op,
                redis::cmd("HMGET")
                    .arg(self.inner.keys.review(case))
                    .arg("queued")
                    .arg("until"),
            )
            .await?;
        let [queued, until] = <[Option<Vec<u8>>; 2]>::try_from(fields).map_err(|_| corrupt(op, "review"))?;
        let Some(queued) = queued else { return Ok(None) };
        let until = until.map(|u| decode_number(op, "until", &u)).transpose()?;
        Ok(Some((decode_number(op, "queued", &queued)?, until)))
    }

    /// Puts anchor cases that wait out of the queue for a supplement only a claimer with supplement
    /// gating needs back into the queue (a bounded batch per claim).
    async fn requeue_waiting_anchors(&self, op: &'static str) -> Result<(), StoreError> {
        let waiting: Vec<String> = self
            .query(
                op,
                redis::cmd("ZRANGE")
                    .arg(self.inner.keys.review_waiting())
                    .arg(0)
                    .arg(REQUEUE_BATCH - 1),
            )
            .await?;
        for case in &waiting {
            self.zrem(op, self.inner.keys.review_waiting(), std::slice::from_ref(case))
                .await?;
            self.enqueue_review(op, case).await?;
        }
        Ok(())
    }

    /// Adds (or re-scores) `member` in zset `key`.
    async fn zadd(&self, op: &'static str, key: String, score: i64, member: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .query(op, redis::cmd("ZADD").arg(key).arg(score).arg(member))
            .await?;
        Ok(())
    }

    /// Members of zset `key` with scores in `min..=max` (Redis score bounds, `(` for exclusive), in
    /// score order, from `offset`, at most `count`.
    async fn by_score(
        &self,
        op: &'static str,
        key: String,
        min: &str,
        max: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.query(
            op,
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(min)
                .arg(max)
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(offset)
                .arg(count),
        )
        .await
    }

    /// Takes an entry out of the queue for good.
    async fn remove_entry(&self, op: &'static str, entry: &str) -> Result<(), StoreError> {
        if entry.is_empty() {
            return Ok(());
        }
        let queue = self.inner.keys.review_queue();
        let _: i64 = self
            .group_query(op, redis::cmd("XACK").arg(&queue).arg(GROUP).arg(entry))
            .await?;
        let _: i64 = self.query(op, redis::cmd("XDEL").arg(&queue).arg(entry)).await?;
        Ok(())
    }

    /// Parks an entry on [`UNASSIGNED`], visible to the next claim at once. Unconditional: freeing
    /// an entry is always safe (the case script has the last word).
    pub(super) async fn park_entry(&self, op: &'static str, entry: &str) -> Result<(), StoreError> {
        if entry.is_empty() {
            return Ok(());
        }
        let _: Value = self
            .group_query(
                op,
                redis::cmd("XCLAIM")
                    .arg(self.inner.keys.review_queue())
                    .arg(GROUP)
                    .arg(UNASSIGNED)
                    .arg(0)
                    .arg(entry)
                    .arg("TIME")
                    .arg(PARKED_TIME_MS)
                    .arg("JUSTID"),
            )
            .await?;
        Ok(())
    }

    /// Notes in `reviewer`'s skip set that `entry` is not ready for them, so that their claims pass
    /// over it without a script. The set's TTL (the record TTL, refreshed here) bounds a set nobody
    /// adds to any more; claims prune members whose entry left the queue.
    async fn skip_entry(&self, op: &'static str, reviewer: &str, why: Skip, entry: &str) -> Result<(), StoreError> {
        if entry.is_empty() {
            return Ok(());
        }
        let key = self.inner.keys.review_skip(reviewer);
        let _: i64 = self
            .query(op, redis::cmd("SADD").arg(&key).arg(why.member(entry)))
            .await?;
        let _: i64 = self
            .query(op, redis::cmd("EXPIRE").arg(&key).arg(self.inner.record_ttl_seconds))
            .await?;
        Ok(())
    }

    /// Takes `entry` out of the skip sets of the reviewers in `lists` (raw `claimed` / `approvals`
    /// fields a case script just voided): the case may be theirs again. Runs after that script; a
    /// crash in between leaves a stale member that only keeps those reviewers from the case until
    /// their set expires or the case ends (other reviewers still see it).
    pub(super) async fn unskip_voided(
        &self,
        op: &'static str,
        entry: &str,
        lists: &[Option<&Vec<u8>>],
    ) -> Result<(), StoreError> {
        if entry.is_empty() {
            return Ok(());
        }
        let mut reviewers = std::collections::BTreeSet::new();
        for list in lists {
            let list = list.filter(|raw| !raw.is_empty());
            reviewers.extend(decode_list(op, "reviewers", list)?);
        }
        for reviewer in reviewers {
            let _: i64 = self
                .query(
                    op,
                    redis::cmd("SREM")
                        .arg(self.inner.keys.review_skip(&reviewer))
                        .arg(Skip::Approved.member(entry))
                        .arg(Skip::Claimed.member(entry)),
                )
                .await?;
        }
        Ok(())
    }

    /// Gives an entry we own to `owner`, delivered at `since_unix` on the caller's clock (the lease
    /// start), so that it stays out of the claims' way until that lease may have run out.
    async fn hide_entry(
        &self,
        op: &'static str,
        entry: &str,
        ours: &str,
        owner: &str,
        since_unix: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = SCRIPTS.move_if_owner.prepare_invoke();
        invocation
            .key(self.inner.keys.review_queue())
            .arg(GROUP)
            .arg(entry)
            .arg(ours)
            .arg(owner)
            .arg(since_unix.saturating_mul(1000).max(1));
        let _: i64 = self.eval(op, &invocation).await?;
        Ok(())
    }

    /// Runs the grant script on one entry handed to `reviewer` and settles the entry accordingly.
    /// `None`: the entry was not for this reviewer (now).
    async fn try_entry(
        &self,
        entry: Entry,
        reviewer: &str,
        now_unix: i64,
        lease_until_unix: i64,
        four_eyes: bool,
        anchor_needs_supplement: bool,
    ) -> Result<Option<Claim>, StoreError> {
        const OP: &str = "claim_next";
        let Some(case_id) = entry.case else {
            self.remove_entry(OP, &entry.id).await?;
            return Ok(None);
        };
        let now = now_unix.to_string();
        let until = lease_until_unix.to_string();
        let flag = |on: bool| if on { &b"1"[..] } else { &b"0"[..] };
        let mut reply = self
            .case_script(
                OP,
                &SCRIPTS.grant,
                &case_id,
                &[
                    reviewer.as_bytes(),
                    now.as_bytes(),
                    until.as_bytes(),
                    flag(four_eyes),
                    flag(anchor_needs_supplement),
                    Purpose::Anchor.as_str().as_bytes(),
                    entry.id.as_bytes(),
                    ReviewReason::DocumentReviewRequested.code().as_bytes(),
                ],
            )
            .await?;
        match reply.status.as_str() {
            "granted" => {
                if reply.rest.len() < 4 {
                    return Err(corrupt(OP, "reply"));
                }
                let mut parts = reply.rest.drain(..4);
                let (Some(key), Some(body), Some(face_key), Some(face_body)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(corrupt(OP, "reply"));
                };
                drop(parts);
                let pii = SealedPii {
                    wrapped_key: decode_wrapped_key(OP, &key)?,
                    body: Body::from_bytes(&body).map_err(|_| corrupt(OP, "pii:body"))?,
                    face: decode_sealed_value(OP, Some(face_key), Some(face_body))?,
                };
                let case = reply.record(&self.inner.record_keys.load(), OP, &case_id)?;
                self.hide_entry(OP, &entry.id, reviewer, reviewer, now_unix).await?;
                self.zadd(OP, self.inner.keys.review_leases(), lease_until_unix, &case_id)
                    .await?;
                Ok(Some(Claim {
                    case,
                    pii,
                    lease: Lease {
                        reviewer: reviewer.to_owned(),
                        until_unix: lease_until_unix,
                    },
                }))
            }
            "held" => {
                let holder = reply.word(OP, 0)?;
                let since: i64 = reply.word(OP, 1)?.parse().map_err(|_| corrupt(OP, "leased"))?;
                self.hide_entry(OP, &entry.id, reviewer, &holder, since).await?;
                Ok(None)
            }
            "waiting" => {
                // Out of the queue until its documents are in (the supplement queues it again); an
                // anchor case waiting only for the supplement gating is listed for claimers without it.
                self.remove_entry(OP, &entry.id).await?;
                if reply.word(OP, 0)? == "anchor" {
                    let due: i64 = reply.word(OP, 1)?.parse().map_err(|_| corrupt(OP, "pii_exp"))?;
                    self.zadd(OP, self.inner.keys.review_waiting(), due, &case_id).await?;
                }
                Ok(None)
            }
            "not_ready" => {
                self.park_entry(OP, &entry.id).await?;
                // Under four-eyes they claimed it (an approval needs a claim); otherwise approved it.
                let why = if four_eyes { Skip::Claimed } else { Skip::Approved };
                self.skip_entry(OP, reviewer, why, &entry.id).await?;
                Ok(None)
            }
            "gone" => {
                self.remove_entry(OP, &entry.id).await?;
                Ok(None)
            }
            _ => Err(corrupt(OP, "reply")),
        }
    }

    /// Runs a lease-checked case script (decide, release) and maps the refusals.
    async fn leased_script(
        &self,
        op: &'static str,
        script: &Script,
        case_id: &str,
        args: &[&[u8]],
    ) -> Result<Reply, ReviewError> {
        let reply = self.case_script(op, script, case_id, args).await?;
        match reply.status.as_str() {
            "not_pending" => Err(ReviewError::NotPending),
            "expired" => Err(ReviewError::LeaseExpired),
            "foreign" => Err(ReviewError::Foreign),
            _ => Ok(reply),
        }
    }
}

#[async_trait::async_trait]
impl ReviewQueue for RedisStore {
    async fn register_reviewer_key(&self, principal: &str, public_key: [u8; 32]) -> Result<(), StoreError> {
        let _: Value = self
            .query(
                "register_reviewer_key",
                redis::cmd("SET")
                    .arg(self.inner.keys.reviewer(principal))
                    .arg(&public_key[..]),
            )
            .await?;
        Ok(())
    }

    async fn reviewer_key(&self, principal: &str) -> Result<Option<[u8; 32]>, StoreError> {
        const OP: &str = "reviewer_key";
        let key: Option<Vec<u8>> = self
            .query(OP, redis::cmd("GET").arg(self.inner.keys.reviewer(principal)))
            .await?;
        key.map(|k| <[u8; 32]>::try_from(k.as_slice()).map_err(|_| corrupt(OP, "reviewer")))
            .transpose()
    }

    async fn claim_next(
        &self,
        reviewer: &str,
        now_unix: i64,
        lease_until_unix: i64,
        four_eyes: bool,
        anchor_needs_supplement: bool,
    ) -> Result<Option<Claim>, ReviewError> {
        const OP: &str = "claim_next";
        let queue = self.inner.keys.review_queue();
        // An entry whose lease started this long ago (caller's clock) may be free again.
        let min_idle_ms = lease_until_unix.saturating_sub(now_unix).max(0).saturating_mul(1000);
        let attempt = |entry| {
            self.try_entry(
                entry,
                reviewer,
                now_unix,
                lease_until_unix,
                four_eyes,
                anchor_needs_supplement,
            )
        };

        if !anchor_needs_supplement {
            // Anchor cases a claimer with supplement gating took out of the queue are ready for us.
            self.requeue_waiting_anchors(OP).await?;
        }

        // 1. The PEL, oldest first: parked entries and leases that may have run out, less those
        // this reviewer's skip set passes over. The set is read before the pages: each of its
        // entries was pending then and stays pending until its case ends.
        let skip_key = self.inner.keys.review_skip(reviewer);
        let members: Vec<String> = self.query(OP, redis::cmd("SMEMBERS").arg(&skip_key)).await?;
        let parsed: Vec<(&str, bool)> = members
            .iter()
            .filter_map(|member| Skip::parse(member, four_eyes))
            .collect();
        let known: std::collections::HashSet<&str> = parsed.iter().map(|(entry, _)| *entry).collect();
        let skip: std::collections::HashSet<&str> = parsed
            .iter()
            .filter(|(_, passes)| *passes)
            .map(|(entry, _)| *entry)
            .collect();
        let mut met = std::collections::HashSet::new();
        let mut start = "-".to_owned();
        let mut walked_to = None;
        let mut exhausted = false;
        let mut rounds = 1;
        let mut found = None;
        'walk: while rounds < CLAIM_ROUNDS {
            rounds += 1;
            let page: Vec<(String, String, i64, i64)> = self
                .group_query(
                    OP,
                    redis::cmd("XPENDING")
                        .arg(&queue)
                        .arg(GROUP)
                        .arg(&start)
                        .arg("+")
                        .arg(PEL_PAGE),
                )
                .await?;
            exhausted = page.len() < PEL_PAGE;
            if let Some((last, ..)) = page.last() {
                walked_to = stream_id(last);
                start = format!("({last}");
            }
            let mut candidates = Vec::new();
            for (id, _, idle_ms, _) in page {
                if known.contains(id.as_str()) {
                    met.insert(id.clone());
                }
                if !skip.contains(id.as_str()) && idle_ms >= min_idle_ms {
                    candidates.push(id);
                }
            }
            for id in candidates {
                if rounds >= CLAIM_ROUNDS {
                    break 'walk;
                }
                rounds += 1;
                // Ours only if still idle enough: a concurrent claimer may have taken it meanwhile.
                let reply: Value = self
                    .group_query(
                        OP,
                        redis::cmd("XCLAIM")
                            .arg(&queue)
                            .arg(GROUP)
                            .arg(reviewer)
                            .arg(min_idle_ms)
                            .arg(&id),
                    )
                    .await?;
                for entry in decode_entries(OP, &reply)? {
                    if let Some(claim) = attempt(entry).await? {
                        found = Some(claim);
                        break 'walk;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        // Members whose entry was not pending where the walk looked have left the queue.
        let stale: Vec<&String> = members
            .iter()
            .filter(|member| match member.split_once(':') {
                Some((_, entry)) if met.contains(entry) => false,
                Some((_, entry)) => exhausted || stream_id(entry).is_none_or(|id| Some(id) <= walked_to),
                None => true,
            })
            .collect();
        if !stale.is_empty() {
            let _: i64 = self.query(OP, redis::cmd("SREM").arg(&skip_key).arg(stale)).await?;
        }
        if found.is_some() {
            return Ok(found);
        }
        if !exhausted {
            tracing::warn!(op = OP, "review queue walk stopped at its bound");
            return Ok(None);
        }

        // 2. New arrivals, each handed to exactly one claimer; all younger than the PEL.
        while rounds < CLAIM_ROUNDS {
            rounds += 1;
            let reply: Value = self
                .group_query(
                    OP,
                    redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg(GROUP)
                        .arg(reviewer)
                        .arg("COUNT")
                        .arg(1)
                        .arg("STREAMS")
                        .arg(&queue)
                        .arg(">"),
                )
                .await?;
            let entries = decode_read(OP, &reply)?;
            if entries.is_empty() {
                return Ok(None);
            }
            for entry in entries {
                if let Some(claim) = attempt(entry).await? {
                    return Ok(Some(claim));
                }
            }
        }
        tracing::warn!(op = OP, "review queue walk stopped at its bound");
        Ok(None)
    }

    async fn decide(
        &self,
        case_id: &str,
        reviewer: &str,
        verdict: ReviewVerdict,
        approvals_required: u8,
        anchor: Option<AnchorClaim>,
        now_unix: i64,
    ) -> Result<CaseRecord, ReviewError> {
        const OP: &str = "decide";
        let (current, old_mac) = self.read_tagged(OP, case_id).await?.ok_or(ReviewError::NotPending)?;
        // What this step will do is decided here, from the approvals given so far, and only that
        // outcome's tag is computed and sent: a tag for an outcome the gateway has not decided (a
        // `verified` one beside a rejection, or beside a first approval of two) would let anyone who
        // sees script arguments and can write the case hash forge that outcome. The script refuses
        // (`changed`) when the case or its approvals are not what this was decided from.
        let given: Option<Vec<u8>> = self
            .query(
                OP,
                redis::cmd("HGET").arg(self.inner.keys.review(case_id)).arg("approvals"),
            )
            .await?;
        let required = approvals_required.max(1);
        let last_approval = {
            let mut approvals = decode_list(OP, "approvals", given.as_ref())?;
            if !approvals.iter().any(|r| r == reviewer) {
                approvals.push(reviewer.to_owned());
            }
            approvals.len() >= usize::from(required)
        };
        // The last approval of an anchor case needs its binding, judged before the step that would
        // verify the case; the binding counts only once that step made the case `verified`.
        let anchor = match (verdict, anchor) {
            (ReviewVerdict::Approve, Some(claim)) if last_approval && current.status == CaseStatus::PendingReview => {
                // The candidate is in flight while the reviewer's lease lasts at most.
                let allowed = self
                    .anchor_allows(OP, &current, &claim, now_unix + 60, now_unix)
                    .await?;
                Some((claim, allowed))
            }
            _ => None,
        };
        let outcome = match (verdict, last_approval, &anchor) {
            (ReviewVerdict::Reject, _, _) => Outcome::Reject,
            (ReviewVerdict::Approve, false, _) => Outcome::Requeue,
            (ReviewVerdict::Approve, true, Some((_, false))) => Outcome::Limit,
            (ReviewVerdict::Approve, true, _) => Outcome::Verify,
        };
        let anchor_index = match &anchor {
            Some((claim, true)) => claim.index.as_str(),
            _ => "",
        };
        let keys = &self.inner.record_keys.load();
        let tag = outcome
            .written()
            .map(|(status, refusal)| mac_after(keys, &current, status, refusal, now_unix))
            .unwrap_or_default();
        let required = required.to_string();
        let now = now_unix.to_string();
        let ttl = self.inner.record_ttl_seconds.to_string();
        self.step("decide:before-script");
        let reply = self
            .leased_script(
                OP,
                &SCRIPTS.decide,
                case_id,
                &[
                    reviewer.as_bytes(),
                    outcome.word().as_bytes(),
                    required.as_bytes(),
                    now.as_bytes(),
                    ttl.as_bytes(),
                    old_mac.as_bytes(),
                    tag.as_bytes(),
                    CaseRefusal::IdAccountLimit.code().as_bytes(),
                    anchor_index.as_bytes(),
                    given.as_deref().unwrap_or_default(),
                ],
            )
            .await;
        let mut reply = match reply {
            Ok(reply) if reply.status != "changed" => reply,
            other => {
                // Nothing was decided: a candidate binding written for this step binds nothing.
                if let Some((claim, true)) = &anchor {
                    self.drop_candidate(OP, &current, claim).await?;
                }
                return Err(other.err().unwrap_or_else(|| StoreError::Conflict.into()));
            }
        };
        let status = std::mem::take(&mut reply.status);
        if reply.rest.is_empty() {
            return Err(corrupt(OP, "reply").into());
        }
        let entry = String::from_utf8(reply.rest.remove(0)).map_err(|_| corrupt(OP, "reply"))?;
        let record = decode_record(keys, OP, case_id, reply.rest)?;
        self.step("decide:after-script");
        if let Some((claim, allowed)) = &anchor {
            if record.status == CaseStatus::Verified {
                self.confirm_anchor(OP, &record, claim).await?;
            } else if *allowed {
                // Not the last approval (or not verified after all): the candidate binds nothing.
                self.drop_candidate(OP, &record, claim).await?;
            }
        }
        self.zrem(OP, self.inner.keys.review_leases(), &[case_id.to_owned()])
            .await?;
        match status.as_str() {
            "ended" => {
                // The case script already ended it; these only tidy the indexes and the queue.
                self.after_final(OP, &record).await?;
                self.zrem(OP, self.inner.keys.expiry(), &[case_id.to_owned()]).await?;
                self.remove_entry(OP, &entry).await?;
            }
            "requeued" => {
                self.park_entry(OP, &entry).await?;
                self.skip_entry(OP, reviewer, Skip::Approved, &entry).await?;
            }
            _ => return Err(corrupt(OP, "reply").into()),
        }
        Ok(record)
    }

    async fn release(&self, case_id: &str, reviewer: &str, now_unix: i64) -> Result<(), ReviewError> {
        const OP: &str = "release";
        let now = now_unix.to_string();
        let reply = self
            .leased_script(OP, &SCRIPTS.release, case_id, &[reviewer.as_bytes(), now.as_bytes()])
            .await?;
        if reply.status != "released" {
            return Err(corrupt(OP, "reply").into());
        }
        self.zrem(OP, self.inner.keys.review_leases(), &[case_id.to_owned()])
            .await?;
        let entry = reply.word(OP, 0)?;
        self.park_entry(OP, &entry).await?;
        self.skip_entry(OP, reviewer, Skip::Claimed, &entry).await?;
        Ok(())
    }

    async fn queue_stats(&self, now_unix: i64) -> Result<QueueStats, StoreError> {
        const OP: &str = "queue_stats";
        let keys = &self.inner.keys;
        let after_now = format!("({now_unix}");
        // Every case pending review with its data held is in the expiry index until it is due.
        let queued: u64 = self
            .query(OP, redis::cmd("ZCOUNT").arg(keys.expiry()).arg(&after_now).arg("+inf"))
            .await?;
        // Leases that may be live (a handful: one per reviewer at work); each case's hash says
        // whether it still is. Ended ones leave the index here.
        let leased: Vec<String> = self
            .by_score(OP, keys.review_leases(), &after_now, "+inf", 0, STATS_LEASES)
            .await?;
        let ended: Vec<String> = self
            .by_score(OP, keys.review_leases(), "-inf", &now_unix.to_string(), 0, STATS_LEASES)
            .await?;
        self.zrem(OP, keys.review_leases(), &ended).await?;
        let states = try_join_all(leased.iter().map(|case| self.queue_state(OP, case))).await?;
        let held: std::collections::HashSet<&str> = leased
            .iter()
            .zip(&states)
            .filter(|(_, state)| state.is_some_and(|(_, until)| until.is_some_and(|u| u > now_unix)))
            .map(|(case, _)| case.as_str())
            .collect();
        let claimed = held.len() as u64;
        // The oldest case nobody holds: the queue in due order (arrival order for one retention
        // setting), skipping the held ones and any without a review hash.
        let mut oldest = None;
        let mut offset = 0;
        while oldest.is_none() && offset < STATS_OLDEST_SCAN {
            let page: Vec<String> = self
                .by_score(OP, keys.expiry(), &after_now, "+inf", offset, STATS_PAGE)
                .await?;
            for case in page.iter().filter(|case| !held.contains(case.as_str())) {
                if let Some((queued, _)) = self.queue_state(OP, case).await? {
                    oldest = Some(queued);
                    break;
                }
            }
            if page.len() < STATS_PAGE {
                break;
            }
            offset += STATS_PAGE;
        }
        Ok(QueueStats {
            pending: queued.saturating_sub(claimed),
            claimed,
            oldest_pending_age_seconds: oldest.map_or(0, |at: i64| (now_unix - at).max(0)),
        })
    }

    async fn review_state(&self, case_id: &str) -> Result<Option<ReviewState>, StoreError> {
        const OP: &str = "review_state";
        let pairs: Vec<Vec<u8>> = self
            .query(OP, redis::cmd("HGETALL").arg(self.inner.keys.review(case_id)))
            .await?;
        if pairs.is_empty() {
            return Ok(None);
        }
        decode_review(OP, pairs).map(Some)
    }

    async fn apply_supplement(
        &self,
        case_id: &str,
        request_id: &str,
        expected: &WrappedKey,
        pii: SealedPii,
        complete: bool,
    ) -> Result<bool, ReviewError> {
        const OP: &str = "apply_supplement";
        let expected = encode_wrapped_key(expected)?;
        let new_key = encode_wrapped_key(&pii.wrapped_key)?;
        let body = pii.body.to_bytes();
        let (face_key, face_body) = encode_sealed_value(pii.face.as_ref())?;
        let reply = self
            .case_script(
                OP,
                &SCRIPTS.supplement,
                case_id,
                &[
                    request_id.as_bytes(),
                    &expected,
                    &new_key,
                    &body,
                    if complete { b"1" } else { b"0" },
                    &face_key,
                    &face_body,
                ],
            )
            .await?;
        match reply.status.as_str() {
            "applied" => {
                if reply.rest.first().map(Vec::as_slice) == Some(b"requeue") {
                    // It waited out of the queue for these documents.
                    self.zrem(OP, self.inner.keys.review_waiting(), &[case_id.to_owned()])
                        .await?;
                    self.enqueue_review(OP, case_id).await?;
                }
                // A lease given on the replaced material was voided: its entry goes back.
                if let Some(entry) = reply.rest.get(1).filter(|entry| !entry.is_empty()) {
                    let entry = std::str::from_utf8(entry).map_err(|_| corrupt(OP, "reply"))?;
                    self.park_entry(OP, entry).await?;
                }
                // Whoever claimed or approved it may review the new material.
                let entry = reply.word(OP, 2)?;
                self.unskip_voided(OP, &entry, &[reply.rest.get(3), reply.rest.get(4)])
                    .await?;
                Ok(true)
            }
            "duplicate" => Ok(false),
            "conflict" => Err(StoreError::Conflict.into()),
            "not_pending" => Err(ReviewError::NotPending),
            _ => Err(corrupt(OP, "reply").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_decode_and_tolerate_deleted_ones() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("case"), bulk("vf_1")])]),
            Value::Array(vec![bulk("2-0"), Value::Nil]),
        ]);
        let entries = decode_entries("t", &reply).unwrap();
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(entries[0].case.as_deref(), Some("vf_1"));
        assert_eq!(entries[1].case, None);
        assert!(decode_entries("t", &Value::Int(3)).is_err());
        assert!(decode_entries("t", &Value::Array(vec![Value::Nil])).is_err());
        assert!(decode_read("t", &Value::Nil).unwrap().is_empty());
        let read = Value::Array(vec![Value::Array(vec![bulk("q"), reply.clone()])]);
        assert_eq!(decode_read("t", &read).unwrap().len(), 2);
        let read3 = Value::Map(vec![(bulk("q"), reply)]);
        assert_eq!(decode_read("t", &read3).unwrap().len(), 2);
    }

    #[test]
    fn review_hashes_decode_and_garbage_is_an_error() {
        let pairs = |kv: &[(&str, &str)]| -> Vec<Vec<u8>> {
            kv.iter()
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.as_bytes().to_vec()])
                .collect()
        };
        let state = decode_review(
            "t",
            pairs(&[
                ("queued", "10"),
                ("holder", "rev-1"),
                ("until", "70"),
                ("claimed", r#"["rev-1"]"#),
                ("approvals", "[]"),
                ("supplement", "1"),
                ("supplements", r#"["s-1"]"#),
            ]),
        )
        .unwrap();
        assert_eq!(state.queued_at_unix, 10);
        assert_eq!(
            state.lease,
            Some(Lease {
                reviewer: "rev-1".into(),
                until_unix: 70
            })
        );
        assert_eq!(state.claimed_by, ["rev-1"]);
        assert!(state.approvals.is_empty());
        assert!(state.supplement_complete);
        assert_eq!(state.supplement_requests, ["s-1"]);
        assert!(decode_review("t", pairs(&[("holder", "x")])).is_err(), "no queued");
        assert!(decode_review("t", pairs(&[("queued", "x")])).is_err());
        assert!(decode_review("t", pairs(&[("queued", "1"), ("claimed", "{")])).is_err());
    }
}
