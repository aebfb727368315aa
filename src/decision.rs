//! The decision policy: what a provider's outcome means for the case (the [`Outcome`] type is the
//! policy's own; adapters produce it), and the abuse limits that bound how often and for how many
//! accounts a person is verified ([`AnchorClaim`] is the anchor rule's claim, which the store applies). Knows
//! no provider by name and does no storage.
//!
//! Thresholds are configuration (`[decision]`); the defaults are those of docs/api.md §5: similarity >= 80
//! verified, 50–80 manual review, below 50 not verified. Limits are configuration (`[limits]`); the
//! anchor rule applies on the provider path (verification) and on the review path alike.

use std::time::Duration;

use crate::crypto::blind_index::{BlindIndexer, IndexUse};
use crate::domain::Purpose;

/// Similarity thresholds (0–100).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// At or above: verified.
    pub verified_at: f32,
    /// At or above (and below `verified_at`): a human reviews. Below: not verified.
    pub review_at: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            verified_at: 80.0,
            review_at: 50.0,
        }
    }
}

impl Thresholds {
    /// `None` when the thresholds contradict each other or leave 0–100.
    pub fn checked(self) -> Option<Self> {
        let ok = (0.0..=100.0).contains(&self.review_at)
            && (0.0..=100.0).contains(&self.verified_at)
            && self.review_at <= self.verified_at;
        ok.then_some(self)
    }
}

/// What a provider found, in the terms this policy judges: adapters produce it (from a vendor's
/// answer), [`judge`] says what it means. Carries no personal data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Two-factor check: name and ID number belong together.
    Match,
    /// Face check: the face was compared against the authority photo with this similarity (0–100).
    /// The decision policy, not the adapter, says what a similarity means.
    FaceCompared { similarity: f32 },
    /// Name and ID number do not belong together (or the ID is invalid at the authority): a hard "no".
    Mismatch,
    /// The face photo cannot be used (no face, several faces, too blurry, too dark, bad format...):
    /// the applicant should take a new one. Not a decision about the person.
    PhotoUnusable,
    /// The provider could not decide: no record, no photo on file, authority source down. A human must.
    CannotDecide,
}

impl Outcome {
    /// The kind of outcome, without any score (safe at info level and as a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::FaceCompared { .. } => "face_compared",
            Outcome::Mismatch => "mismatch",
            Outcome::PhotoUnusable => "photo_unusable",
            Outcome::CannotDecide => "cannot_decide",
        }
    }
}

/// What the gateway concludes from one provider outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    NotVerified,
    /// A human must decide.
    Review,
    /// The face photo cannot be used; the applicant should take a new one. No decision about the person.
    PhotoUnusable,
}

/// Why a case goes to review is stored with it, so the type lives in the domain.
pub use crate::domain::ReviewReason;

/// Why `outcome` sends a case of `purpose` to review (`None`: it does not).
pub fn review_reason(thresholds: Thresholds, purpose: Purpose, outcome: Outcome) -> Option<ReviewReason> {
    match (judge(thresholds, purpose, outcome), outcome) {
        (Verdict::Review, Outcome::Match) => Some(ReviewReason::FaceNotCompared),
        (Verdict::Review, Outcome::FaceCompared { .. }) => Some(ReviewReason::SimilarityGreyZone),
        (Verdict::Review, _) => Some(ReviewReason::ProviderCannotDecide),
        _ => None,
    }
}

/// Judges one provider outcome for a case of `purpose`.
pub fn judge(thresholds: Thresholds, purpose: Purpose, outcome: Outcome) -> Verdict {
    match outcome {
        // A two-factor match says nothing about a face: for an anchor, a human must look.
        Outcome::Match if purpose.requires_face() => Verdict::Review,
        Outcome::Match => Verdict::Verified,
        Outcome::FaceCompared { similarity } if similarity.is_nan() => Verdict::Review,
        Outcome::FaceCompared { similarity } if similarity >= thresholds.verified_at => Verdict::Verified,
        Outcome::FaceCompared { similarity } if similarity >= thresholds.review_at => Verdict::Review,
        Outcome::FaceCompared { .. } => Verdict::NotVerified,
        Outcome::Mismatch => Verdict::NotVerified,
        Outcome::PhotoUnusable => Verdict::PhotoUnusable,
        Outcome::CannotDecide => Verdict::Review,
    }
}

/// Judges the two-factor outcome of an applicant who chose document review instead of face
/// recognition: a clear mismatch ends the case, anything else goes to a reviewer (never verified
/// without one, since no face was compared).
pub fn judge_document_review(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Mismatch => Verdict::NotVerified,
        Outcome::Match | Outcome::CannotDecide | Outcome::PhotoUnusable | Outcome::FaceCompared { .. } => {
            Verdict::Review
        }
    }
}

/// The rate-limit windows: per account per hour, per ID number per day.
pub const ACCOUNT_WINDOW_SECONDS: u64 = 3_600;
pub const ID_WINDOW_SECONDS: u64 = 86_400;

/// Abuse limits (0 = no limit for the counters).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account_per_hour: u64,
    pub per_id_per_day: u64,
    pub max_anchor_accounts_per_id: u32,
    pub anchor_binding_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account_per_hour: 20,
            per_id_per_day: 10,
            max_anchor_accounts_per_id: 1,
            anchor_binding_ttl: Duration::from_secs(365 * 86_400),
        }
    }
}

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

/// The "accounts per ID number" rule for anchors, shared by the provider path and the review path:
/// the claim the store applies in the step that verifies the case. It consults the ID number's index
/// under every blind-index key that may still hold bindings, so a key rotation never resets the limit.
pub fn anchor_claim(indexer: &BlindIndexer, limits: Limits, id_number: &str, now_unix: i64) -> AnchorClaim {
    let lifetime = limits.anchor_binding_ttl.as_secs();
    let consult = indexer.indexes_within(IndexUse::AnchorAccounts, id_number, now_unix, lifetime);
    AnchorClaim {
        index: indexer.index(IndexUse::AnchorAccounts, id_number),
        consult,
        max_accounts: limits.max_anchor_accounts_per_id,
        ttl_seconds: lifetime.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_review_never_verifies_without_a_reviewer() {
        assert_eq!(judge_document_review(Outcome::Mismatch), Verdict::NotVerified);
        for o in [
            Outcome::Match,
            Outcome::CannotDecide,
            Outcome::PhotoUnusable,
            Outcome::FaceCompared { similarity: 99.0 },
        ] {
            assert_eq!(judge_document_review(o), Verdict::Review, "{o:?}");
        }
    }

    #[test]
    fn default_thresholds_follow_the_contract() {
        let t = Thresholds::default();
        let face = |s| judge(t, Purpose::Anchor, Outcome::FaceCompared { similarity: s });
        assert_eq!(face(92.5), Verdict::Verified);
        assert_eq!(face(80.0), Verdict::Verified);
        assert_eq!(face(79.9), Verdict::Review);
        assert_eq!(face(62.0), Verdict::Review);
        assert_eq!(face(50.0), Verdict::Review);
        assert_eq!(face(49.9), Verdict::NotVerified);
        assert_eq!(face(35.0), Verdict::NotVerified);
        assert_eq!(face(f32::NAN), Verdict::Review);
    }

    #[test]
    fn outcomes_map_to_verdicts() {
        let t = Thresholds::default();
        assert_eq!(judge(t, Purpose::ShortVideo, Outcome::Match), Verdict::Verified);
        assert_eq!(judge(t, Purpose::Anchor, Outcome::Match), Verdict::Review);
        assert_eq!(judge(t, Purpose::Radio, Outcome::Mismatch), Verdict::NotVerified);
        assert_eq!(judge(t, Purpose::Anchor, Outcome::CannotDecide), Verdict::Review);
        assert_eq!(
            judge(t, Purpose::Anchor, Outcome::PhotoUnusable),
            Verdict::PhotoUnusable
        );
    }

    #[test]
    fn review_reasons_follow_the_outcome() {
        let t = Thresholds::default();
        assert_eq!(
            review_reason(t, Purpose::Anchor, Outcome::FaceCompared { similarity: 62.0 }),
            Some(ReviewReason::SimilarityGreyZone)
        );
        assert_eq!(
            review_reason(t, Purpose::Anchor, Outcome::Match),
            Some(ReviewReason::FaceNotCompared)
        );
        assert_eq!(
            review_reason(t, Purpose::Radio, Outcome::CannotDecide),
            Some(ReviewReason::ProviderCannotDecide)
        );
        assert_eq!(review_reason(t, Purpose::Radio, Outcome::Match), None);
        assert_eq!(
            ReviewReason::from_code("DOCUMENT_REVIEW_REQUESTED"),
            Some(ReviewReason::DocumentReviewRequested)
        );
    }

    #[test]
    fn contradictory_thresholds_are_refused() {
        assert!(
            Thresholds {
                verified_at: 50.0,
                review_at: 80.0
            }
            .checked()
            .is_none()
        );
        assert!(
            Thresholds {
                verified_at: 101.0,
                review_at: 50.0
            }
            .checked()
            .is_none()
        );
        assert!(Thresholds::default().checked().is_some());
    }
}
