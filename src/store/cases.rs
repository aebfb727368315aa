//! Cases: the record of each verification, the idempotency index that makes a retried request get
//! the same case, and the sealed personal data a case pending review holds.
//!
//! Every change of one case is atomic. Must never hold plaintext personal data or decide an outcome:
//! the use case decides, the store keeps what it was told, under the state machine of
//! [`CaseStatus::may_become`].

use futures_util::stream::BoxStream;

use super::{AnchorClaim, StoreError};
use crate::crypto::envelope::{Body, WrappedKey};
use crate::domain::{AccountId, CaseRefusal, Purpose, RequestId, ReviewReason};

/// The life of a case. `Processing` is internal (a provider call is under way); the others are the
/// public statuses of docs/api.md §1.
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
    pub account_id: AccountId,
    pub request_id: RequestId,
    /// The certificate CN of the onboarding client that created the case; only it may read the case.
    pub principal: String,
    pub purpose: Purpose,
    pub status: CaseStatus,
    /// A refusal that ended the case, e.g. [`CaseRefusal::FaceImageUnusable`] (stored as its code).
    pub refusal: Option<CaseRefusal>,
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
    /// For a case sent to review: why, for the reviewer (stored as its code).
    pub review_reason: Option<ReviewReason>,
}

impl CaseRecord {
    /// A new case, `Processing` (a provider call is about to start) under a lease until
    /// `lease_until_unix`.
    #[allow(clippy::too_many_arguments)]
    pub fn processing(
        id: impl Into<String>,
        account_id: AccountId,
        request_id: RequestId,
        principal: impl Into<String>,
        purpose: Purpose,
        fingerprint: impl Into<String>,
        now_unix: i64,
        lease_until_unix: i64,
    ) -> Self {
        Self {
            id: id.into(),
            account_id,
            request_id,
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

/// Which sealed value of a pending case: its identity material or its face. Each is sealed under a
/// data key of its own and stored apart, so that either can be destroyed alone (GB/T 35273-2020 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiPart {
    /// Name, ID number, phone, ID card front and back, handheld photo (and, in a record written before
    /// faces were kept apart, the face too).
    Identity,
    /// The face image: destroyed as soon as no decision needs it.
    Face,
}

impl PiiPart {
    pub const ALL: [PiiPart; 2] = [PiiPart::Identity, PiiPart::Face];
}

/// One sealed value: a wrapped data key and the body it opens (see `crypto::envelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub wrapped_key: WrappedKey,
    pub body: Body,
}

/// A case's personal data, sealed (see `crypto::envelope`). The wrapped key and body are kept apart.
/// `wrapped_key` / `body` seal the identity material; `face` (if the case holds one) is sealed under
/// its own data key and stored in values of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPii {
    pub wrapped_key: WrappedKey,
    pub body: Body,
    pub face: Option<SealedValue>,
}

impl SealedPii {
    /// The sealed value of `part`, if held.
    pub fn part(&self, part: PiiPart) -> Option<SealedValue> {
        match part {
            PiiPart::Identity => Some(SealedValue {
                wrapped_key: self.wrapped_key.clone(),
                body: self.body.clone(),
            }),
            PiiPart::Face => self.face.clone(),
        }
    }
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
    pub refusal: Option<CaseRefusal>,
    /// Only with `PendingReview`: the sealed personal data and when it must be gone.
    pub pii: Option<(SealedPii, i64)>,
    /// Only with `PendingReview`: why.
    pub review_reason: Option<ReviewReason>,
    /// Only with `PendingReview`: the sealed material already holds the ID card front, back and
    /// handheld photo, so the case needs no supplement before a reviewer may take it.
    pub documents_complete: bool,
    /// Only with `Verified` for an anchor: the binding it needs. When the limit refuses it, the case
    /// ends `NotVerified` with refusal [`CaseRefusal::IdAccountLimit`] instead, in the
    /// same step.
    pub anchor: Option<AnchorClaim>,
}

/// Cases and their idempotency index.
#[async_trait::async_trait]
pub trait CaseStore: Send + Sync + 'static {
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
}
