//! [`ReviewQueue`] of the embedded store: a case's review state lives in its entry, so every
//! review step is one change under the store's lock.

use std::collections::HashMap;

use super::limits::verify_or_limit;
use super::{Entry, MemoryStore, end_pending};
use crate::crypto::envelope::WrappedKey;
use crate::store::{
    AnchorClaim, CaseRecord, CaseStatus, Claim, Lease, QueueStats, ReviewError, ReviewQueue, ReviewState,
    ReviewVerdict, SealedPii, StoreError,
};

/// The live lease on a case, if any.
fn live_lease(review: &ReviewState, now_unix: i64) -> Option<&Lease> {
    review.lease.as_ref().filter(|l| l.until_unix > now_unix)
}

/// The pending case `case_id` held by `reviewer` under a live lease.
fn leased<'a>(
    cases: &'a mut HashMap<String, Entry>,
    case_id: &str,
    reviewer: &str,
    now_unix: i64,
) -> Result<&'a mut Entry, ReviewError> {
    let entry = cases.get_mut(case_id).ok_or(ReviewError::NotPending)?;
    let review = match (&entry.record.status, &entry.review) {
        (CaseStatus::PendingReview, Some(review)) => review,
        _ => return Err(ReviewError::NotPending),
    };
    match live_lease(review, now_unix) {
        Some(lease) if lease.reviewer == reviewer => Ok(entry),
        Some(_) => Err(ReviewError::Foreign),
        None => Err(ReviewError::LeaseExpired),
    }
}

#[async_trait::async_trait]
impl ReviewQueue for MemoryStore {
    async fn register_reviewer_key(&self, principal: &str, public_key: [u8; 32]) -> Result<(), StoreError> {
        self.lock()?.reviewer_keys.insert(principal.to_owned(), public_key);
        Ok(())
    }

    async fn reviewer_key(&self, principal: &str) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.lock()?.reviewer_keys.get(principal).copied())
    }

    async fn claim_next(
        &self,
        reviewer: &str,
        now_unix: i64,
        lease_until_unix: i64,
        four_eyes: bool,
        anchor_needs_supplement: bool,
    ) -> Result<Option<Claim>, ReviewError> {
        let mut state = self.lock()?;
        let ready = |entry: &Entry| {
            let Some(review) = &entry.review else { return false };
            entry.record.status == CaseStatus::PendingReview
                && entry.pii.is_some()
                && !review
                    .lease
                    .as_ref()
                    .is_some_and(|l| crate::store::lease_holds(l.until_unix, now_unix, lease_until_unix))
                && !review.approvals.iter().any(|r| r == reviewer)
                && !(four_eyes && review.claimed_by.iter().any(|r| r == reviewer))
                && (review.supplement_complete || !needs_documents(&entry.record, anchor_needs_supplement))
        };
        let oldest = state
            .cases
            .values()
            .filter(|e| ready(e))
            .min_by(|a, b| {
                let key = |e: &Entry| (e.review.as_ref().map(|r| r.queued_at_unix), e.queue_order);
                key(a).cmp(&key(b))
            })
            .map(|e| e.record.id.clone());
        let Some(id) = oldest else { return Ok(None) };
        let entry = state.cases.get_mut(&id).ok_or(ReviewError::NotPending)?;
        let (Some(review), Some(pii)) = (entry.review.as_mut(), entry.pii.clone()) else {
            return Err(ReviewError::NotPending);
        };
        let lease = Lease {
            reviewer: reviewer.to_owned(),
            until_unix: lease_until_unix,
        };
        review.lease = Some(lease.clone());
        if !review.claimed_by.iter().any(|r| r == reviewer) {
            review.claimed_by.push(reviewer.to_owned());
        }
        Ok(Some(Claim {
            case: entry.record.clone(),
            pii,
            lease,
        }))
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
        let mut guard = self.lock()?;
        let state = &mut *guard;
        let entry = leased(&mut state.cases, case_id, reviewer, now_unix)?;
        match verdict {
            ReviewVerdict::Reject => end_pending(entry, CaseStatus::NotVerified, now_unix),
            ReviewVerdict::Approve => {
                let review = entry.review.as_mut().ok_or(ReviewError::NotPending)?;
                if !review.approvals.iter().any(|r| r == reviewer) {
                    review.approvals.push(reviewer.to_owned());
                }
                if review.approvals.len() >= usize::from(approvals_required.max(1)) {
                    let status = verify_or_limit(&mut state.anchors, &mut entry.record, anchor.as_ref(), now_unix);
                    end_pending(entry, status, now_unix);
                } else {
                    // Back to the queue for a second, different reviewer.
                    review.lease = None;
                    entry.record.updated_at_unix = now_unix;
                }
            }
        }
        Ok(entry.record.clone())
    }

    async fn release(&self, case_id: &str, reviewer: &str, now_unix: i64) -> Result<(), ReviewError> {
        let mut state = self.lock()?;
        let entry = leased(&mut state.cases, case_id, reviewer, now_unix)?;
        if let Some(review) = entry.review.as_mut() {
            review.lease = None;
        }
        Ok(())
    }

    async fn queue_stats(&self, now_unix: i64) -> Result<QueueStats, StoreError> {
        let state = self.lock()?;
        let mut stats = QueueStats::default();
        let mut oldest: Option<i64> = None;
        for review in state.cases.values().filter_map(|e| e.review.as_ref()) {
            if live_lease(review, now_unix).is_some() {
                stats.claimed += 1;
            } else {
                stats.pending += 1;
                oldest = Some(oldest.map_or(review.queued_at_unix, |o| o.min(review.queued_at_unix)));
            }
        }
        stats.oldest_pending_age_seconds = oldest.map_or(0, |at| (now_unix - at).max(0));
        Ok(stats)
    }

    async fn review_state(&self, case_id: &str) -> Result<Option<ReviewState>, StoreError> {
        Ok(self.lock()?.cases.get(case_id).and_then(|e| e.review.clone()))
    }

    async fn apply_supplement(
        &self,
        case_id: &str,
        request_id: &str,
        expected: &WrappedKey,
        pii: SealedPii,
        complete: bool,
    ) -> Result<bool, ReviewError> {
        let mut state = self.lock()?;
        let entry = state.cases.get_mut(case_id).ok_or(ReviewError::NotPending)?;
        let (Some(review), Some(current)) = (entry.review.as_mut(), entry.pii.as_mut()) else {
            return Err(ReviewError::NotPending);
        };
        if review.supplement_requests.iter().any(|r| r == request_id) {
            return Ok(false);
        }
        if &current.wrapped_key != expected {
            return Err(ReviewError::Store(StoreError::Conflict));
        }
        // The supplement re-seals the identity material only; the face keeps its own key.
        current.wrapped_key = pii.wrapped_key;
        current.body = pii.body;
        if pii.face.is_some() {
            current.face = pii.face;
        }
        review.supplement_requests.push(request_id.to_owned());
        review.supplement_complete |= complete;
        // Approvals and a live lease were given on the material this supplement replaced: void, so
        // that every approval that verifies the case was given on the material it holds. A new round
        // of review starts: whoever saw the old material may review the new.
        review.approvals.clear();
        review.claimed_by.clear();
        review.lease = None;
        entry.record.updated_at_unix = entry.record.updated_at_unix.max(review.queued_at_unix);
        Ok(true)
    }
}

/// Whether a case waits for the ID card front, back and handheld photo before a reviewer may take
/// it: an anchor case when the configuration asks so, and a document-review case always (without a
/// face, the documents are all a reviewer decides from).
fn needs_documents(record: &crate::store::CaseRecord, anchor_needs_supplement: bool) -> bool {
    (anchor_needs_supplement && record.purpose == crate::domain::Purpose::Anchor)
        || record.review_reason == Some(crate::domain::ReviewReason::DocumentReviewRequested)
}
