//! [`RetentionStore`] of the embedded store: the sweep (which also drops audit events, rate windows,
//! bindings and tombstones past their time, as Redis does by TTL), erasure and withdrawal of the
//! biometric consent (each leaving its tombstone, honoured by `begin`).

use super::limits::WINDOW_KEEP_SECONDS;
use super::{MemoryStore, State, end_pending};
use crate::domain::ReviewReason;
use crate::store::retention::{TOMBSTONE_SECONDS, Tombstone};
use crate::store::{CaseStatus, RetentionStore, StoreError};

/// Leaves tombstone `field` on `account_id` at `now_unix`, for cases begun meanwhile.
fn leave_tombstone(state: &mut State, account_id: &str, field: String, now_unix: i64) {
    let at = state
        .tombstones
        .entry(account_id.to_owned())
        .or_default()
        .entry(field)
        .or_insert(now_unix);
    *at = (*at).max(now_unix);
}

#[async_trait::async_trait]
impl RetentionStore for MemoryStore {
    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let mut expired = 0;
        for entry in state.cases.values_mut() {
            let due = entry.record.pii_expires_at_unix.is_some_and(|at| at <= now_unix);
            if entry.record.status == CaseStatus::PendingReview && due {
                end_pending(entry, CaseStatus::Expired, now_unix);
                expired += 1;
            }
        }
        let old: Vec<String> = state
            .cases
            .values()
            .filter(|e| e.record.status.is_final() && e.record.updated_at_unix < records_before_unix)
            .map(|e| e.record.id.clone())
            .collect();
        for id in old {
            if let Some(entry) = state.cases.remove(&id) {
                state.idempotency.remove(&(
                    entry.record.account_id.as_str().to_owned(),
                    entry.record.request_id.as_str().to_owned(),
                ));
            }
        }
        state.audit.retain(|(_, _, until)| *until > now_unix);
        state.anchors.retain(|_, (_, until)| *until > now_unix);
        state
            .windows
            .retain(|_, (start, _)| *start + WINDOW_KEEP_SECONDS > now_unix);
        let kept_after = now_unix.saturating_sub(TOMBSTONE_SECONDS as i64);
        state.tombstones.retain(|_, fields| {
            fields.retain(|_, at| *at > kept_after);
            !fields.is_empty()
        });
        Ok(expired)
    }

    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut guard = self.lock()?;
        let state = &mut *guard;
        leave_tombstone(state, account_id, Tombstone::Erase.field(principal), now_unix);
        let mut erased = Vec::new();
        let mut bindings = Vec::new();
        for entry in state.cases.values_mut() {
            let record = &mut entry.record;
            if record.account_id.as_str() != account_id || principal.is_some_and(|p| p != record.principal) {
                continue;
            }
            if let Some(index) = record.anchor_index.take() {
                bindings.push(index);
            }
            match record.status {
                CaseStatus::PendingReview => {
                    end_pending(entry, CaseStatus::Erased, now_unix);
                    erased.push(entry.record.id.clone());
                }
                CaseStatus::Processing if !record.erase_requested => {
                    record.erase_requested = true;
                    erased.push(record.id.clone());
                }
                _ => {}
            }
        }
        for index in bindings {
            if let Some((accounts, _)) = state.anchors.get_mut(&index) {
                accounts.remove(account_id);
            }
        }
        erased.sort();
        Ok(erased)
    }

    async fn withdraw_biometrics(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock()?;
        leave_tombstone(
            &mut state,
            account_id,
            Tombstone::NoBiometrics.field(principal),
            now_unix,
        );
        let mut changed = Vec::new();
        for entry in state.cases.values_mut() {
            let record = &mut entry.record;
            if record.account_id.as_str() != account_id || principal.is_some_and(|p| p != record.principal) {
                continue;
            }
            if !record.purpose.requires_face() {
                // It never needed a face: it keeps its path, and loses a face it should not hold.
                if record.status == CaseStatus::PendingReview
                    && entry.pii.as_mut().is_some_and(|pii| pii.face.take().is_some())
                {
                    record.updated_at_unix = now_unix;
                    changed.push(record.id.clone());
                    super::publish(entry);
                }
                continue;
            }
            if record.status == CaseStatus::Processing && !record.erase_requested {
                // Its face may be with a provider (not recalled); it is not kept if the case goes to review.
                if !entry.face_withdrawn {
                    entry.face_withdrawn = true;
                    changed.push(record.id.clone());
                }
                continue;
            }
            if record.status != CaseStatus::PendingReview {
                continue;
            }
            let had_face = entry.pii.as_mut().is_some_and(|pii| pii.face.take().is_some());
            if !had_face && record.review_reason == Some(ReviewReason::DocumentReviewRequested) {
                continue;
            }
            record.review_reason = Some(ReviewReason::DocumentReviewRequested);
            record.updated_at_unix = now_unix;
            if let Some(review) = entry.review.as_mut() {
                review.approvals.clear();
                review.lease = None;
            }
            changed.push(record.id.clone());
            super::publish(entry);
        }
        changed.sort();
        Ok(changed)
    }
}
