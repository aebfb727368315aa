//! Supplements: an applicant adds review material (ID card front, back, handheld-ID photo) to a
//! pending case its onboarding client created. Idempotent by `request_id`.
//!
//! The case's sealed material is opened in memory only, merged with the new images, checked like any
//! other input and sealed again under a fresh data key; the plaintext is wiped before returning. An
//! anchor case is offered to reviewers once its supplement is complete. It must never store plaintext,
//! touch another client's case (unknown and foreign cases get the same answer), or record personal
//! data in the audit trail. Knows no gRPC, protobuf or Redis.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::crypto::envelope::KekRing;
use crate::domain::{Applicant, FaceUse, IdentityFields, Refusal, RequestId, ReviewReason, VerificationId};
use crate::live::Live;
use crate::material;
use crate::store::{AuditAction, CaseRecord, CaseStatus, ReviewError, ReviewQueue, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SupplementError {
    /// The case is no longer pending review, or the store failed.
    #[error(transparent)]
    Queue(#[from] ReviewError),
    /// Unknown case, or a case of another client (the same answer for both).
    #[error("verification not found")]
    NotFound,
    /// The supplement's images failed the local checks.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No KEK may wrap now (its epoch is over): the supplement was not stored.
    #[error("no key-encryption key may wrap now")]
    NoWrappingKek,
    #[error("internal error")]
    Internal(&'static str),
}

impl From<StoreError> for SupplementError {
    fn from(e: StoreError) -> Self {
        SupplementError::Queue(ReviewError::Store(e))
    }
}

/// The supplement use case.
pub struct Supplements {
    queue: Arc<dyn ReviewQueue>,
    store: Arc<dyn Store>,
    /// Replaced by a key reload; each step loads the keys current when it starts.
    keks: Live<KekRing>,
    audit: AuditTrail,
    /// For the image checks (an applicant's age is judged by today's date in China).
    clock: Arc<dyn Clock>,
}

impl Supplements {
    pub fn new(
        queue: Arc<dyn ReviewQueue>,
        store: Arc<dyn Store>,
        keks: impl Into<Live<KekRing>>,
        audit: AuditTrail,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            queue,
            store,
            keks: keks.into(),
            audit,
            clock,
        }
    }

    /// Adds the non-empty images of `supplied` to a pending case created by `principal`. Returns the
    /// case.
    pub async fn supplement(
        &self,
        principal: &str,
        case_id: &VerificationId,
        request_id: &RequestId,
        supplied: IdentityFields,
    ) -> Result<CaseRecord, SupplementError> {
        let (case_id, request_id) = (case_id.as_str(), request_id.as_str());
        let record = match self.store.get(case_id).await? {
            Some(record) if record.principal == principal => record,
            _ => return Err(SupplementError::NotFound),
        };
        if record.status != CaseStatus::PendingReview {
            return Err(ReviewError::NotPending.into());
        }
        let current = self.store.sealed_pii(case_id).await?.ok_or(ReviewError::NotPending)?;
        // The identity material only: the face (kept apart) is not needed to add documents.
        let mut fields = material::open_identity(&self.keks.load(), case_id, &current)
            .map_err(|_| SupplementError::Internal("opening review material"))?;
        let mut supplied = supplied;
        for (slot, new) in [
            (&mut fields.id_card_front, &mut supplied.id_card_front),
            (&mut fields.id_card_back, &mut supplied.id_card_back),
            (&mut fields.handheld_id_photo, &mut supplied.handheld_id_photo),
        ] {
            if !new.is_empty() {
                *slot = std::mem::take(new);
            }
        }
        // Every image is checked like any other (format by content, size, dimensions).
        // A case whose applicant chose document review keeps no face, and needs none.
        // Identity material sealed apart from the face holds none, and needs none here; a record written
        // before the split still holds its face, which is checked and then sealed apart.
        let face =
            if record.review_reason == Some(ReviewReason::DocumentReviewRequested) || fields.face_image.is_empty() {
                FaceUse::DocumentReview
            } else {
                FaceUse::NotCompared
            };
        let merged = Applicant::check_on(record.purpose, &face, fields, self.clock.today_cst())?;
        let complete = merged.has_all_documents();
        let sealed = material::seal_applicant(&self.keks.load(), case_id, &merged).map_err(|e| match e {
            crate::crypto::envelope::EnvelopeError::NoWrappingKek => SupplementError::NoWrappingKek,
            _ => SupplementError::Internal("sealing review material"),
        })?;
        drop(merged);
        let applied = self
            .queue
            .apply_supplement(case_id, request_id, &current.wrapped_key, sealed, complete)
            .await?;
        if applied {
            self.audit
                .record(
                    principal,
                    AuditAction::SupplementAdded,
                    Some(case_id),
                    format!("complete={complete}"),
                )
                .await?;
        }
        self.store.get(case_id).await?.ok_or(SupplementError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::test_support::png;
    use crate::domain::{AccountId, Purpose};
    use crate::store::memory::MemoryStore;
    use crate::store::{CaseStore, Finish, SealedPii};
    use crate::verify::test_support::{NOW, audit_trail, command, test_keks};

    /// A record written before faces were kept apart (one envelope holding the face too) is split on
    /// its first supplement: the identity material is sealed again without the face, and the face
    /// gets its own data key and values.
    #[tokio::test]
    async fn a_supplement_splits_a_record_written_as_one_envelope() {
        let store = Arc::new(MemoryStore::new());
        let keks = test_keks();
        let id = crate::crypto::random::id("vf_").unwrap();
        let fields = command("r-old", Purpose::Anchor).fields;
        let (wrapped_key, body) = keks
            .seal(&id, material::PII_FIELD_IDENTITY, &material::encode_fields(&fields))
            .unwrap();
        let record = CaseRecord::processing(
            id.as_str(),
            AccountId::parse("acct-1").unwrap(),
            RequestId::parse("r-old").unwrap(),
            "onboarding-dev",
            Purpose::Anchor,
            "fp",
            NOW,
            NOW + 30,
        );
        store.begin(record, NOW).await.unwrap();
        let old = SealedPii {
            wrapped_key,
            body,
            face: None,
        };
        let finish = Finish {
            status: CaseStatus::PendingReview,
            pii: Some((old, NOW + 3_600)),
            ..Finish::default()
        };
        store.finish(&id, finish, NOW).await.unwrap();

        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW + 1));
        let supplements = Supplements::new(
            store.clone(),
            store.clone(),
            keks.clone(),
            audit_trail(store.clone(), clock.clone()),
            clock,
        );
        let mut supplied = IdentityFields::default();
        supplied.id_card_front = png(640, 400);
        supplied.id_card_back = png(640, 400);
        supplied.handheld_id_photo = png(480, 640);
        supplements
            .supplement(
                "onboarding-dev",
                &VerificationId::parse(&id).unwrap(),
                &RequestId::parse("s-1").unwrap(),
                supplied,
            )
            .await
            .unwrap();
        let sealed = store.sealed_pii(&id).await.unwrap().unwrap();
        let identity = material::open_identity(&keks, &id, &sealed).unwrap();
        assert!(identity.face_image.is_empty(), "the face left the identity material");
        assert!(!identity.id_card_front.is_empty(), "the supplement is in");
        let face = sealed.face.expect("the face in values of its own");
        assert_ne!(face.wrapped_key, sealed.wrapped_key);
        let opened = keks
            .open(&id, material::PII_FIELD_FACE, &face.wrapped_key, &face.body)
            .unwrap();
        assert_eq!(opened.as_slice(), fields.face_image.as_slice());
    }
}
