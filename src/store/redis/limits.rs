//! [`LimitStore`] on Redis: rate-window counters, and the anchor bindings that `finish` and a final
//! review approval make.
//!
//! A binding lives on the ID's slot, its case on another, so they cannot change in one script. The
//! step that would verify an anchor case is therefore preceded by a *candidate* entry
//! (`c:<case>:<until>`) and followed by its confirmation (`v:<case>`); a reader counts a candidate
//! only while its case is verified (confirming it on the way) or still in flight — `processing`
//! (the provider path) or `pending_review` (a reviewer's approval on its way) before `<until>` —
//! and drops it otherwise (see `bound_accounts`). So a binding exists only together with a verified
//! case, and two steps verifying one ID at the same time each see the other's candidate.
//!
//! Scripts: `limits_count.lua`, `limits_bind_candidate.lua`, `limits_confirm_binding.lua`,
//! `limits_drop_binding.lua`.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use super::RedisStore;
use crate::store::{AnchorClaim, CaseRecord, LimitStore, StoreError};

/// How long a rate-window counter outlives its window (clock skew between gateways).
pub const WINDOW_MARGIN_SECONDS: u64 = 60;

/// Counts one event in a window (`limits_count.lua`).
static COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limits_count.lua")));
/// Records a candidate binding before the step that would verify its case (`limits_bind_candidate.lua`).
static BIND_CANDIDATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limits_bind_candidate.lua")));
/// Confirms a binding whose case is verified (`limits_confirm_binding.lua`).
static CONFIRM_BINDING: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limits_confirm_binding.lua")));
/// Removes an account's binding entry (`limits_drop_binding.lua`).
static DROP_BINDING: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limits_drop_binding.lua")));

impl RedisStore {
    /// Accounts other than `account_id` bound under `indexes` (see [`BIND_CANDIDATE`]): a confirmed
    /// entry; a candidate whose case is `verified` (confirmed on the way); a live candidate (before
    /// its `<until>`) whose case is still `processing` (a provider's verdict on its way) or
    /// `pending_review` (a reviewer's approval on its way): in flight, counted to stay on the safe
    /// side. Any other candidate is stale and removed.
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
                        self.binding_script(op, &CONFIRM_BINDING, &key, &account, case, ttl_seconds)
                            .await?;
                        bound.push(account);
                    }
                    // In flight: the step that may verify it has not run yet (or is running).
                    Some("processing" | "pending_review") if until > now_unix => bound.push(account),
                    _ => {
                        self.binding_script(op, &DROP_BINDING, &key, &account, case, ttl_seconds)
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
    pub(super) async fn anchor_allows(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &AnchorClaim,
        in_flight_until: i64,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let key = self.inner.keys.binding(&claim.index);
        let mut invocation = BIND_CANDIDATE.prepare_invoke();
        invocation
            .key(&key)
            .arg(record.account_id.as_str())
            .arg(format!("c:{}:{in_flight_until}", record.id))
            .arg(claim.ttl_seconds.max(1));
        let _: i64 = self.eval(op, &invocation).await?;
        let mut consult = claim.consult.clone();
        if !consult.contains(&claim.index) {
            consult.push(claim.index.clone());
        }
        let others = self
            .bound_accounts(
                op,
                &consult,
                Some(record.account_id.as_str()),
                claim.ttl_seconds,
                now_unix,
            )
            .await?;
        if others.len() >= claim.max_accounts as usize {
            self.drop_candidate(op, record, claim).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Removes `record`'s own entry under `claim` (its candidate bound nothing).
    pub(super) async fn drop_candidate(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &AnchorClaim,
    ) -> Result<(), StoreError> {
        self.claim_script(op, &DROP_BINDING, record, claim).await
    }

    /// After the step that verified `record`: its candidate becomes a confirmed binding (if this
    /// step is lost, readers confirm it when they find the case verified).
    pub(super) async fn confirm_anchor(
        &self,
        op: &'static str,
        record: &CaseRecord,
        claim: &AnchorClaim,
    ) -> Result<(), StoreError> {
        self.claim_script(op, &CONFIRM_BINDING, record, claim).await
    }

    /// Removes `account_id`'s entry under `index`, whatever case it names (erasure).
    pub(super) async fn unbind_account(
        &self,
        op: &'static str,
        index: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        self.binding_script(op, &DROP_BINDING, &self.inner.keys.binding(index), account_id, "", 1)
            .await
    }

    /// Runs a binding script on `record`'s entry under `claim`.
    async fn claim_script(
        &self,
        op: &'static str,
        script: &Script,
        record: &CaseRecord,
        claim: &AnchorClaim,
    ) -> Result<(), StoreError> {
        let key = self.inner.keys.binding(&claim.index);
        self.binding_script(
            op,
            script,
            &key,
            record.account_id.as_str(),
            &record.id,
            claim.ttl_seconds,
        )
        .await
    }
}

#[async_trait::async_trait]
impl LimitStore for RedisStore {
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let window_seconds = window_seconds.max(1);
        let window = i64::try_from(window_seconds).unwrap_or(i64::MAX);
        let start = now_unix - now_unix.rem_euclid(window);
        let mut invocation = COUNT.prepare_invoke();
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
}
