//! [`CaseStore`] of the embedded store: cases and the idempotency index, under the store's lock.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::limits::verify_or_limit;
use super::{Entry, MemoryStore, publish};
use crate::store::retention::Tombstone;
use crate::store::{Begin, CaseRecord, CaseStatus, CaseStore, Finish, ReviewState, SealedPii, StoreError};

#[async_trait::async_trait]
impl CaseStore for MemoryStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        let mut state = self.lock()?;
        let key = (
            record.account_id.as_str().to_owned(),
            record.request_id.as_str().to_owned(),
        );
        // A key whose record was forgotten by retention may be used again.
        if let Some(existing_id) = state.idempotency.get(&key).cloned()
            && let Some(entry) = state.cases.get_mut(&existing_id)
        {
            if entry.record.status == CaseStatus::Processing
                && !crate::store::lease_holds(entry.record.lease_until_unix, now_unix, record.lease_until_unix)
                && entry.record.same_request(&record)
            {
                entry.record.lease_until_unix = record.lease_until_unix;
                entry.record.updated_at_unix = now_unix;
                return Ok(Begin::Started(entry.record.clone()));
            }
            return Ok(Begin::Existing(entry.record.clone()));
        }
        // An erasure or withdrawal just before (within this case's lease) marks it, as it would have
        // if the case had been there already.
        let mut record = record;
        let left = |kind: Tombstone| {
            let tombstones = state.tombstones.get(record.account_id.as_str())?;
            [kind.field(None), kind.field(Some(&record.principal))]
                .iter()
                .filter_map(|field| tombstones.get(field))
                .copied()
                .max()
        };
        let applies = |at: Option<i64>| at.is_some_and(|at| Tombstone::applies(at, now_unix, record.lease_until_unix));
        let erase = applies(left(Tombstone::Erase));
        let face_withdrawn = record.purpose.requires_face() && applies(left(Tombstone::NoBiometrics));
        record.erase_requested |= erase;
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
                face_withdrawn,
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
            (CaseStatus::PendingReview, Some((mut pii, expires_at))) => {
                entry.record.review_reason = finish.review_reason;
                if entry.face_withdrawn {
                    // Biometric consent withdrawn meanwhile: the face is not kept.
                    pii.face = None;
                    entry.record.review_reason = Some(crate::domain::ReviewReason::DocumentReviewRequested);
                }
                entry.pii = Some(pii);
                entry.record.pii_expires_at_unix = Some(expires_at);
                entry.review = Some(ReviewState {
                    queued_at_unix: now_unix,
                    supplement_complete: finish.documents_complete,
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
}
