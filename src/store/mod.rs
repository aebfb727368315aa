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

#[cfg(test)]
pub(crate) mod failing;
pub mod memory;
pub mod redis;

use futures_util::stream::BoxStream;

use crate::crypto::envelope::{Body, WrappedKey};
use crate::domain::Purpose;

/// The life of a case. `Processing` is internal (a provider call is under way); the others are the
/// public statuses of API.md §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CaseStatus {
    #[default]
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
            (Processing, Verified | NotVerified | PendingReview | Erased)
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
    /// A keyed fingerprint of what the request sealed (`<key id>:<hex>`, see
    /// `crypto::blind_index`): a reuse of the same `(account_id, request_id)` with other content is
    /// refused, never answered with this case's result. Never a plain hash.
    pub fingerprint: String,
    /// When `status` was last set (the decision time of a final status).
    pub status_at_unix: i64,
    /// For a `Verified` anchor case: the blind index under which its account was bound to the ID
    /// number (so erasure can remove the binding). Written in the same step as the status.
    pub anchor_index: Option<String>,
    /// Erasure arrived while the case was `Processing`: it ends `Erased` instead of storing anything.
    pub erase_requested: bool,
    /// For a case sent to review: why (a `decision::ReviewReason` code), for the reviewer.
    pub review_reason: Option<String>,
}

impl CaseRecord {
    /// A new case, `Processing` (a provider call is about to start) under a lease until
    /// `lease_until_unix`.
    #[allow(clippy::too_many_arguments)]
    pub fn processing(
        id: impl Into<String>,
        account_id: impl Into<String>,
        request_id: impl Into<String>,
        principal: impl Into<String>,
        purpose: Purpose,
        fingerprint: impl Into<String>,
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
            fingerprint: fingerprint.into(),
            status_at_unix: now_unix,
            anchor_index: None,
            erase_requested: false,
            review_reason: None,
        }
    }

    /// Whether this case holds the request `other` describes: same purpose, principal and sealed
    /// content (fingerprints compared in constant time).
    pub fn same_request(&self, other: &CaseRecord) -> bool {
        use subtle::ConstantTimeEq;
        self.purpose == other.purpose
            && self.principal == other.principal
            && bool::from(self.fingerprint.as_bytes().ct_eq(other.fingerprint.as_bytes()))
    }
}

/// Reason code stored in a case refused by the anchor-accounts-per-ID limit.
pub const ID_ACCOUNT_LIMIT: &str = "ID_ACCOUNT_LIMIT";

/// The "one ID number, a limited number of anchor accounts" rule, applied by the store in the same
/// atomic step that would make an anchor case `Verified` (the provider path's `finish` and the
/// review path's final approval). The binding exists only together with a `Verified` case: a step
/// that fails leaves none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorClaim {
    /// The blind index (current key) under which the case's account is bound.
    pub index: String,
    /// Every blind index of the same ID number to count bound accounts in (the current one and
    /// those of older blind-index keys still within the binding's lifetime), so that a key
    /// rotation never resets the limit.
    pub consult: Vec<String>,
    /// Accounts one ID number may bind.
    pub max_accounts: u32,
    /// How long a binding is kept after its last change.
    pub ttl_seconds: u64,
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
#[derive(Default)]
pub struct Finish {
    pub status: CaseStatus,
    pub provider: Option<String>,
    pub refusal: Option<String>,
    /// Only with `PendingReview`: the sealed personal data and when it must be gone.
    pub pii: Option<(SealedPii, i64)>,
    /// Only with `PendingReview`: why (a `decision::ReviewReason` code).
    pub review_reason: Option<String>,
    /// Only with `Verified` for an anchor: the binding it needs. When the limit refuses it, the case
    /// ends `NotVerified` with refusal [`ID_ACCOUNT_LIMIT`] instead, in the same step.
    pub anchor: Option<AnchorClaim>,
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
    /// A stored case record failed its integrity check (edited inside the store). Carries the case
    /// id only; such a record is never used for an answer.
    #[error("a stored case record failed its integrity check")]
    Integrity { case_id: String },
}

/// The storage interface. Every change of one case is atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Claims `(record.account_id, record.request_id)` for `record` (status `Processing`), or returns the
    /// case that already holds it. A `Processing` case whose lease ran out is taken over (lease
    /// renewed) only by the same request ([`CaseRecord::same_request`]); otherwise it is `Existing`.
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError>;

    /// The case holding `(account_id, request_id)`, if any (read only: a replay is answered from it
    /// before any limit is counted).
    async fn find(&self, account_id: &str, request_id: &str) -> Result<Option<CaseRecord>, StoreError>;

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
    /// and becomes `Erased`, and every `Processing` one is marked so that it ends `Erased` instead of
    /// storing anything; watchers are told. The account's anchor bindings are removed. With
    /// `principal`, only cases that principal created are touched. Returns the ids erased (or marked).
    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Appends to the audit trail, which is kept for `retention_seconds` (longer than case data).
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError>;

    /// Audit events in order of appending, starting after `after` (an id returned earlier), at most
    /// `limit`. Returns (event id, event) pairs.
    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError>;

    /// Counts one more event under `key` in the fixed window of `window_seconds` containing `now_unix`
    /// and returns the count so far in that window. Counters expire with their window.
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError>;

    /// The count so far under `key` in the window containing `now_unix`, without counting.
    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError>;

    /// Accounts bound (by a `Verified` anchor case) under any of `indexes`, at most those seen.
    async fn anchor_accounts(&self, indexes: &[String], now_unix: i64) -> Result<Vec<String>, StoreError>;

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
    /// approved, otherwise releases it for the next reviewer. An anchor case's final approval needs
    /// `anchor` (applied as in [`Store::finish`]: refused by the limit, the case ends `NotVerified`
    /// with [`ID_ACCOUNT_LIMIT`] in the same step). Returns the case afterwards.
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
