//! [`RetentionStore`](idgate::store::RetentionStore): the sweep expires due data and forgets old
//! records; erasure shreds an account's pending cases, marks its processing ones and removes its
//! bindings.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use idgate::domain::{AccountId, Purpose, RequestId, ReviewReason};
use idgate::store::redis::RedisStore;
use idgate::store::{
    Begin, CaseRecord, CaseStatus, CaseStore, Finish, LimitStore, RetentionStore, ReviewQueue, SealedPii, Store,
};

use super::fixtures::{NOW, claim, finish, on_every_redis, paused_at, pii, record, verify_anchor};

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

/// A new `Processing` case `id` of `account`, `purpose` and `principal`, begun at `at` (leased 30 s).
fn case_at(id: &str, account: &str, purpose: Purpose, principal: &str, at: i64) -> CaseRecord {
    CaseRecord::processing(
        id,
        AccountId::parse(account).unwrap(),
        RequestId::parse(&format!("r-{id}")).unwrap(),
        principal,
        purpose,
        "bk-1:fp",
        at,
        at + 30,
    )
}

/// Ends case `id`'s provider phase in review at `at`, with `sealed` (due at `at + 100`).
async fn to_review<S: CaseStore + ?Sized>(store: &S, id: &str, sealed: SealedPii, at: i64) -> CaseRecord {
    let finish = Finish {
        status: CaseStatus::PendingReview,
        provider: Some("p".into()),
        pii: Some((sealed, at + 100)),
        review_reason: Some(ReviewReason::ProviderCannotDecide),
        ..Finish::default()
    };
    store.finish(id, finish, at).await.unwrap()
}

/// A case whose start was under way when an erasure or a withdrawal of biometric consent came is
/// not missed: the account's tombstone marks a case begun within its processing lease after it
/// (of the principal the step was for), as the step itself marks a case still processing.
async fn a_case_begun_as_erasure_or_withdrawal_ran_is_marked<S: CaseStore + RetentionStore + ?Sized>(store: Arc<S>) {
    assert!(
        store
            .erase_account("acct-1", Some("onboarding-dev"), NOW)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.withdraw_biometrics("acct-2", None, NOW).await.unwrap().is_empty());
    let begun = [
        ("vf_erased", "acct-1", Purpose::Anchor, "onboarding-dev", NOW + 1),
        ("vf_foreign", "acct-1", Purpose::Anchor, "onboarding-other", NOW + 1),
        ("vf_later", "acct-1", Purpose::Anchor, "onboarding-dev", NOW + 31),
        ("vf_noface", "acct-2", Purpose::Anchor, "onboarding-dev", NOW + 1),
        ("vf_video", "acct-2", Purpose::ShortVideo, "onboarding-dev", NOW + 1),
    ];
    for (id, account, purpose, principal, at) in begun {
        let case = case_at(id, account, purpose, principal, at);
        assert!(matches!(store.begin(case, at).await.unwrap(), Begin::Started(_)));
    }
    let mut ended = Vec::new();
    for (id, _, _, _, at) in begun {
        let record = to_review(&*store, id, pii(), at + 1).await;
        ended.push((id, record.status, record.review_reason));
    }
    use CaseStatus::{Erased, PendingReview};
    assert_eq!(
        ended,
        [
            ("vf_erased", Erased, None),
            ("vf_foreign", PendingReview, Some(ReviewReason::ProviderCannotDecide)),
            ("vf_later", PendingReview, Some(ReviewReason::ProviderCannotDecide)),
            ("vf_noface", PendingReview, Some(ReviewReason::DocumentReviewRequested)),
            ("vf_video", PendingReview, Some(ReviewReason::ProviderCannotDecide)),
        ],
        "erased within the lease, for its principal only; an anchor on the document path"
    );
    assert!(store.sealed_pii("vf_erased").await.unwrap().is_none(), "nothing kept");
    let sealed = store.sealed_pii("vf_noface").await.unwrap().expect("identity kept");
    assert!(sealed.face.is_none(), "no face kept after the withdrawal");
    assert!(store.sealed_pii("vf_later").await.unwrap().unwrap().face.is_some());
}

/// Withdrawal of the biometric consent changes only the cases that hold or could hold a face (the
/// anchor's): a short-video or radio case needs no face and no ID-card photos, and stays on its
/// review path — ready for a reviewer, never waiting for documents nobody will send.
async fn withdrawal_changes_only_cases_that_compare_a_face<S: Store + ReviewQueue + ?Sized>(store: Arc<S>) {
    let without_face = || SealedPii { face: None, ..pii() };
    let cases = [
        ("vf_anchor", Purpose::Anchor, Some(pii())),
        ("vf_video", Purpose::ShortVideo, Some(without_face())),
        // As a record written before faces of these purposes were dropped unread.
        ("vf_radio", Purpose::Radio, Some(pii())),
        ("vf_busy", Purpose::ShortVideo, None),
    ];
    for (id, purpose, sealed) in cases.clone() {
        store
            .begin(case_at(id, "acct-1", purpose, "onboarding-dev", NOW), NOW)
            .await
            .unwrap();
        if let Some(sealed) = sealed {
            to_review(&*store, id, sealed, NOW).await;
        }
    }
    assert_eq!(
        store.withdraw_biometrics("acct-1", None, NOW + 1).await.unwrap(),
        ["vf_anchor", "vf_radio"],
        "the anchor case, and the face a radio case held"
    );
    let reason = |id: &'static str| {
        let store = store.clone();
        async move { store.get(id).await.unwrap().unwrap().review_reason }
    };
    assert_eq!(reason("vf_anchor").await, Some(ReviewReason::DocumentReviewRequested));
    assert_eq!(reason("vf_video").await, Some(ReviewReason::ProviderCannotDecide));
    assert_eq!(reason("vf_radio").await, Some(ReviewReason::ProviderCannotDecide));
    assert!(store.sealed_pii("vf_radio").await.unwrap().unwrap().face.is_none());
    // The short-video case still being processed goes to review on its own path.
    let busy = to_review(&*store, "vf_busy", without_face(), NOW + 2).await;
    assert_eq!(busy.review_reason, Some(ReviewReason::ProviderCannotDecide));
    // Reviewers get the three non-anchor cases; the anchor case waits for its documents.
    let mut claimed = Vec::new();
    for reviewer in ["rev-1", "rev-2", "rev-3", "rev-4"] {
        if let Some(claim) = store
            .claim_next(reviewer, NOW + 3, NOW + 63, false, true)
            .await
            .unwrap()
        {
            claimed.push(claim.case.id);
        }
    }
    claimed.sort();
    assert_eq!(claimed, ["vf_busy", "vf_radio", "vf_video"]);
}

on_every_backend!(
    retention_expires_due_data_and_forgets_old_records,
    erasure_shreds_pending_cases_of_one_account,
    erasure_is_scoped_marks_processing_cases_and_removes_bindings,
    a_case_begun_as_erasure_or_withdrawal_ran_is_marked,
    withdrawal_changes_only_cases_that_compare_a_face,
);

/// `begin` waits at `step` while `account`'s cases are erased (or, with `withdraw`, its biometric
/// consent withdrawn); then the case goes to review with a face. Returns the case afterwards.
async fn begin_while(store: RedisStore, step: &'static str, withdraw: bool) -> (CaseRecord, Option<SealedPii>) {
    let store = Arc::new(store);
    let ran = Arc::new(Mutex::new(false));
    let hooked = {
        let (store, ran) = (store.clone(), ran.clone());
        paused_at(&store.clone(), step, move || async move {
            if withdraw {
                store.withdraw_biometrics("acct-1", None, NOW + 1).await.unwrap();
            } else {
                store.erase_account("acct-1", None, NOW + 1).await.unwrap();
            }
            *ran.lock().unwrap() = true;
        })
    };
    let case = case_at("vf_race", "acct-1", Purpose::Anchor, "onboarding-dev", NOW);
    assert!(matches!(hooked.begin(case, NOW).await.unwrap(), Begin::Started(_)));
    assert!(*ran.lock().unwrap(), "the erasure ran while begin waited");
    let record = to_review(&*store, "vf_race", pii(), NOW + 2).await;
    (record, store.sealed_pii("vf_race").await.unwrap())
}

async fn an_erasure_before_a_case_is_listed_ends_it_erased(store: RedisStore) {
    let (record, sealed) = begin_while(store, "begin:before-index", false).await;
    assert_eq!((record.status, sealed), (CaseStatus::Erased, None));
}

async fn an_erasure_after_a_case_is_listed_ends_it_erased(store: RedisStore) {
    let (record, sealed) = begin_while(store, "begin:before-claim", false).await;
    assert_eq!((record.status, sealed), (CaseStatus::Erased, None));
}

async fn a_withdrawal_before_a_case_is_listed_keeps_no_face(store: RedisStore) {
    let (record, sealed) = begin_while(store, "begin:before-index", true).await;
    assert_eq!(record.review_reason, Some(ReviewReason::DocumentReviewRequested));
    assert!(sealed.expect("identity kept").face.is_none());
}

async fn a_withdrawal_after_a_case_is_listed_keeps_no_face(store: RedisStore) {
    let (record, sealed) = begin_while(store, "begin:before-claim", true).await;
    assert_eq!(record.review_reason, Some(ReviewReason::DocumentReviewRequested));
    assert!(sealed.expect("identity kept").face.is_none());
}

on_every_redis!(
    an_erasure_before_a_case_is_listed_ends_it_erased,
    an_erasure_after_a_case_is_listed_ends_it_erased,
    a_withdrawal_before_a_case_is_listed_keeps_no_face,
    a_withdrawal_after_a_case_is_listed_keeps_no_face,
);
