//! [`RetentionStore`] on Redis: the sweep (expire due pending cases, forget old records, re-queue
//! orphaned review cases) and erasure of an account. Audit trimming, rate windows and anchor
//! bindings need no sweep: Redis expires them.
//!
//! Scripts: `retention_shred.lua`, `retention_forget.lua`, `retention_delete_if_equal.lua`.

use std::sync::LazyLock;

use redis::Script;

use super::record::mac_after;
use super::{BATCH, RedisStore};
use crate::domain::ReviewReason;
use crate::store::{CaseStatus, RetentionStore, StoreError};

/// Ends a pending case by expiry or erasure and destroys its personal data (`retention_shred.lua`).
static SHRED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_shred.lua")));
/// Forgets a final case last changed before a time (`retention_forget.lua`).
static FORGET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_forget.lua")));
/// Deletes a key if it still holds a value (`retention_delete_if_equal.lua`).
/// Destroys one pending case's face on withdrawal of biometric consent (`retention_withdraw_face.lua`).
static WITHDRAW_FACE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_withdraw_face.lua")));
static DELETE_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("retention_delete_if_equal.lua")));

impl RedisStore {
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
                                .arg(keys.face_key(&id))
                                .arg(keys.face_body(&id))
                                .arg(keys.review(&id)),
                        )
                        .await?;
                    continue;
                }
                Err(other) => return Err(other),
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
        let mut ids: Vec<String> = self
            .query(OP, redis::cmd("SMEMBERS").arg(self.inner.keys.account(account_id)))
            .await?;
        ids.sort();
        let now = now_unix.to_string();
        let reason = ReviewReason::DocumentReviewRequested.code();
        let mut changed = Vec::new();
        for id in ids {
            // The script checks account, principal and status on the case itself (the index is not
            // trusted).
            let reply = self
                .case_script(
                    OP,
                    &WITHDRAW_FACE,
                    &id,
                    &[
                        account_id.as_bytes(),
                        principal.unwrap_or("").as_bytes(),
                        now.as_bytes(),
                        reason.as_bytes(),
                    ],
                )
                .await?;
            match reply.status.as_str() {
                "withdrawn" => {
                    // A lease given while the face was there is gone: the entry is free for a claim.
                    self.park_entry(OP, &reply.word(OP, 0)?).await?;
                    changed.push(id);
                }
                "marked" => changed.push(id),
                _ => {}
            }
        }
        Ok(changed)
    }
}
