//! [`LimitStore`] of the embedded store: rate windows, and the anchor bindings that `finish` and a
//! final review approval make under the store's lock ([`verify_or_limit`]).

use std::collections::HashMap;

use super::MemoryStore;
use crate::domain::CaseRefusal;
use crate::store::{AnchorClaim, CaseRecord, CaseStatus, LimitStore, StoreError};

/// How long a rate-limit window's counter is kept after the window starts (longest window we use).
pub const WINDOW_KEEP_SECONDS: i64 = 86_400;

/// Start of the fixed window of `window_seconds` (at least 1) that contains `now_unix`.
fn window_start(window_seconds: u64, now_unix: i64) -> i64 {
    let window = window_seconds.max(1) as i64;
    now_unix - now_unix.rem_euclid(window)
}

/// Applies an anchor claim for `account_id`'s case `case_id`: `true` (and the binding made) unless
/// `max_accounts` other accounts are already bound under any consulted index.
fn bind_anchor(
    anchors: &mut HashMap<String, (HashMap<String, String>, i64)>,
    claim: &AnchorClaim,
    account_id: &str,
    case_id: &str,
    now_unix: i64,
) -> bool {
    let mut others: Vec<&String> = claim
        .consult
        .iter()
        .chain(std::iter::once(&claim.index))
        .filter_map(|index| anchors.get(index))
        .filter(|(_, until)| *until > now_unix)
        .flat_map(|(accounts, _)| accounts.keys())
        .filter(|a| a.as_str() != account_id)
        .collect();
    others.sort();
    others.dedup();
    if others.len() >= claim.max_accounts as usize {
        return false;
    }
    let (accounts, until) = anchors
        .entry(claim.index.clone())
        .or_insert_with(|| (HashMap::new(), 0));
    if *until <= now_unix {
        accounts.clear();
    }
    accounts.insert(account_id.to_owned(), case_id.to_owned());
    *until = now_unix.saturating_add(claim.ttl_seconds as i64);
    true
}

/// Ends a case `Verified`, or `NotVerified` with [`CaseRefusal::IdAccountLimit`] when its anchor claim is
/// refused: one step under the store's lock.
pub(super) fn verify_or_limit(
    anchors: &mut HashMap<String, (HashMap<String, String>, i64)>,
    record: &mut CaseRecord,
    claim: Option<&AnchorClaim>,
    now_unix: i64,
) -> CaseStatus {
    let Some(claim) = claim else {
        return CaseStatus::Verified;
    };
    if bind_anchor(anchors, claim, record.account_id.as_str(), &record.id, now_unix) {
        record.anchor_index = Some(claim.index.clone());
        CaseStatus::Verified
    } else {
        record.refusal = Some(CaseRefusal::IdAccountLimit);
        CaseStatus::NotVerified
    }
}

#[async_trait::async_trait]
impl LimitStore for MemoryStore {
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let start = window_start(window_seconds, now_unix);
        let mut state = self.lock()?;
        let slot = state.windows.entry(key.to_owned()).or_insert((start, 0));
        if slot.0 != start {
            *slot = (start, 0);
        }
        slot.1 += 1;
        Ok(slot.1)
    }

    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let start = window_start(window_seconds, now_unix);
        let state = self.lock()?;
        Ok(match state.windows.get(key) {
            Some((slot_start, count)) if *slot_start == start => *count,
            _ => 0,
        })
    }

    async fn anchor_accounts(&self, indexes: &[String], now_unix: i64) -> Result<Vec<String>, StoreError> {
        let state = self.lock()?;
        let mut accounts: Vec<String> = indexes
            .iter()
            .filter_map(|index| state.anchors.get(index))
            .filter(|(_, until)| *until > now_unix)
            .flat_map(|(accounts, _)| accounts.keys().cloned())
            .collect();
        accounts.sort();
        accounts.dedup();
        Ok(accounts)
    }
}
