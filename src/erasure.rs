//! Erasure on request (privacy policy §6): every pending case of an account loses its sealed data
//! and becomes `ERASED`; a case still being processed ends `ERASED` instead of being stored, and so
//! does one whose start was under way when the erasure came (the store keeps a tombstone on the
//! account for that: a case of the account begun within its processing lease after the erasure ends
//! `ERASED`). A case record the store cannot read never makes the erasure fail: its sealed data is
//! destroyed all the same.
//!
//! An onboarding client erases only the cases it created; an operator erases any case of the
//! account. Every erasure is audited with ids and counts only. It must never touch another client's
//! case under `EraseScope::Own`, nor record or return personal data. Knows no gRPC, protobuf or Redis.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::clock::Clock;
use crate::domain::AccountId;
use crate::store::{AuditAction, Store, StoreError};

/// Whose cases an erasure may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseScope {
    /// Only cases the caller created (an onboarding client).
    Own,
    /// Any case of the account (an operator).
    Any,
}

impl EraseScope {
    fn as_str(self) -> &'static str {
        match self {
            EraseScope::Own => "own",
            EraseScope::Any => "any",
        }
    }
}

/// The erasure use case.
pub struct Erasure {
    store: Arc<dyn Store>,
    audit: AuditTrail,
    clock: Arc<dyn Clock>,
}

impl Erasure {
    pub fn new(store: Arc<dyn Store>, audit: AuditTrail, clock: Arc<dyn Clock>) -> Self {
        Self { store, audit, clock }
    }

    /// Erases the account's cases within `scope` of `actor`. Returns how many were erased (or marked
    /// to end erased).
    pub async fn erase_subject(
        &self,
        actor: &str,
        scope: EraseScope,
        account_id: &AccountId,
    ) -> Result<u32, StoreError> {
        self.erase_recorded_as(actor, scope, account_id, AuditAction::EraseSubject, "")
            .await
    }

    /// [`erase_subject`](Self::erase_subject), audited as `action` with `detail_prefix` before the
    /// usual detail (e.g. a consent withdrawal: the same erasure, a different cause).
    pub(crate) async fn erase_recorded_as(
        &self,
        actor: &str,
        scope: EraseScope,
        account_id: &AccountId,
        action: AuditAction,
        detail_prefix: &str,
    ) -> Result<u32, StoreError> {
        let now = self.clock.now_unix();
        let principal = match scope {
            EraseScope::Own => Some(actor),
            EraseScope::Any => None,
        };
        let erased = self.store.erase_account(account_id.as_str(), principal, now).await?;
        let detail = format!(
            "{detail_prefix}account={} scope={} cases={}",
            account_id.as_str(),
            scope.as_str(),
            erased.join(",")
        );
        self.audit.record(actor, action, None, detail).await?;
        tracing::info!(cases = erased.len(), "subject erased");
        Ok(erased.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::Purpose;
    use crate::providers::Outcome;
    use crate::store::CaseStatus;
    use crate::store::memory::MemoryStore;
    use crate::verify::test_support::*;
    use crate::verify::{Verifier, VerifyError};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// The erasure use case over `v`'s store, on the same clock.
    fn erasure(v: &Verifier, clock: &ManualClock) -> Erasure {
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        Erasure::new(v.store().clone(), audit_trail(v.store().clone(), clock.clone()), clock)
    }

    #[tokio::test]
    async fn erasure_destroys_pending_data_and_is_audited_without_personal_data() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::CannotDecide))], &clock);
        let pending = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        assert_eq!(pending.status, CaseStatus::PendingReview);
        let account = AccountId::parse("acct-1").unwrap();
        assert_eq!(
            erasure(&v, &clock)
                .erase_subject("admin-dev", EraseScope::Any, &account)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            v.get("onboarding-dev", &parsed(&pending.verification_id))
                .await
                .unwrap()
                .status,
            CaseStatus::Erased
        );
        assert!(v.store().sealed_pii(&pending.verification_id).await.unwrap().is_none());
        let audit = v.store().audit_events(None, 10).await.unwrap();
        let (_, event) = audit
            .iter()
            .find(|(_, e)| e.action == AuditAction::EraseSubject)
            .expect("audited");
        assert_eq!(event.actor, "admin-dev");
        assert!(event.detail.contains(&pending.verification_id));
        let fields = command("x", Purpose::Anchor).fields;
        assert!(!format!("{audit:?}").contains(&fields.id_number) && !format!("{audit:?}").contains(&fields.name));
    }

    #[tokio::test]
    async fn erasure_is_scoped_to_the_caller_and_complete() {
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (v, _) = verifier_on(
            store.clone(),
            &[fake("p", Ok(Outcome::CannotDecide))],
            &clock,
            settings(Duration::from_secs(3_600)),
        );
        let mine = v.verify(command("r-1", Purpose::Anchor)).await.unwrap();
        let mut theirs = command("r-2", Purpose::Anchor);
        theirs.principal = "onboarding-other".into();
        let theirs = v.verify(theirs).await.unwrap();
        let account = AccountId::parse("acct-1").unwrap();
        assert_eq!(
            erasure(&v, &clock)
                .erase_subject("onboarding-dev", EraseScope::Own, &account)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store.get(&mine.verification_id).await.unwrap().unwrap().status,
            CaseStatus::Erased
        );
        assert_eq!(
            store.get(&theirs.verification_id).await.unwrap().unwrap().status,
            CaseStatus::PendingReview,
            "another client's case is untouched"
        );
        assert_eq!(
            erasure(&v, &clock)
                .erase_subject("admin-dev", EraseScope::Any, &account)
                .await
                .unwrap(),
            1
        );
        assert!(store.sealed_pii(&theirs.verification_id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_case_still_processing_when_erasure_arrives_ends_erased() {
        let clock = ManualClock::new(NOW);
        let (p, gate) = held(Outcome::CannotDecide);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (v, _) = verifier_on(
            store.clone(),
            std::slice::from_ref(&p),
            &clock,
            settings(Duration::from_secs(3_600)),
        );
        let v = Arc::new(v);
        let running = {
            let v = v.clone();
            tokio::spawn(async move { v.verify(command("r-1", Purpose::Anchor)).await })
        };
        while p.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let account = AccountId::parse("acct-1").unwrap();
        assert_eq!(
            erasure(&v, &clock)
                .erase_subject("onboarding-dev", EraseScope::Own, &account)
                .await
                .unwrap(),
            1
        );
        gate.add_permits(1);
        let answer = running.await.unwrap().unwrap();
        assert_eq!(answer.status, CaseStatus::Erased);
        assert!(
            store.sealed_pii(&answer.verification_id).await.unwrap().is_none(),
            "nothing stored"
        );
    }

    #[tokio::test]
    async fn erasure_removes_the_accounts_anchor_binding() {
        let clock = ManualClock::new(NOW);
        let (v, _) = verifier(&[fake("p", Ok(Outcome::FaceCompared { similarity: 95.0 }))], &clock);
        assert!(v.verify(command("r-1", Purpose::Anchor)).await.unwrap().verified());
        let mut second = command("r-2", Purpose::Anchor);
        second.account_id = AccountId::parse("acct-2").unwrap();
        assert!(matches!(
            v.verify(second).await,
            Err(VerifyError::IdAccountLimit { .. })
        ));
        let account = AccountId::parse("acct-1").unwrap();
        erasure(&v, &clock)
            .erase_subject("admin-dev", EraseScope::Any, &account)
            .await
            .unwrap();
        let mut third = command("r-3", Purpose::Anchor);
        third.account_id = AccountId::parse("acct-2").unwrap();
        assert!(v.verify(third).await.unwrap().verified(), "the ID is free again");
    }
}
