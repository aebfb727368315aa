//! Storage of cases: one interface, implementations that pass the same conformance tests.
//!
//! What is stored (DESIGN.md §3):
//! - a [`CaseRecord`] per verification: ids, purpose, status, timestamps, which provider answered — no
//!   personal data;
//! - the idempotency index `(account_id, request_id) → case`, so a retried request gets the same answer
//!   and never calls a provider twice;
//! - for a case pending review only, its personal data sealed under a per-case data key
//!   ([`SealedPii`]); destroyed when the case reaches a final status or its retention ends.
//!
//! A store never sees plaintext personal data, never decides anything, and never talks gRPC.

pub mod memory;
pub mod redis;

use futures_util::stream::BoxStream;

use crate::crypto::envelope::{Body, WrappedKey};
use crate::domain::Purpose;

/// The life of a case. `Processing` is internal (a provider call is under way); the others are the
/// public statuses of API.md §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    Processing,
    Verified,
    NotVerified,
    PendingReview,
    Expired,
    Erased,
}

impl CaseStatus {
    /// A final status never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Verified | Self::NotVerified | Self::Expired | Self::Erased)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Verified => "verified",
            Self::NotVerified => "not_verified",
            Self::PendingReview => "pending_review",
            Self::Expired => "expired",
            Self::Erased => "erased",
        }
    }

    /// Whether moving from `self` to `next` is allowed (the case state machine).
    pub fn may_become(self, next: CaseStatus) -> bool {
        use CaseStatus::*;
        matches!(
            (self, next),
            (Processing, Verified | NotVerified | PendingReview)
                | (PendingReview, Verified | NotVerified | Expired | Erased)
        )
    }
}

/// One verification, without personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    /// `vf_` + 26 base32 characters (128 random bits).
    pub id: String,
    pub account_id: String,
    pub request_id: String,
    /// The certificate CN of the onboarding client that created the case; only it may read the case.
    pub principal: String,
    pub purpose: Purpose,
    pub status: CaseStatus,
    /// A refusal that ended the case (machine-readable reason code), e.g. `FACE_IMAGE_UNUSABLE`.
    pub refusal: Option<String>,
    /// Name of the provider that answered, if one did.
    pub provider: Option<String>,
    pub created_at_unix: i64,
    pub updated_at_unix: i64,
    /// While `Processing`: until when the gateway doing the work holds the case. After that a retry of
    /// the same request may take over (the gateway is presumed dead).
    pub lease_until_unix: i64,
    /// While `PendingReview`: when the sealed personal data must be gone.
    pub pii_expires_at_unix: Option<i64>,
}

impl CaseRecord {
    /// A new case, `Processing` (a provider call is about to start) under a lease until
    /// `lease_until_unix`.
    pub fn processing(
        id: impl Into<String>,
        account_id: impl Into<String>,
        request_id: impl Into<String>,
        principal: impl Into<String>,
        purpose: Purpose,
        now_unix: i64,
        lease_until_unix: i64,
    ) -> Self {
        Self {
            id: id.into(),
            account_id: account_id.into(),
            request_id: request_id.into(),
            principal: principal.into(),
            purpose,
            status: CaseStatus::Processing,
            refusal: None,
            provider: None,
            created_at_unix: now_unix,
            updated_at_unix: now_unix,
            lease_until_unix,
            pii_expires_at_unix: None,
        }
    }
}

/// A case's personal data, sealed (see `crypto::envelope`). The wrapped key and body are kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPii {
    pub wrapped_key: WrappedKey,
    pub body: Body,
}

/// The result of claiming an idempotency key.
#[derive(Debug)]
pub enum Begin {
    /// The caller owns the (new or taken-over) case and must finish it.
    Started(CaseRecord),
    /// The request was seen before: here is its case as it stands.
    Existing(CaseRecord),
}

/// How a case ends its provider phase.
pub struct Finish {
    pub status: CaseStatus,
    pub provider: Option<String>,
    pub refusal: Option<String>,
    /// Only with `PendingReview`: the sealed personal data and when it must be gone.
    pub pii: Option<(SealedPii, i64)>,
}

/// One entry of the append-only audit trail. No personal data: ids, principals, actions, times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at_unix: i64,
    /// Who acted: a certificate CN, or `idgate` for the gateway itself (retention, key rotation).
    pub actor: String,
    /// What happened, e.g. `erase_subject`, `case_expired`, `pii_rewrapped`.
    pub action: String,
    pub case_id: Option<String>,
    /// Short non-personal detail: counts, reason codes, key ids.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable,
    #[error("case not found")]
    NotFound,
    /// The change does not fit the case's current state (a race or a stale caller).
    #[error("the case is no longer in a state that allows this change")]
    Conflict,
}

/// The storage interface. Every change of one case is atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Claims `(record.account_id, record.request_id)` for `record` (status `Processing`), or returns the
    /// case that already holds it. A `Processing` case whose lease ran out is taken over (lease renewed).
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError>;

    /// Ends the provider phase of a `Processing` case.
    async fn finish(&self, id: &str, finish: Finish, now_unix: i64) -> Result<CaseRecord, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError>;

    /// The case now, then every change; ends after a final status. `None` for an unknown case.
    async fn watch(&self, id: &str) -> Result<Option<BoxStream<'static, CaseRecord>>, StoreError>;

    /// The sealed personal data of a pending case, if still held.
    async fn sealed_pii(&self, id: &str) -> Result<Option<SealedPii>, StoreError>;

    /// Retention: every pending case whose personal data is due becomes `Expired` and its data is
    /// destroyed; case records older than `records_before_unix` are forgotten. Returns the number of
    /// cases expired.
    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError>;

    /// Erasure: every `PendingReview` case of `account_id` loses its sealed data (crypto-shredding)
    /// and becomes `Erased`; watchers are told. Returns the ids erased.
    async fn erase_account(&self, account_id: &str, now_unix: i64) -> Result<Vec<String>, StoreError>;

    /// Appends to the audit trail, which is kept for `retention_seconds` (longer than case data).
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError>;

    /// Audit events in order of appending, starting after `after` (an id returned earlier), at most
    /// `limit`. Returns (event id, event) pairs.
    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError>;

    /// Counts one more event under `key` in the fixed window of `window_seconds` containing `now_unix`
    /// and returns the count so far in that window. Counters expire with their window.
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError>;

    /// Records that `account_id` verified as an anchor with the ID whose blind index is `id_index`.
    /// Refused (`false`) when `max_accounts` other accounts already hold it. The set is kept
    /// `ttl_seconds` after its last change, then forgotten.
    async fn bind_anchor(
        &self,
        id_index: &str,
        account_id: &str,
        max_accounts: u32,
        ttl_seconds: u64,
        now_unix: i64,
    ) -> Result<bool, StoreError>;

    /// Pending cases whose data key is wrapped by a KEK other than `kek_id` (for re-wrapping), at most
    /// `limit`.
    async fn wrapped_keys_not_under(&self, kek_id: &str, limit: usize)
    -> Result<Vec<(String, WrappedKey)>, StoreError>;

    /// Replaces a case's wrapped data key if it is still `old` (compare-and-set). `false` if the case
    /// or its data is gone or the key changed meanwhile.
    async fn replace_wrapped_key(&self, case_id: &str, old: &WrappedKey, new: WrappedKey) -> Result<bool, StoreError>;
}

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
    /// with `four_eyes`, claimed it before), and — if `anchor_needs_supplement` — an anchor case's
    /// supplement is complete. `None` when no case is ready.
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
    /// approved, otherwise releases it for the next reviewer. Returns the case afterwards.
    async fn decide(
        &self,
        case_id: &str,
        reviewer: &str,
        verdict: ReviewVerdict,
        approvals_required: u8,
        now_unix: i64,
    ) -> Result<CaseRecord, ReviewError>;

    /// Gives a leased case back to the queue.
    async fn release(&self, case_id: &str, reviewer: &str, now_unix: i64) -> Result<(), ReviewError>;

    async fn queue_stats(&self, now_unix: i64) -> Result<QueueStats, StoreError>;

    /// The review state of a case (`None` if it is not, or no longer, queued).
    async fn review_state(&self, case_id: &str) -> Result<Option<ReviewState>, StoreError>;

    /// Replaces a pending case's sealed data with `pii` (the material with a supplement merged in) if
    /// its wrapped key is still `expected` and `request_id` was not applied before. Returns `false`
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
