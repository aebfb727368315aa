//! Retention and erasure: the sweep that expires a pending case's personal data when it is due and
//! forgets old records, and erasure of everything an account left in the store.
//!
//! Both end a case and destroy its sealed data in the same atomic step (crypto-shredding); watchers
//! are told. Withdrawal of biometric consent destroys only the faces of an account's pending cases
//! that hold or could hold one (anchor cases). Must never keep a case's personal data past its due
//! time or after erasure, nor change the status of a case that already has a final one.
//!
//! An erasure or a withdrawal also leaves a [`Tombstone`] on the account for
//! [`TOMBSTONE_SECONDS`]: a case whose `begin` was under way meanwhile (not yet in the store when
//! the account's cases were listed) is marked when it is created, as if it had been there.

use super::StoreError;

/// The retention sweep and erasure.
#[async_trait::async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Retention: every pending case whose personal data is due becomes `Expired` and its data is
    /// destroyed; case records older than `records_before_unix` are forgotten. Returns the number of
    /// cases expired.
    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError>;

    /// Erasure: every `PendingReview` case of `account_id` loses its sealed data (crypto-shredding)
    /// and becomes `Erased`, and every `Processing` one is marked so that it ends `Erased` instead of
    /// storing anything; watchers are told. The account's anchor bindings are removed. With
    /// `principal`, only cases that principal created are touched. Leaves a [`Tombstone::Erase`]: a
    /// case of the account (and principal) begun within its processing lease of `now_unix` is marked
    /// like a `Processing` one. A record that cannot be read (failed integrity check, a field this
    /// version cannot decode) is not rewritten, but its sealed data is destroyed all the same.
    /// Returns the ids erased (or marked).
    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Withdrawal of biometric consent: every `PendingReview` case of `account_id` (with `principal`,
    /// only the cases it created) of a purpose that compares a face
    /// ([`Purpose::requires_face`](crate::domain::Purpose::requires_face), the anchor) loses its
    /// face — wrapped data key and body — and goes on as a document-review case (review reason
    /// [`ReviewReason::DocumentReviewRequested`](crate::domain::ReviewReason::DocumentReviewRequested));
    /// approvals and a live lease given while the face was there are dropped, so the remaining
    /// decision is taken from the documents. A case of another purpose never needed a face: it keeps
    /// its review path (a face it holds is destroyed all the same). One atomic step per case. A
    /// `Processing` anchor case is marked so that, should it go to review, it keeps no face and is a
    /// document-review case (a face already sent to a provider is not recalled); so is one begun
    /// within its processing lease of `now_unix` ([`Tombstone::NoBiometrics`]). Final cases are not
    /// touched. Returns the ids changed (a case already on the document path without a face, or
    /// already marked, is not changed).
    async fn withdraw_biometrics(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError>;
}

/// How long an account's [`Tombstone`] is kept: longer than any processing lease (three times the
/// verify deadline), so that a `begin` under way when the erasure or withdrawal came finds it. A
/// case honours it only within its own processing lease ([`Tombstone::applies`]).
pub(crate) const TOMBSTONE_SECONDS: u64 = 3_600;

/// What an erasure or a withdrawal of biometric consent leaves on an account for cases begun while it
/// ran: a case of the account (of the principal, or of any principal) created within its processing
/// lease after the tombstone was left is marked, as a `Processing` case is by the step itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tombstone {
    /// The case ends `Erased`, keeping nothing.
    Erase,
    /// The case keeps no face and, if it goes to review, is a document-review case (anchor cases
    /// only: no other purpose compares a face).
    NoBiometrics,
}

impl Tombstone {
    /// The name under which a tombstone left by `principal` (`None`: for any principal) is kept.
    /// The one for any principal has no `:`, so no principal's name can spell it.
    pub(crate) fn field(self, principal: Option<&str>) -> String {
        let kind = match self {
            Tombstone::Erase => "erase",
            Tombstone::NoBiometrics => "nobio",
        };
        match principal {
            Some(principal) => format!("{kind}:{principal}"),
            None => kind.to_owned(),
        }
    }

    /// Whether a tombstone left at `at_unix` marks a case begun at `now_unix` under a processing
    /// lease until `lease_until_unix`: the case began (on its gateway's clock) no later than one
    /// lease after it — it may have been under way when the tombstone was left.
    pub(crate) fn applies(at_unix: i64, now_unix: i64, lease_until_unix: i64) -> bool {
        now_unix.saturating_sub(at_unix) <= lease_until_unix.saturating_sub(now_unix).max(0)
    }
}
