//! [`RetentionStore`] on Redis: the sweep (expire due pending cases, forget old records, re-queue
//! orphaned review cases), erasure of an account and withdrawal of its biometric consent. Audit
//! trimming, rate windows, anchor bindings and tombstones need no sweep: Redis expires them.
//!
//! A record that cannot be read — it fails its integrity check, or holds a field this version cannot
//! decode (a code a newer version wrote) — never stops the sweep or an erasure: the sweep skips it
//! (its data expires by TTL) and erasure destroys its sealed data by key name, with a warning naming
//! the case id only.
//!
//! Erasure and withdrawal leave their tombstone and list the account's cases in one step
//! (`retention_tombstone.lua`); a listed case not created yet gets the tombstone on its own slot
//! (`retention_mark_unborn.lua`), honoured by the claim that creates it (see `cases.rs`).
//!
//! Scripts: `retention_shred.lua`, `retention_forget.lua`, `retention_delete_if_equal.lua`,
//! `retention_withdraw_face.lua`, `retention_tombstone.lua`, `retention_mark_unborn.lua`.

use std::sync::LazyLock;

use redis::Script;

use super::record::{decode_record_tagged, mac_after};
use super::{BATCH, RedisStore, Reply};
use crate::domain::{Purpose, ReviewReason};
use crate::store::retention::{TOMBSTONE_SECONDS, Tombstone};
use crate::store::{CaseRecord, CaseStatus, RetentionStore, StoreError};

/// Ends a pending case by expiry or erasure and destroys its personal data (`retention_shred.lua`).
static SHRED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_shred.lua")));
/// Forgets a final case last changed before a time (`retention_forget.lua`).
static FORGET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_forget.lua")));
/// Destroys one pending case's face on withdrawal of biometric consent (`retention_withdraw_face.lua`).
static WITHDRAW_FACE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_withdraw_face.lua")));
/// Deletes a key if it still holds a value (`retention_delete_if_equal.lua`).
static DELETE_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_delete_if_equal.lua")));
/// Leaves an account's tombstone and lists its cases (`retention_tombstone.lua`).
static TOMBSTONE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_tombstone.lua")));
/// Marks a listed case that does not exist yet (`retention_mark_unborn.lua`).
static MARK_UNBORN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_mark_unborn.lua")));

/// A case as erasure and the sweep read it.
enum Stored {
    /// Not in the store (not created yet, or forgotten).
    Missing,
    /// The record, checked, and its stored tag.
    Readable(Box<CaseRecord>, String),
    /// The record fails its integrity check or cannot be decoded: not to be rewritten.
    Unreadable,
}

/// What [`RedisStore::mark_unborn`] found.
enum Unborn {
    /// The case exists after all: handle it as a case.
    Exists,
    /// Marked now.
    Marked,
    /// Marked before.
    Unchanged,
}

impl RedisStore {
    /// Reads case `id` for a sweep or an erasure: a record that cannot be read is reported (a
    /// warning with the case id only), not an error, so that one bad record stops neither. A Redis
    /// failure is still an error.
    async fn read_stored(&self, op: &'static str, id: &str) -> Result<Stored, StoreError> {
        let pairs: Vec<Vec<u8>> = self
            .query(op, redis::cmd("HGETALL").arg(self.inner.keys.case(id)))
            .await?;
        if pairs.is_empty() {
            return Ok(Stored::Missing);
        }
        match decode_record_tagged(&self.inner.record_keys.load(), op, id, pairs) {
            Ok((record, mac)) => Ok(Stored::Readable(Box::new(record), mac)),
            Err(_) => {
                tracing::warn!(op, verification_id = %id, "case record cannot be read; skipped");
                Ok(Stored::Unreadable)
            }
        }
    }

    /// Leaves `tombstone` (of `principal`, or for any principal) on `account_id` at `now_unix` and
    /// lists the account's cases, in one step; sorted.
    async fn tombstone_and_list(
        &self,
        op: &'static str,
        account_id: &str,
        field: &str,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        let keys = &self.inner.keys;
        let mut invocation = TOMBSTONE.prepare_invoke();
        invocation
            .key(keys.account(account_id))
            .key(keys.tombstones(account_id))
            .arg(field)
            .arg(now_unix)
            .arg(TOMBSTONE_SECONDS);
        let mut ids: Vec<String> = self.eval(op, &invocation).await?;
        ids.sort();
        Ok(ids)
    }

    /// Leaves tombstone `field` of `account_id` on listed case `id` if it does not exist (yet).
    async fn mark_unborn(
        &self,
        op: &'static str,
        id: &str,
        field: &str,
        account_id: &str,
    ) -> Result<Unborn, StoreError> {
        let keys = &self.inner.keys;
        let mut invocation = MARK_UNBORN.prepare_invoke();
        invocation
            .key(keys.case(id))
            .key(keys.case_mark(id))
            .arg(field)
            .arg(account_id)
            .arg(self.inner.record_ttl_seconds);
        let reply: Vec<String> = self.eval(op, &invocation).await?;
        match reply.first().map(String::as_str) {
            Some("exists") => Ok(Unborn::Exists),
            Some("marked") => Ok(Unborn::Marked),
            Some("unchanged") => Ok(Unborn::Unchanged),
            _ => Err(super::corrupt(op, "reply")),
        }
    }

    /// Withdraws the biometric consent of one case (`retention_withdraw_face.lua`).
    async fn withdraw_face(
        &self,
        op: &'static str,
        id: &str,
        account_id: &str,
        principal: Option<&str>,
        now: &str,
    ) -> Result<Reply, StoreError> {
        self.case_script(
            op,
            &WITHDRAW_FACE,
            id,
            &[
                account_id.as_bytes(),
                principal.unwrap_or("").as_bytes(),
                now.as_bytes(),
                ReviewReason::DocumentReviewRequested.code().as_bytes(),
                // The one purpose that compares a face (`Purpose::requires_face`).
                Purpose::Anchor.as_str().as_bytes(),
            ],
        )
        .await
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
                let (old_mac, new_mac) = match self.read_stored(OP, id).await? {
                    Stored::Readable(record, mac) => {
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
                    Stored::Missing => {
                        done.push(id.clone());
                        continue;
                    }
                    // A record that cannot be read is never rewritten (its data expires by TTL).
                    Stored::Unreadable => {
                        offset += 1;
                        continue;
                    }
                };
                let reply = self
                    .case_script(
                        OP,
                        &SHRED,
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
                let reply = self.case_script(OP, &FORGET, id, &[before.as_bytes()]).await?;
                match reply.status.as_str() {
                    "forgot" => {
                        let account = reply.word(OP, 0)?;
                        let request = reply.word(OP, 1)?;
                        // The idempotency key may be claimed again (only if it still names this case).
                        let mut invocation = DELETE_IF_EQUAL.prepare_invoke();
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

#[async_trait::async_trait]
impl RetentionStore for RedisStore {
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
        let field = Tombstone::Erase.field(principal);
        let ids = self.tombstone_and_list(OP, account_id, &field, now_unix).await?;
        let now = now_unix.to_string();
        let ttl = self.inner.record_ttl_seconds.to_string();
        let principal_arg = principal.unwrap_or("");
        let mut erased = Vec::new();
        let mut settled = Vec::new();
        for id in ids {
            let mut stored = self.read_stored(OP, &id).await?;
            if matches!(stored, Stored::Missing) {
                // Not created yet (its `begin` may be between its steps): it stays listed, and its
                // creation honours the mark. Created meanwhile: read it again.
                match self.mark_unborn(OP, &id, &field, account_id).await? {
                    Unborn::Marked => {
                        erased.push(id);
                        continue;
                    }
                    Unborn::Unchanged => continue,
                    Unborn::Exists => stored = self.read_stored(OP, &id).await?,
                }
            }
            let (record, old_mac) = match stored {
                Stored::Readable(record, mac) => (*record, mac),
                Stored::Missing => continue,
                Stored::Unreadable => {
                    // Its status cannot be trusted, but erasure must be complete: its sealed data
                    // goes by key name (crypto-shredding), whatever the record claims.
                    tracing::warn!(op = OP, verification_id = %id, "shredding the data of a case whose record cannot be read");
                    let _: i64 = self
                        .query(
                            OP,
                            redis::cmd("DEL")
                                .arg(keys.pii_key(&id))
                                .arg(keys.pii_body(&id))
                                .arg(keys.face_key(&id))
                                .arg(keys.face_body(&id))
                                .arg(keys.review(&id)),
                        )
                        .await?;
                    continue;
                }
            };
            if record.account_id.as_str() == account_id
                && principal.is_none_or(|p| p == record.principal)
                && let Some(index) = &record.anchor_index
            {
                // The binding this case earned goes with the account.
                self.unbind_account(OP, index, account_id).await?;
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
                    &SHRED,
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

    async fn withdraw_biometrics(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        const OP: &str = "withdraw_biometrics";
        let field = Tombstone::NoBiometrics.field(principal);
        let ids = self.tombstone_and_list(OP, account_id, &field, now_unix).await?;
        let now = now_unix.to_string();
        let mut changed = Vec::new();
        for id in ids {
            // The script checks account, principal and status on the case itself (the index is not
            // trusted). A case not created yet gets the mark its creation honours (if its purpose
            // compares a face); one created meanwhile is asked again.
            let mut reply = self.withdraw_face(OP, &id, account_id, principal, &now).await?;
            if reply.status == "missing" {
                match self.mark_unborn(OP, &id, &field, account_id).await? {
                    Unborn::Exists => reply = self.withdraw_face(OP, &id, account_id, principal, &now).await?,
                    Unborn::Marked | Unborn::Unchanged => continue,
                }
            }
            match reply.status.as_str() {
                "withdrawn" => {
                    // A lease given while the face was there is gone: the entry is free for a claim.
                    let entry = reply.word(OP, 0)?;
                    self.park_entry(OP, &entry).await?;
                    // Its approvers may take it again (a crash before this only delays them).
                    self.unskip_voided(OP, &entry, &[reply.rest.get(1)]).await?;
                    changed.push(id);
                }
                "marked" => changed.push(id),
                _ => {}
            }
        }
        Ok(changed)
    }
}
