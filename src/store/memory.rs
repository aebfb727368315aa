//! The embedded store: everything in this process's memory, nothing kept across restarts.
//!
//! The quickstart default when no Redis is configured. It keeps the same rules as the production store
//! (idempotency, atomic changes, retention, crypto-shredding by dropping the data key) so that the
//! conformance tests hold for both. It must never be presented as durable.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::{
    AnchorClaim, AuditEvent, Begin, CaseRecord, CaseStatus, Claim, Finish, ID_ACCOUNT_LIMIT, Lease, QueueStats,
    ReviewError, ReviewQueue, ReviewState, ReviewVerdict, SealedPii, Store, StoreError,
};
use crate::crypto::envelope::WrappedKey;

struct Entry {
    record: CaseRecord,
    pii: Option<SealedPii>,
    /// While the case is pending review: its place in the review queue.
    review: Option<ReviewState>,
    /// Arrival order in the review queue (ties within one second keep their order).
    queue_order: u64,
    /// Tells watchers about every change of `record`.
    changes: watch::Sender<CaseRecord>,
}

#[derive(Default)]
struct State {
    cases: HashMap<String, Entry>,
    /// (account_id, request_id) → case id
    idempotency: HashMap<(String, String), String>,
    /// (sequence number, event, forget after)
    audit: Vec<(u64, AuditEvent, i64)>,
    audit_seq: u64,
    /// key → (window start, count)
    windows: HashMap<String, (i64, u64)>,
    /// blind index → (account → the verified case that bound it, forget after)
    anchors: HashMap<String, (HashMap<String, String>, i64)>,
    /// reviewer principal → X25519 public key
    reviewer_keys: HashMap<String, [u8; 32]>,
    /// Counts arrivals in the review queue.
    queue_arrivals: u64,
}

/// How long a rate-limit window's counter is kept after the window starts (longest window we use).
pub const WINDOW_KEEP_SECONDS: i64 = 86_400;

/// The in-process store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        // A poisoned lock means a panic while changing state; refuse to serve possibly half-changed
        // data rather than panic again.
        self.state.lock().map_err(|_| StoreError::Unavailable)
    }
}

fn publish(entry: &Entry) {
    entry.changes.send_replace(entry.record.clone());
}

/// Ends a pending case with a final `status`: its sealed data is destroyed (crypto-shredding), it
/// leaves the review queue, and watchers are told.
fn end_pending(entry: &mut Entry, status: CaseStatus, now_unix: i64) {
    entry.pii = None;
    entry.review = None;
    entry.record.pii_expires_at_unix = None;
    entry.record.status = status;
    entry.record.status_at_unix = now_unix;
    entry.record.updated_at_unix = now_unix;
    publish(entry);
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

/// Ends a case `Verified`, or `NotVerified` with [`ID_ACCOUNT_LIMIT`] when its anchor claim is
/// refused: one step under the store's lock.
fn verify_or_limit(
    anchors: &mut HashMap<String, (HashMap<String, String>, i64)>,
    record: &mut CaseRecord,
    claim: Option<&AnchorClaim>,
    now_unix: i64,
) -> CaseStatus {
    let Some(claim) = claim else {
        return CaseStatus::Verified;
    };
    if bind_anchor(anchors, claim, &record.account_id, &record.id, now_unix) {
        record.anchor_index = Some(claim.index.clone());
        CaseStatus::Verified
    } else {
        record.refusal = Some(ID_ACCOUNT_LIMIT.to_owned());
        CaseStatus::NotVerified
    }
}

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
                && live_lease(review, now_unix).is_none()
                && !review.approvals.iter().any(|r| r == reviewer)
                && !(four_eyes && review.claimed_by.iter().any(|r| r == reviewer))
                && !(anchor_needs_supplement
                    && entry.record.purpose == crate::domain::Purpose::Anchor
                    && !review.supplement_complete)
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
        *current = pii;
        review.supplement_requests.push(request_id.to_owned());
        review.supplement_complete |= complete;
        entry.record.updated_at_unix = entry.record.updated_at_unix.max(review.queued_at_unix);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        let mut state = self.lock()?;
        let key = (record.account_id.clone(), record.request_id.clone());
        // A key whose record was forgotten by retention may be used again.
        if let Some(existing_id) = state.idempotency.get(&key).cloned()
            && let Some(entry) = state.cases.get_mut(&existing_id)
        {
            if entry.record.status == CaseStatus::Processing
                && entry.record.lease_until_unix <= now_unix
                && entry.record.same_request(&record)
            {
                entry.record.lease_until_unix = record.lease_until_unix;
                entry.record.updated_at_unix = now_unix;
                return Ok(Begin::Started(entry.record.clone()));
            }
            return Ok(Begin::Existing(entry.record.clone()));
        }
        let (changes, _) = watch::channel(record.clone());
        state.idempotency.insert(key, record.id.clone());
        state.cases.insert(
            record.id.clone(),
            Entry {
                record: record.clone(),
                pii: None,
                review: None,
                queue_order: 0,
                changes,
            },
        );
        Ok(Begin::Started(record))
    }

    async fn find(&self, account_id: &str, request_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let state = self.lock()?;
        let key = (account_id.to_owned(), request_id.to_owned());
        Ok(state
            .idempotency
            .get(&key)
            .and_then(|id| state.cases.get(id))
            .map(|e| e.record.clone()))
    }

    async fn finish(&self, id: &str, finish: Finish, now_unix: i64) -> Result<CaseRecord, StoreError> {
        let mut guard = self.lock()?;
        let state = &mut *guard;
        state.queue_arrivals += 1;
        let arrival = state.queue_arrivals;
        let entry = state.cases.get_mut(id).ok_or(StoreError::NotFound)?;
        entry.queue_order = arrival;
        if entry.record.status != CaseStatus::Processing || !CaseStatus::Processing.may_become(finish.status) {
            return Err(StoreError::Conflict);
        }
        entry.record.provider = finish.provider;
        entry.record.refusal = finish.refusal;
        entry.record.updated_at_unix = now_unix;
        entry.record.status_at_unix = now_unix;
        let status = if entry.record.erase_requested {
            // Erasure arrived while the provider was asked: nothing is kept, nothing is bound.
            entry.record.refusal = None;
            CaseStatus::Erased
        } else if finish.status == CaseStatus::Verified {
            verify_or_limit(&mut state.anchors, &mut entry.record, finish.anchor.as_ref(), now_unix)
        } else {
            finish.status
        };
        entry.record.status = status;
        match (status, finish.pii) {
            (CaseStatus::PendingReview, Some((pii, expires_at))) => {
                entry.record.review_reason = finish.review_reason;
                entry.pii = Some(pii);
                entry.record.pii_expires_at_unix = Some(expires_at);
                entry.review = Some(ReviewState {
                    queued_at_unix: now_unix,
                    ..ReviewState::default()
                });
            }
            // Personal data is kept only for a pending review.
            _ => {
                entry.pii = None;
                entry.record.pii_expires_at_unix = None;
            }
        }
        publish(entry);
        Ok(entry.record.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self.lock()?.cases.get(id).map(|e| e.record.clone()))
    }

    async fn watch(&self, id: &str) -> Result<Option<BoxStream<'static, CaseRecord>>, StoreError> {
        let state = self.lock()?;
        let Some(entry) = state.cases.get(id) else {
            return Ok(None);
        };
        let changes = entry.changes.subscribe();
        // The current record, then each change; the stream ends right after a final status (or when
        // the case is forgotten and its sender dropped).
        let stream = futures_util::stream::unfold((changes, true, false), |(mut changes, first, done)| async move {
            if done || (!first && changes.changed().await.is_err()) {
                return None;
            }
            let record = changes.borrow_and_update().clone();
            let done = record.status.is_final();
            Some((record, (changes, false, done)))
        });
        Ok(Some(stream.boxed()))
    }

    async fn sealed_pii(&self, id: &str) -> Result<Option<SealedPii>, StoreError> {
        Ok(self.lock()?.cases.get(id).and_then(|e| e.pii.clone()))
    }

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
                state
                    .idempotency
                    .remove(&(entry.record.account_id, entry.record.request_id));
            }
        }
        state.audit.retain(|(_, _, until)| *until > now_unix);
        state.anchors.retain(|_, (_, until)| *until > now_unix);
        state
            .windows
            .retain(|_, (start, _)| *start + WINDOW_KEEP_SECONDS > now_unix);
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
        let mut erased = Vec::new();
        let mut bindings = Vec::new();
        for entry in state.cases.values_mut() {
            let record = &mut entry.record;
            if record.account_id != account_id || principal.is_some_and(|p| p != record.principal) {
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

    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        state.audit_seq += 1;
        let seq = state.audit_seq;
        let until = event.at_unix.saturating_add(retention_seconds as i64);
        state.audit.push((seq, event, until));
        Ok(())
    }

    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError> {
        let after: u64 = match after {
            Some(cursor) => cursor.parse().map_err(|_| StoreError::NotFound)?,
            None => 0,
        };
        let state = self.lock()?;
        Ok(state
            .audit
            .iter()
            .filter(|(seq, _, _)| *seq > after)
            .take(limit)
            .map(|(seq, event, _)| (seq.to_string(), event.clone()))
            .collect())
    }

    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let window = window_seconds.max(1) as i64;
        let start = now_unix - now_unix.rem_euclid(window);
        let mut state = self.lock()?;
        let slot = state.windows.entry(key.to_owned()).or_insert((start, 0));
        if slot.0 != start {
            *slot = (start, 0);
        }
        slot.1 += 1;
        Ok(slot.1)
    }

    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        let window = window_seconds.max(1) as i64;
        let start = now_unix - now_unix.rem_euclid(window);
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

    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, WrappedKey)>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .cases
            .values()
            .filter_map(|e| e.pii.as_ref().map(|p| (e.record.id.clone(), p.wrapped_key.clone())))
            .filter(|(_, w)| w.kek_id != kek_id)
            .take(limit)
            .collect())
    }

    async fn replace_wrapped_key(&self, case_id: &str, old: &WrappedKey, new: WrappedKey) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        match state.cases.get_mut(case_id).and_then(|e| e.pii.as_mut()) {
            Some(pii) if &pii.wrapped_key == old => {
                pii.wrapped_key = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
