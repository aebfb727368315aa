//! [`CaseStore`] on Redis: `begin` claims the idempotency key, lists the case in its account's index
//! (reading the account's tombstones in the same step), then creates or takes over the case in one
//! script on the case's slot; `finish` ends the provider phase in one script (applying an anchor
//! claim judged just before it, see `limits.rs`); `watch` polls.
//!
//! An erasure or withdrawal that comes between `begin`'s steps is not missed (see
//! `retention.rs`): it either lists the case — and marks it, or leaves a mark on its slot that the
//! claim honours — or leaves a tombstone the listing step reads.
//!
//! `finish` sends Redis the integrity tag of the one record it writes (the provider's verdict, or
//! `erased` when erasure was marked meanwhile), never another; a document-review case finished
//! without its documents waits for them out of the review queue (see `review.rs`).
//!
//! Scripts: `cases_claim.lua`, `cases_finish.lua`, `cases_index.lua`.

use std::sync::LazyLock;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::Script;

use super::record::{decode_sealed_value, encode_record, encode_sealed_value, encode_wrapped_key, mac_after};
use super::{RedisStore, Reply, corrupt};
use crate::domain::{CaseRefusal, ReviewReason};
use crate::store::retention::Tombstone;
use crate::store::{Begin, CaseRecord, CaseStatus, CaseStore, Finish, SealedPii, StoreError};

/// How often `watch` reloads a case.
const WATCH_POLL: Duration = Duration::from_millis(250);
/// A watch ends after this many failed reloads in a row (Redis gone for a while): the watcher can
/// come back, but must not be left waiting on a stream that can no longer change.
const WATCH_MAX_FAILURES: u32 = 20;

/// Creates, takes over or reports a case for `begin` (`cases_claim.lua`).
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cases_claim.lua")));
/// Ends the provider phase of a case (`cases_finish.lua`).
static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cases_finish.lua")));
/// Lists a case in its account's index and reads the account's tombstones (`cases_index.lua`).
static INDEX: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cases_index.lua")));

/// The tombstone fields that concern a case of `principal`, in the order the scripts take them: erase
/// for any principal, erase for this one, no-biometrics for any, for this one.
fn tombstone_fields(principal: &str) -> [String; 4] {
    [
        Tombstone::Erase.field(None),
        Tombstone::Erase.field(Some(principal)),
        Tombstone::NoBiometrics.field(None),
        Tombstone::NoBiometrics.field(Some(principal)),
    ]
}

impl RedisStore {
    /// Lists case `id` of `record`'s account in the account's index (renewing the index's TTL to the
    /// record TTL) and, in the same step, reads the account's tombstones: marks `record` as they
    /// say (see [`Tombstone::applies`]): `erase_requested`, and the answer whether a new case must
    /// keep no face (field `nobio`).
    async fn list_case(
        &self,
        op: &'static str,
        record: &mut CaseRecord,
        id: &str,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let account = record.account_id.as_str();
        let mut invocation = INDEX.prepare_invoke();
        invocation
            .key(keys.account(account))
            .key(keys.tombstones(account))
            .arg(id)
            .arg(self.inner.record_ttl_seconds);
        for field in tombstone_fields(&record.principal) {
            invocation.arg(field);
        }
        let times: Vec<Option<String>> = self.eval(op, &invocation).await?;
        let left = |at: Option<&Option<String>>| {
            at.and_then(|at| at.as_deref()?.parse::<i64>().ok())
                .is_some_and(|at| Tombstone::applies(at, now_unix, record.lease_until_unix))
        };
        let erase = left(times.first()) || left(times.get(1));
        let no_face = left(times.get(2)) || left(times.get(3));
        record.erase_requested |= erase;
        Ok(no_face && record.purpose.requires_face())
    }
}

#[async_trait::async_trait]
impl CaseStore for RedisStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        const OP: &str = "begin";
        let keys = &self.inner.keys;
        let idem = keys.idem(record.account_id.as_str(), record.request_id.as_str());
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
        let mut fresh = record;
        // Step 2 (account slot): index first, so that erasure can never miss the case (a stale entry
        // is harmless); an erasure or withdrawal that listed the account's cases before this left
        // its tombstone, read here.
        self.step("begin:before-index");
        let no_face = self.list_case(OP, &mut fresh, &id, now_unix).await?;
        // Step 3 (case slot), one script whoever gets here: creates the case if absent (we won step
        // 1, or the winner died before creating it) honouring any mark an erasure or withdrawal left
        // on it meanwhile, takes over a Processing case whose lease ran out, or reports the case.
        // Exactly one concurrent caller sees it absent or expired.
        self.step("begin:before-claim");
        fresh.id.clone_from(&id);
        let lease = fresh.lease_until_unix.to_string();
        let now = now_unix.to_string();
        let ttl = self.inner.record_ttl_seconds.to_string();
        let mut invocation = CLAIM.prepare_invoke();
        invocation
            .key(keys.case(&id))
            .key(keys.case_mark(&id))
            .arg(&now)
            .arg(&lease)
            .arg(&ttl)
            .arg(&fresh.fingerprint)
            .arg(fresh.account_id.as_str())
            .arg(if fresh.purpose.requires_face() { "1" } else { "0" });
        for field in tombstone_fields(&fresh.principal) {
            invocation.arg(field);
        }
        for (field, value) in encode_record(&self.inner.record_keys.load(), &fresh) {
            invocation.arg(field).arg(value);
        }
        if no_face {
            invocation.arg("nobio").arg("1");
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
        if case.account_id.as_str() != account_id || case.request_id.as_str() != request_id {
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
                refusal = Some(CaseRefusal::IdAccountLimit);
            }
        }
        self.step("finish:before-script");
        // Personal data is kept for a pending review only.
        let pii = match (status, finish.pii) {
            (CaseStatus::PendingReview, Some((pii, expires_at))) => Some((pii, expires_at)),
            _ => None,
        };
        let (face_key, face_body) = encode_sealed_value(pii.as_ref().and_then(|(pii, _)| pii.face.as_ref()))?;
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
        let anchor_index = anchor.as_ref().map(|c| c.index.as_str()).unwrap_or("");
        let review_reason = match status {
            CaseStatus::PendingReview => finish.review_reason.map_or("", ReviewReason::code),
            _ => "",
        };
        // Only the tag of the record this step writes is sent: the provider's verdict, or `erased`
        // when erasure arrived meanwhile (never both: a `verified` tag beside an erased record would
        // let anyone who sees script arguments forge a verified case). The erasure mark is not
        // covered by the tag, so the script checks it is what was read here (`changed`: it appeared
        // meanwhile, and the next try sends the other tag).
        let mut erasing = current.erase_requested;
        let mut tries = 0;
        let reply = loop {
            tries += 1;
            let tag = if erasing {
                mac_after(keys, &current, CaseStatus::Erased, None, now_unix)
            } else {
                mac_after(keys, &current, status, refusal, now_unix)
            };
            let reply = self
                .case_script(
                    OP,
                    &FINISH,
                    id,
                    &[
                        status.as_str().as_bytes(),
                        now_unix.to_string().as_bytes(),
                        self.inner.record_ttl_seconds.to_string().as_bytes(),
                        if status.is_final() { b"1" } else { b"0" },
                        finish.provider.as_deref().unwrap_or("").as_bytes(),
                        refusal.map_or("", CaseRefusal::code).as_bytes(),
                        expires_at.as_bytes(),
                        ttl_ms.as_bytes(),
                        &key,
                        &body,
                        old_mac.as_bytes(),
                        tag.as_bytes(),
                        if erasing { b"1" } else { b"0" },
                        anchor_index.as_bytes(),
                        review_reason.as_bytes(),
                        &face_key,
                        &face_body,
                        ReviewReason::DocumentReviewRequested.code().as_bytes(),
                        if finish.documents_complete { b"1" } else { b"0" },
                    ],
                )
                .await?;
            match reply.status.as_str() {
                "changed" if tries < 3 => erasing = !erasing,
                "changed" => return Err(StoreError::Conflict),
                "not_found" => return Err(StoreError::NotFound),
                "conflict" => return Err(StoreError::Conflict),
                "ok" | "erased" | "waiting" => break reply,
                _ => return Err(corrupt(OP, "reply")),
            }
        };
        // A document-review case without its documents waits for them out of the queue.
        let waiting = reply.status == "waiting";
        let record = reply.record(keys, OP, id)?;
        self.step("finish:after-script");
        if let Some(claim) = &anchor
            && record.status == CaseStatus::Verified
        {
            self.confirm_anchor(OP, &record, claim).await?;
        }
        // Only a case whose data is held gets a review hash (see FINISH) and so a queue entry.
        if record.status == CaseStatus::PendingReview && !ttl_ms.is_empty() && !waiting {
            self.enqueue_review(OP, id).await?;
        }
        if record.status.is_final() {
            self.after_final(OP, &record).await?;
        }
        Ok(record)
    }

    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        // A pending case past its due time is reported as it is: expiring is the sweep's (or the
        // use case's) decision, on the caller's clock.
        Ok(self.read_tagged("get", id).await?.map(|(record, _)| record))
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
        // Every key shares the case's slot, so one MGET reads them together.
        type Four = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);
        let (key, body, face_key, face_body): Four = self
            .query(
                OP,
                redis::cmd("MGET")
                    .arg(keys.pii_key(id))
                    .arg(keys.pii_body(id))
                    .arg(keys.face_key(id))
                    .arg(keys.face_body(id)),
            )
            .await?;
        // Half gone means being shredded or expiring: the data is not usable.
        let Some(identity) = decode_sealed_value(OP, key, body)? else {
            return Ok(None);
        };
        Ok(Some(SealedPii {
            wrapped_key: identity.wrapped_key,
            body: identity.body,
            face: decode_sealed_value(OP, face_key, face_body)?,
        }))
    }
}
