//! The manual-review queue: pending cases handed to reviewers under leases, oldest first, with
//! four-eyes approvals and supplements of missing material.
//!
//! Every change of one case is atomic; a decision that ends a case destroys its sealed data
//! (crypto-shredding) in the same step. Must never judge a lease on any clock but the caller's, nor
//! hand a case to two reviewers at once.

use super::{AnchorClaim, CaseRecord, SealedPii, StoreError};
use crate::crypto::envelope::WrappedKey;

/// A reviewer's hold on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub reviewer: String,
    pub until_unix: i64,
}

/// The review state of a pending case, kept apart from its [`CaseRecord`]. No personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewState {
    /// When the case entered the queue (oldest first).
    pub queued_at_unix: i64,
    pub lease: Option<Lease>,
    /// Reviewers who ever claimed the case (with four-eyes, nobody gets a case twice).
    pub claimed_by: Vec<String>,
    /// Reviewers who approved it so far.
    pub approvals: Vec<String>,
    /// Whether the ID card front, back and handheld photo have all been supplied.
    pub supplement_complete: bool,
    /// `request_id`s of supplements already applied (idempotency).
    pub supplement_requests: Vec<String>,
}

/// A claimed case: its record, its sealed data, and the lease.
#[derive(Debug, Clone)]
pub struct Claim {
    pub case: CaseRecord,
    pub pii: SealedPii,
    pub lease: Lease,
}

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewVerdict {
    Approve,
    Reject,
}

/// Figures of the review queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending cases nobody holds (ready or waiting for a supplement).
    pub pending: u64,
    /// Pending cases under a live lease.
    pub claimed: u64,
    /// Age of the oldest unclaimed pending case (0 when none).
    pub oldest_pending_age_seconds: i64,
}

/// Why a review step was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The case is not pending review any more (decided, expired, erased).
    #[error("the case is no longer pending review")]
    NotPending,
    /// The caller holds no live lease on the case (none, or it ran out).
    #[error("no live lease on this case; claim it again")]
    LeaseExpired,
    /// Another reviewer holds the case.
    #[error("the case is held by another reviewer")]
    Foreign,
}

/// The manual-review queue: leases, four-eyes approvals, supplements. Every change of one case is
/// atomic; a decision that ends a case destroys its sealed data (crypto-shredding).
#[async_trait::async_trait]
pub trait ReviewQueue: Send + Sync + 'static {
    /// Binds a reviewer's X25519 public key to their principal (replacing an earlier one).
    async fn register_reviewer_key(&self, principal: &str, public_key: [u8; 32]) -> Result<(), StoreError>;

    async fn reviewer_key(&self, principal: &str) -> Result<Option<[u8; 32]>, StoreError>;

    /// Leases the oldest ready case to `reviewer` until `lease_until_unix`. A case is ready when it is
    /// pending with its data held, nobody holds a live lease, `reviewer` has not approved it (nor,
    /// with `four_eyes`, claimed it before), and its documents (ID card front, back, handheld photo;
    /// sealed in the request or supplemented) are all in when it needs them: an anchor case if
    /// `anchor_needs_supplement`, a document-review case always. `None` when no case is ready.
    async fn claim_next(
        &self,
        reviewer: &str,
        now_unix: i64,
        lease_until_unix: i64,
        four_eyes: bool,
        anchor_needs_supplement: bool,
    ) -> Result<Option<Claim>, ReviewError>;

    /// Records `reviewer`'s verdict under their live lease. A rejection ends the case
    /// (`NotVerified`); an approval ends it (`Verified`) once `approvals_required` different reviewers
    /// approved, otherwise releases it for the next reviewer. An anchor case's final approval needs
    /// `anchor` (applied as in [`CaseStore::finish`](super::CaseStore::finish): refused by the limit,
    /// the case ends `NotVerified` with refusal [`CaseRefusal::IdAccountLimit`](crate::domain::CaseRefusal::IdAccountLimit) in the same
    /// step). Returns the case afterwards.
    async fn decide(
        &self,
        case_id: &str,
        reviewer: &str,
        verdict: ReviewVerdict,
        approvals_required: u8,
        anchor: Option<AnchorClaim>,
        now_unix: i64,
    ) -> Result<CaseRecord, ReviewError>;

    /// Gives a leased case back to the queue.
    async fn release(&self, case_id: &str, reviewer: &str, now_unix: i64) -> Result<(), ReviewError>;

    async fn queue_stats(&self, now_unix: i64) -> Result<QueueStats, StoreError>;

    /// The review state of a case (`None` if it is not, or no longer, queued).
    async fn review_state(&self, case_id: &str) -> Result<Option<ReviewState>, StoreError>;

    /// Replaces a pending case's sealed identity material with `pii` (the material with a supplement
    /// merged in) if its wrapped key is still `expected` and `request_id` was not applied before. The
    /// case's face is kept as it is unless `pii` carries one (a record written before faces were kept
    /// apart, split on its first supplement), which is then stored apart with the same lifetime. Returns `false`
    /// when the request was applied already (an idempotent retry).
    async fn apply_supplement(
        &self,
        case_id: &str,
        request_id: &str,
        expected: &WrappedKey,
        pii: SealedPii,
        complete: bool,
    ) -> Result<bool, ReviewError>;
}
