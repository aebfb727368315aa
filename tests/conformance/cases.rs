//! [`CaseStore`](idgate::store::CaseStore): idempotency, take-over of an abandoned case, the state
//! machine, watching a case to its end.

use std::sync::Arc;

use futures_util::StreamExt;
use idgate::domain::AccountId;
use idgate::store::{Begin, CaseStatus, CaseStore, RetentionStore, StoreError};

use super::fixtures::{NOW, finish, pii, record};

async fn idempotency_key_is_claimed_once(store: Arc<dyn CaseStore>) {
    assert!(matches!(
        store.begin(record("vf_1", "r-1"), NOW).await.unwrap(),
        Begin::Started(_)
    ));
    match store.begin(record("vf_2", "r-1"), NOW).await.unwrap() {
        Begin::Existing(existing) => assert_eq!(existing.id, "vf_1"),
        other => panic!("expected the existing case, got {other:?}"),
    }
    let mut other_account = record("vf_3", "r-1");
    other_account.account_id = AccountId::parse("acct-2").unwrap();
    assert!(matches!(
        store.begin(other_account, NOW).await.unwrap(),
        Begin::Started(_)
    ));
    assert!(store.get("vf_2").await.unwrap().is_none());
}

async fn concurrent_begins_start_exactly_one(store: Arc<dyn CaseStore>) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.begin(record(&format!("vf_c{i}"), "race"), NOW).await.unwrap() })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Begin::Started(_)) {
            started += 1;
        }
    }
    assert_eq!(started, 1);
}

async fn the_state_machine_holds(store: Arc<dyn CaseStore>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    let pending = store
        .finish("vf_1", finish(CaseStatus::PendingReview, true), NOW + 1)
        .await
        .unwrap();
    assert_eq!(pending.status, CaseStatus::PendingReview);
    assert_eq!(pending.pii_expires_at_unix, Some(NOW + 100));
    assert_eq!(store.sealed_pii("vf_1").await.unwrap(), Some(pii()));
    // A case leaves Processing once.
    assert!(matches!(
        store.finish("vf_1", finish(CaseStatus::Verified, false), NOW + 2).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .finish("vf_missing", finish(CaseStatus::Verified, false), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    // Personal data is kept for a pending review only.
    store.begin(record("vf_2", "r-2"), NOW).await.unwrap();
    let done = store
        .finish("vf_2", finish(CaseStatus::Verified, true), NOW)
        .await
        .unwrap();
    assert_eq!(done.pii_expires_at_unix, None);
    assert_eq!(store.sealed_pii("vf_2").await.unwrap(), None);
}

async fn watch_follows_to_the_final_status_and_ends<S: CaseStore + RetentionStore + ?Sized>(store: Arc<S>) {
    assert!(store.watch("vf_none").await.unwrap().is_none());
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    let mut changes = store.watch("vf_1").await.unwrap().unwrap();
    assert_eq!(changes.next().await.unwrap().status, CaseStatus::Processing);
    store
        .finish("vf_1", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    assert_eq!(changes.next().await.unwrap().status, CaseStatus::PendingReview);
    assert_eq!(store.sweep(NOW + 100, 0).await.unwrap(), 1);
    assert_eq!(changes.next().await.unwrap().status, CaseStatus::Expired);
    assert!(changes.next().await.is_none(), "ends after a final status");
    // A watcher that arrives after the end sees the final status, then the end.
    let mut late = store.watch("vf_1").await.unwrap().unwrap();
    assert_eq!(late.next().await.unwrap().status, CaseStatus::Expired);
    assert!(late.next().await.is_none());
}

async fn an_abandoned_case_is_taken_over_after_its_lease(store: Arc<dyn CaseStore>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    assert!(matches!(
        store.begin(record("vf_2", "r-1"), NOW + 29).await.unwrap(),
        Begin::Existing(_)
    ));
    let mut retry = record("vf_2", "r-1");
    retry.lease_until_unix = NOW + 60;
    match store.begin(retry, NOW + 30).await.unwrap() {
        Begin::Started(case) => assert_eq!((case.id.as_str(), case.lease_until_unix), ("vf_1", NOW + 60)),
        other => panic!("expected a take-over, got {other:?}"),
    }
}

async fn a_takeover_needs_the_same_request(store: Arc<dyn CaseStore>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    let mut other_content = record("vf_2", "r-1");
    other_content.fingerprint = "bk-1:other".into();
    other_content.lease_until_unix = NOW + 90;
    assert!(
        matches!(store.begin(other_content, NOW + 31).await.unwrap(), Begin::Existing(_)),
        "another request under the same id never takes the case over"
    );
    let found = store.find("acct-1", "r-1").await.unwrap().expect("found");
    assert_eq!(
        (found.id.as_str(), found.lease_until_unix),
        ("vf_1", NOW + 30),
        "find claims nothing"
    );
    assert!(store.find("acct-1", "r-unknown").await.unwrap().is_none());
    let mut same = record("vf_3", "r-1");
    same.lease_until_unix = NOW + 90;
    assert!(matches!(store.begin(same, NOW + 31).await.unwrap(), Begin::Started(c) if c.id == "vf_1"));
}

on_every_backend!(
    idempotency_key_is_claimed_once,
    concurrent_begins_start_exactly_one,
    the_state_machine_holds,
    watch_follows_to_the_final_status_and_ends,
    an_abandoned_case_is_taken_over_after_its_lease,
    a_takeover_needs_the_same_request,
);
