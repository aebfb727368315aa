//! Retention and erasure: the sweep that expires a pending case's personal data when it is due and
//! forgets old records, and erasure of everything an account left in the store.
//!
//! Both end a case and destroy its sealed data in the same atomic step (crypto-shredding); watchers
//! are told. Withdrawal of biometric consent destroys only the faces of an account's pending cases. Must never keep a case's personal data past its due time or after erasure, nor change the
//! status of a case that already has a final one.

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
    /// `principal`, only cases that principal created are touched. Returns the ids erased (or marked).
    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Withdrawal of biometric consent: every `PendingReview` case of `account_id` (with `principal`,
    /// only the cases it created) loses its face — wrapped data key and body — and goes on as a
    /// document-review case (review reason
    /// [`ReviewReason::DocumentReviewRequested`](crate::domain::ReviewReason::DocumentReviewRequested));
    /// approvals and a live lease given while the face was there are dropped, so the remaining
    /// decision is taken from the documents. One atomic step per case. A `Processing` case is marked
    /// so that, should it go to review, it keeps no face and is a document-review case (a face already
    /// sent to a provider is not recalled). Final cases are not touched. Returns the ids changed (a
    /// case already on the document path without a face, or already marked, is not changed).
    async fn withdraw_biometrics(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError>;
}
