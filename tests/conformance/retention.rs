//! [`RetentionStore`](idgate::store::RetentionStore): the sweep expires due data and forgets old
//! records; erasure shreds an account's pending cases, marks its processing ones and removes its
//! bindings.

use std::sync::Arc;

use futures_util::StreamExt;
use idgate::domain::AccountId;
use idgate::store::{Begin, CaseStatus, CaseStore, LimitStore, RetentionStore};

use super::fixtures::{NOW, claim, finish, record, verify_anchor};

async fn retention_expires_due_data_and_forgets_old_records<S: CaseStore + RetentionStore + ?Sized>(store: Arc<S>) {
    store.begin(record("vf_due", "r-1"), NOW).await.unwrap();
    store
        .finish("vf_due", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    store.begin(record("vf_done", "r-2"), NOW).await.unwrap();
    store
        .finish("vf_done", finish(CaseStatus::Verified, false), NOW)
        .await
        .unwrap();

    assert_eq!(store.sweep(NOW + 99, 0).await.unwrap(), 0, "not due yet");
    assert!(store.sealed_pii("vf_due").await.unwrap().is_some());
    assert_eq!(store.sweep(NOW + 100, 0).await.unwrap(), 1);
    assert_eq!(store.get("vf_due").await.unwrap().unwrap().status, CaseStatus::Expired);
    assert!(store.sealed_pii("vf_due").await.unwrap().is_none());
    assert_eq!(
        store.get("vf_done").await.unwrap().unwrap().status,
        CaseStatus::Verified
    );

    // Records past their own retention are forgotten, and so is their idempotency key.
    store.sweep(NOW + 200, NOW + 150).await.unwrap();
    assert!(store.get("vf_done").await.unwrap().is_none());
    assert!(matches!(
        store.begin(record("vf_new", "r-2"), NOW + 200).await.unwrap(),
        Begin::Started(_)
    ));
}

async fn erasure_shreds_pending_cases_of_one_account<S: CaseStore + RetentionStore + ?Sized>(store: Arc<S>) {
    store.begin(record("vf_p", "r-1"), NOW).await.unwrap();
    store
        .finish("vf_p", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    store.begin(record("vf_v", "r-2"), NOW).await.unwrap();
    store
        .finish("vf_v", finish(CaseStatus::Verified, false), NOW)
        .await
        .unwrap();
    let mut other = record("vf_o", "r-3");
    other.account_id = AccountId::parse("acct-2").unwrap();
    store.begin(other, NOW).await.unwrap();
    store
        .finish("vf_o", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    let mut watcher = store.watch("vf_p").await.unwrap().unwrap();
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::PendingReview);

    assert_eq!(
        store.erase_account("acct-1", None, NOW + 5).await.unwrap(),
        vec!["vf_p".to_string()]
    );
    assert_eq!(store.get("vf_p").await.unwrap().unwrap().status, CaseStatus::Erased);
    assert!(store.sealed_pii("vf_p").await.unwrap().is_none());
    assert_eq!(watcher.next().await.unwrap().status, CaseStatus::Erased);
    assert_eq!(
        store.get("vf_v").await.unwrap().unwrap().status,
        CaseStatus::Verified,
        "final cases untouched"
    );
    assert!(
        store.sealed_pii("vf_o").await.unwrap().is_some(),
        "other accounts untouched"
    );
    assert!(
        store.erase_account("acct-1", None, NOW + 6).await.unwrap().is_empty(),
        "idempotent"
    );
    assert!(store.erase_account("acct-unknown", None, NOW).await.unwrap().is_empty());
}

async fn erasure_is_scoped_marks_processing_cases_and_removes_bindings<
    S: CaseStore + RetentionStore + LimitStore + ?Sized,
>(
    store: Arc<S>,
) {
    verify_anchor(&store, "vf_v", "acct-1", claim("bi:e", &["bi:e"], 1)).await;
    store.begin(record("vf_p", "r-p"), NOW).await.unwrap();
    let mut foreign = record("vf_f", "r-f");
    foreign.principal = "onboarding-other".into();
    store.begin(foreign, NOW).await.unwrap();
    store
        .finish("vf_f", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    // An onboarding client erases what it created: the processing case (marked), the binding.
    let erased = store
        .erase_account("acct-1", Some("onboarding-dev"), NOW + 2)
        .await
        .unwrap();
    assert_eq!(erased, ["vf_p"]);
    assert!(
        store
            .anchor_accounts(&["bi:e".into()], NOW + 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get("vf_f").await.unwrap().unwrap().status,
        CaseStatus::PendingReview
    );
    // The processing case ends erased when its provider phase finishes, keeping nothing.
    let done = store
        .finish("vf_p", finish(CaseStatus::PendingReview, true), NOW + 3)
        .await
        .unwrap();
    assert_eq!(done.status, CaseStatus::Erased);
    assert!(store.sealed_pii("vf_p").await.unwrap().is_none());
    // An operator erases the rest.
    assert_eq!(store.erase_account("acct-1", None, NOW + 4).await.unwrap(), ["vf_f"]);
    assert!(store.sealed_pii("vf_f").await.unwrap().is_none());
}

on_every_backend!(
    retention_expires_due_data_and_forgets_old_records,
    erasure_shreds_pending_cases_of_one_account,
    erasure_is_scoped_marks_processing_cases_and_removes_bindings,
);
