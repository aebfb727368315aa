//! Withdrawal of consent (PIPL Art. 15, face-recognition measures Art. 6): an
//! applicant takes back all their consent, or only the separate consent to face processing, for the
//! cases an onboarding client holds for their account.
//!
//! - [`WithdrawalScope::All`] is an erasure ([`Erasure`], reused): the pending material is destroyed
//!   and the cases end `ERASED`; a case still being processed ends `ERASED` instead of being stored.
//! - [`WithdrawalScope::BiometricOnly`] destroys the faces of the pending cases (the face's wrapped
//!   data key and body, in one store step per case) and turns the cases whose purpose compares a
//!   face (anchor) to the document-review path (review reason `DOCUMENT_REVIEW_REQUESTED`):
//!   reviewers decide from the ID card and handheld photos; approvals and a live lease given while
//!   the face was there are void. A case of another purpose (short video, radio) never needed a
//!   face nor ID-card photos: it keeps its review path. A face already sent to a provider (an anchor
//!   case still being processed, or begun while the withdrawal ran) is not recalled; that case is
//!   marked so that, should it go to review, it keeps no face and is a document-review case.
//!
//! Both leave a tombstone on the account (see `store::RetentionStore`): a case whose `begin` was
//! under way when the withdrawal came is treated as if it had been there.
//!
//! Each withdrawal is one audit event (`consent_withdrawn`) with ids and counts only. Must never
//! touch another client's case, record personal data, or fail a case that can still be decided from
//! documents. Knows no gRPC, protobuf or Redis.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::domain::AccountId;
use crate::erasure::{EraseScope, Erasure};
use crate::store::{AuditAction, Store, StoreError};

/// What the applicant withdraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalScope {
    /// Every consent: the account's pending material is erased.
    All,
    /// Only the consent to face processing: faces go, the cases continue on the document path.
    BiometricOnly,
}

impl WithdrawalScope {
    /// As written in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalScope::All => "all",
            WithdrawalScope::BiometricOnly => "biometric_only",
        }
    }
}

/// The consent-withdrawal use case.
pub struct ConsentWithdrawal {
    store: Arc<dyn Store>,
    erasure: Arc<Erasure>,
    audit: AuditTrail,
    clock: Arc<dyn Clock>,
}

impl ConsentWithdrawal {
    pub fn new(store: Arc<dyn Store>, erasure: Arc<Erasure>, audit: AuditTrail, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            erasure,
            audit,
            clock,
        }
    }

    /// Withdraws `scope` for the cases `actor` (an onboarding client) created for `account_id`.
    /// Returns how many cases changed (0 for an unknown account).
    pub async fn withdraw(
        &self,
        actor: &str,
        account_id: &AccountId,
        scope: WithdrawalScope,
    ) -> Result<u32, StoreError> {
        let prefix = format!("withdrawn={} ", scope.as_str());
        match scope {
            WithdrawalScope::All => {
                self.erasure
                    .erase_recorded_as(
                        actor,
                        EraseScope::Own,
                        account_id,
                        AuditAction::ConsentWithdrawn,
                        &prefix,
                    )
                    .await
            }
            WithdrawalScope::BiometricOnly => {
                let now = self.clock.now_unix();
                let changed = self
                    .store
                    .withdraw_biometrics(account_id.as_str(), Some(actor), now)
                    .await?;
                let detail = format!("{prefix}account={} cases={}", account_id.as_str(), changed.join(","));
                self.audit
                    .record(actor, AuditAction::ConsentWithdrawn, None, detail)
                    .await?;
                tracing::info!(cases = changed.len(), "biometric consent withdrawn");
                Ok(changed.len() as u32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::{Purpose, ReviewReason};
    use crate::providers::Outcome;
    use crate::store::CaseStatus;
    use crate::verify::Verifier;
    use crate::verify::test_support::*;

    fn withdrawal(v: &Verifier, clock: &ManualClock) -> ConsentWithdrawal {
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let audit = audit_trail(v.store().clone(), clock.clone());
        let erasure = Arc::new(Erasure::new(v.store().clone(), audit.clone(), clock.clone()));
        ConsentWithdrawal::new(v.store().clone(), erasure, audit, clock)
    }

    #[tokio::test]
    async fn biometric_only_destroys_the_face_keeps_the_case_for_document_review_and_is_audited() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::CannotDecide))], &clock);
        let pending = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        let id = pending.verification_id;
        assert!(v.store().sealed_pii(&id).await.unwrap().unwrap().face.is_some());
        let account = AccountId::parse("acct-1").unwrap();
        let w = withdrawal(&v, &clock);
        assert_eq!(
            w.withdraw("onboarding-dev", &account, WithdrawalScope::BiometricOnly)
                .await
                .unwrap(),
            1
        );
        let sealed = v.store().sealed_pii(&id).await.unwrap().expect("identity kept");
        assert!(sealed.face.is_none(), "the face is destroyed");
        let record = v.store().get(&id).await.unwrap().unwrap();
        assert_eq!(
            (record.status, record.review_reason),
            (CaseStatus::PendingReview, Some(ReviewReason::DocumentReviewRequested))
        );
        // Another client's withdrawal does not touch this client's case; nor does a repeat change it.
        assert_eq!(
            w.withdraw("onboarding-other", &account, WithdrawalScope::All)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            w.withdraw("onboarding-dev", &account, WithdrawalScope::BiometricOnly)
                .await
                .unwrap(),
            0
        );
        let unknown = AccountId::parse("acct-unknown").unwrap();
        assert_eq!(
            w.withdraw("onboarding-dev", &unknown, WithdrawalScope::BiometricOnly)
                .await
                .unwrap(),
            0
        );
        let events = v.store().audit_events(None, 100).await.unwrap();
        let withdrawn: Vec<_> = events
            .iter()
            .filter(|(_, e)| e.action == AuditAction::ConsentWithdrawn)
            .collect();
        assert_eq!(withdrawn.len(), 4);
        assert_eq!(
            withdrawn[0].1.detail,
            format!("withdrawn=biometric_only account=acct-1 cases={id}")
        );
        assert!(
            withdrawn[1]
                .1
                .detail
                .starts_with("withdrawn=all account=acct-1 scope=own cases=")
        );
        let fields = command("x", Purpose::Anchor).fields;
        for (_, event) in &events {
            let text = format!("{} {} {:?}", event.actor, event.detail, event.case_id);
            assert!(!text.contains(&fields.name) && !text.contains(&fields.id_number) && !text.contains(&fields.phone));
        }
    }

    #[tokio::test]
    async fn all_erases_the_pending_material() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::CannotDecide))], &clock);
        let pending = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        let account = AccountId::parse("acct-1").unwrap();
        let w = withdrawal(&v, &clock);
        assert_eq!(
            w.withdraw("onboarding-dev", &account, WithdrawalScope::All)
                .await
                .unwrap(),
            1
        );
        assert!(v.store().sealed_pii(&pending.verification_id).await.unwrap().is_none());
        assert_eq!(
            v.store().get(&pending.verification_id).await.unwrap().unwrap().status,
            CaseStatus::Erased
        );
    }
}
