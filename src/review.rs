//! The manual-review use case: reviewers register a key, claim cases under a lease, read them sealed
//! to their own key, and decide (one approval, or two for four-eyes) or release.
//!
//! The gateway never hands a reviewer plaintext: a claimed case's material is opened from its at-rest
//! envelope only to be re-sealed at once to the reviewer's registered X25519 key, bound to the case id
//! and the reviewer's principal (docs/api.md §2). Every claim, hand-out, decision and release is an audit
//! event (ids, principals, actions, times; no personal data). Knows no gRPC, protobuf or Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::KekRing;
use crate::crypto::sealing::{self, Context, Sealed};
use crate::decision::{Limits, anchor_claim};
use crate::domain::{CaseRefusal, Purpose, ReviewReason, VerificationId};
use crate::live::Live;
use crate::material;
use crate::store::{AnchorClaim, AuditAction};
use crate::store::{CaseStatus, QueueStats, ReviewError, ReviewQueue, ReviewVerdict, Store, StoreError};

/// Review settings (`[review]`).
#[derive(Debug, Clone, Copy)]
pub struct ReviewSettings {
    pub lease: Duration,
    /// 1, or 2 for four-eyes.
    pub approvals_required: u8,
    /// An anchor case is offered to reviewers only once its supplement is complete.
    pub anchor_needs_supplement: bool,
    /// The anchor-accounts-per-ID limit (the other counters do not apply to reviews).
    pub anchor_limits: Limits,
}

/// A case handed to a reviewer.
pub struct ClaimedCase {
    pub case_id: String,
    pub purpose: Purpose,
    pub lease_expires_unix: i64,
    /// The case's `IdentityPayload`, sealed to the reviewer's key.
    pub sealed: Sealed,
    pub submitted_at_unix: i64,
    /// The provider whose answer sent the case to review, if one answered.
    pub provider: Option<String>,
    /// Why the case went to review, if known.
    pub review_reason: Option<ReviewReason>,
    pub supplement_complete: bool,
    /// Reviewers who approved the case so far.
    pub approved_by: Vec<String>,
    pub approvals_required: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewUseError {
    #[error(transparent)]
    Queue(#[from] ReviewError),
    #[error("the public key must be a valid 32-byte X25519 key")]
    BadReviewerKey,
    #[error("register a reviewer key first")]
    NoReviewerKey,
    #[error("reason_code must be 1-64 characters of A-Z, 0-9 and _")]
    BadReasonCode,
    #[error("decision must be APPROVE or REJECT")]
    BadDecision,
    #[error("internal error")]
    Internal(&'static str),
}

impl From<StoreError> for ReviewUseError {
    fn from(e: StoreError) -> Self {
        ReviewUseError::Queue(ReviewError::Store(e))
    }
}

pub struct ReviewDesk {
    queue: Arc<dyn ReviewQueue>,
    store: Arc<dyn Store>,
    /// Replaced by a key reload; each step loads the keys current when it starts.
    keks: Live<KekRing>,
    /// For the anchor-accounts-per-ID limit, which a reviewer's approval must respect too.
    indexer: Live<BlindIndexer>,
    /// Every claim, hand-out, decision and release is recorded here.
    audit: AuditTrail,
    clock: Arc<dyn Clock>,
    settings: ReviewSettings,
}

/// The reason a reviewer gives for a decision: 1–64 characters of `A-Z`, `0-9` and `_` (recorded in
/// the audit trail, so never free text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCode(String);

impl ReasonCode {
    pub fn parse(code: &str) -> Result<Self, ReviewUseError> {
        let valid = (1..=64).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(code.to_owned()))
        } else {
            Err(ReviewUseError::BadReasonCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ReviewDesk {
    pub fn new(
        queue: Arc<dyn ReviewQueue>,
        store: Arc<dyn Store>,
        keks: impl Into<Live<KekRing>>,
        indexer: impl Into<Live<BlindIndexer>>,
        audit: AuditTrail,
        clock: Arc<dyn Clock>,
        settings: ReviewSettings,
    ) -> Self {
        Self {
            queue,
            store,
            keks: keks.into(),
            indexer: indexer.into(),
            audit,
            clock,
            settings,
        }
    }

    /// Binds `public_key` to `principal`. The key is checked by sealing to it once.
    pub async fn register_key(&self, principal: &str, public_key: &[u8]) -> Result<(), ReviewUseError> {
        let key: [u8; 32] = public_key.try_into().map_err(|_| ReviewUseError::BadReviewerKey)?;
        // Rejects keys HPKE cannot seal to (e.g. low-order points giving an all-zero shared secret).
        sealing::seal(&key, &Context::review("probe", principal), b"").map_err(|_| ReviewUseError::BadReviewerKey)?;
        self.queue.register_reviewer_key(principal, key).await?;
        self.audit
            .record(
                principal,
                AuditAction::ReviewerKeyRegistered,
                None,
                format!("key={}", hex::encode(&key[..8])),
            )
            .await?;
        Ok(())
    }

    /// Leases the next ready case to `principal`, re-sealed to their key. `None`: queue empty.
    pub async fn claim_next(&self, principal: &str) -> Result<Option<ClaimedCase>, ReviewUseError> {
        let key = self
            .queue
            .reviewer_key(principal)
            .await?
            .ok_or(ReviewUseError::NoReviewerKey)?;
        let now = self.clock.now_unix();
        let lease_until = now + self.settings.lease.as_secs() as i64;
        let four_eyes = self.settings.approvals_required >= 2;
        let Some(claim) = self
            .queue
            .claim_next(
                principal,
                now,
                lease_until,
                four_eyes,
                self.settings.anchor_needs_supplement,
            )
            .await?
        else {
            return Ok(None);
        };
        let case_id = claim.case.id.clone();
        self.audit
            .record(
                principal,
                AuditAction::CaseClaimed,
                Some(&case_id),
                format!("lease_until={lease_until}"),
            )
            .await?;
        // Identity material with the face put back in while the case still holds one; never a face
        // for a document-review case (an older record may still hold one inside its identity part).
        let with_face = claim.case.review_reason != Some(ReviewReason::DocumentReviewRequested);
        let (plaintext, has_face) = material::open_for_review(&self.keks.load(), &case_id, &claim.pii, with_face)
            .map_err(|_| ReviewUseError::Internal("opening review material"))?;
        let sealed = sealing::seal(&key, &Context::review(&case_id, principal), &plaintext)
            .map_err(|_| ReviewUseError::Internal("sealing to the reviewer"))?;
        drop(plaintext);
        self.audit
            .record(
                principal,
                AuditAction::CaseMaterialHandedOut,
                Some(&case_id),
                format!(
                    "sealed_to=reviewer_key face={}",
                    if has_face { "included" } else { "none" }
                ),
            )
            .await?;
        tracing::info!(verification_id = %case_id, reviewer = %principal, "case claimed");
        // What a console shows next to the material (no personal data).
        let state = self.queue.review_state(&case_id).await?.unwrap_or_default();
        Ok(Some(ClaimedCase {
            case_id,
            purpose: claim.case.purpose,
            lease_expires_unix: claim.lease.until_unix,
            sealed,
            submitted_at_unix: claim.case.created_at_unix,
            provider: claim.case.provider,
            review_reason: claim.case.review_reason,
            supplement_complete: state.supplement_complete,
            approved_by: state.approvals,
            approvals_required: self.settings.approvals_required.max(1),
        }))
    }

    /// Records a decision under the caller's live lease. Returns the case's status afterwards
    /// (`PendingReview` while a second approval is due).
    pub async fn decide(
        &self,
        principal: &str,
        case_id: &VerificationId,
        verdict: ReviewVerdict,
        reason_code: &ReasonCode,
    ) -> Result<CaseStatus, ReviewUseError> {
        let case_id = case_id.as_str();
        let now = self.clock.now_unix();
        // An approval of an anchor case carries the anchor-accounts-per-ID claim; the queue applies it
        // in the same step that verifies the case (only if this approval is the last one needed).
        let anchor = if verdict == ReviewVerdict::Approve {
            self.anchor_claim_for(case_id, now).await?
        } else {
            None
        };
        let record = self
            .queue
            .decide(
                case_id,
                principal,
                verdict,
                self.settings.approvals_required,
                anchor,
                now,
            )
            .await?;
        let limited = record.refusal == Some(CaseRefusal::IdAccountLimit);
        let verdict_name = match (verdict, limited) {
            (_, true) => "approve_refused_by_id_account_limit",
            (ReviewVerdict::Approve, false) => "approve",
            (ReviewVerdict::Reject, false) => "reject",
        };
        let detail = format!(
            "decision={verdict_name} reason={} status={}",
            reason_code.as_str(),
            record.status.as_str()
        );
        self.audit
            .record(principal, AuditAction::CaseDecided, Some(case_id), detail)
            .await?;
        tracing::info!(verification_id = %case_id, reviewer = %principal, status = record.status.as_str(), "review decision");
        Ok(record.status)
    }

    /// The anchor claim for approving `case_id` (`None` unless it is a pending anchor case): the ID
    /// number is read from the case's sealed material, in memory only. A pending anchor case whose
    /// sealed data is gone (evicted by a Redis that is not `noeviction`, or due and not yet swept) is
    /// refused as no longer pending: approving it without the anchor-accounts-per-ID limit would
    /// verify an account the limit may refuse.
    async fn anchor_claim_for(&self, case_id: &str, now: i64) -> Result<Option<AnchorClaim>, ReviewUseError> {
        let Some(record) = self.store.get(case_id).await? else {
            return Ok(None);
        };
        if record.purpose != Purpose::Anchor || record.status != CaseStatus::PendingReview {
            return Ok(None);
        }
        let Some(pii) = self.store.sealed_pii(case_id).await? else {
            tracing::warn!(verification_id = %case_id, "approval refused: the pending anchor case holds no sealed data (evicted or due); the anchor limit cannot be applied");
            return Err(ReviewError::NotPending.into());
        };
        let fields = material::open_identity(&self.keks.load(), case_id, &pii)
            .map_err(|_| ReviewUseError::Internal("opening review material"))?;
        Ok(Some(anchor_claim(
            &self.indexer.load(),
            self.settings.anchor_limits,
            &fields.id_number,
            now,
        )))
    }

    pub async fn release(&self, principal: &str, case_id: &VerificationId) -> Result<(), ReviewUseError> {
        let case_id = case_id.as_str();
        self.queue.release(case_id, principal, self.clock.now_unix()).await?;
        self.audit
            .record(principal, AuditAction::CaseReleased, Some(case_id), String::new())
            .await?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<QueueStats, ReviewUseError> {
        Ok(self.queue.queue_stats(self.clock.now_unix()).await?)
    }
}
