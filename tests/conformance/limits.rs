//! [`LimitStore`](idgate::store::LimitStore): rate windows count and restart; anchor bindings are
//! limited per ID in the step that verifies a case, and a step that fails leaves none.

use std::sync::{Arc, Mutex};

use idgate::domain::{AccountId, CaseRefusal};
use idgate::store::redis::RedisStore;
use idgate::store::{CaseRecord, CaseStatus, CaseStore, Finish, LimitStore, ReviewQueue, ReviewVerdict, StoreError};

use super::fixtures::{NOW, claim, finish, on_every_redis, paused_at, record, verify_anchor};

async fn window_counters_count_and_restart(store: Arc<dyn LimitStore>) {
    let start = NOW - NOW.rem_euclid(60);
    assert_eq!(store.count_in_window("rl:acct:a", 60, start).await.unwrap(), 1);
    assert_eq!(store.count_in_window("rl:acct:a", 60, start + 59).await.unwrap(), 2);
    assert_eq!(store.count_in_window("rl:acct:b", 60, start + 59).await.unwrap(), 1);
    assert_eq!(
        store.count_in_window("rl:acct:a", 60, start + 60).await.unwrap(),
        1,
        "a new window"
    );
}

async fn peeking_a_window_counts_nothing(store: Arc<dyn LimitStore>) {
    let start = NOW - NOW.rem_euclid(60);
    assert_eq!(store.peek_window("rl:p", 60, start).await.unwrap(), 0);
    store.count_in_window("rl:p", 60, start).await.unwrap();
    assert_eq!(store.peek_window("rl:p", 60, start + 1).await.unwrap(), 1);
    assert_eq!(store.peek_window("rl:p", 60, start + 1).await.unwrap(), 1);
    assert_eq!(
        store.peek_window("rl:p", 60, start + 60).await.unwrap(),
        0,
        "a new window"
    );
}

async fn anchor_bindings_are_limited_per_id_in_the_verifying_step<S: CaseStore + LimitStore + ?Sized>(store: Arc<S>) {
    let a = verify_anchor(&store, "vf_a", "acct-1", claim("bi:x", &["bi:x"], 2)).await;
    assert_eq!(
        (a.status, a.anchor_index.as_deref()),
        (CaseStatus::Verified, Some("bi:x"))
    );
    let again = verify_anchor(&store, "vf_a2", "acct-1", claim("bi:x", &["bi:x"], 2)).await;
    assert_eq!(again.status, CaseStatus::Verified, "the same account again");
    let b = verify_anchor(&store, "vf_b", "acct-2", claim("bi:x", &["bi:x"], 2)).await;
    assert_eq!(b.status, CaseStatus::Verified);
    let c = verify_anchor(&store, "vf_c", "acct-3", claim("bi:x", &["bi:x"], 2)).await;
    assert_eq!(
        (c.status, c.refusal, c.anchor_index),
        (CaseStatus::NotVerified, Some(CaseRefusal::IdAccountLimit), None),
        "a third account is refused in the same step"
    );
    assert_eq!(
        store.anchor_accounts(&["bi:x".into()], NOW + 2).await.unwrap(),
        ["acct-1", "acct-2"]
    );
    // After a blind-index key rotation the old index is consulted too: the limit does not reset.
    let d = verify_anchor(&store, "vf_d", "acct-4", claim("bi2:x", &["bi2:x", "bi:x"], 2)).await;
    assert_eq!(d.status, CaseStatus::NotVerified);
    let e = verify_anchor(&store, "vf_e", "acct-4", claim("bi:y", &["bi:y"], 2)).await;
    assert_eq!(e.status, CaseStatus::Verified, "another ID");
}

async fn a_step_that_fails_leaves_no_binding<S: CaseStore + LimitStore + ?Sized>(store: Arc<S>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    store
        .finish("vf_1", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    // A stale finish (the lease was lost: the case left Processing) is refused and binds nothing.
    let stale = Finish {
        status: CaseStatus::Verified,
        anchor: Some(claim("bi:z", &["bi:z"], 1)),
        ..Finish::default()
    };
    assert!(matches!(
        store.finish("vf_1", stale, NOW + 1).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .anchor_accounts(&["bi:z".into()], NOW + 1)
            .await
            .unwrap()
            .is_empty()
    );
    let other = verify_anchor(&store, "vf_2", "acct-2", claim("bi:z", &["bi:z"], 1)).await;
    assert_eq!(other.status, CaseStatus::Verified, "nothing was left holding the ID");
}

on_every_backend!(
    window_counters_count_and_restart,
    peeking_a_window_counts_nothing,
    anchor_bindings_are_limited_per_id_in_the_verifying_step,
    a_step_that_fails_leaves_no_binding,
);

/// Queues anchor case `id` of `account` for review, and has `reviewer` claim the oldest ready case;
/// returns the id claimed.
async fn queue_and_claim(store: &RedisStore, id: &str, account: &str, reviewer: &str) -> String {
    let mut r = record(id, &format!("r-{id}"));
    r.account_id = AccountId::parse(account).unwrap();
    store.begin(r, NOW).await.unwrap();
    store
        .finish(id, finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    let claim = store
        .claim_next(reviewer, NOW + 1, NOW + 61, false, false)
        .await
        .unwrap()
        .expect("a case to review");
    claim.case.id
}

/// A reviewer's final approval of anchor case A waits just before its verifying step (its
/// candidate binding written, the case still `pending_review`), while case B of another account
/// with the same ID number is verified — by a provider (`finish`), or by another reviewer's
/// approval. With one account per ID, only one of them may end verified, and that one is bound.
async fn a_race_with_a_paused_approval(store: RedisStore, rival_is_a_review: bool) {
    let store = Arc::new(store);
    let one = || claim("bi:race", &["bi:race"], 1);
    let paused = queue_and_claim(&store, "vf_a", "acct-1", "rev-1").await;
    let other = if rival_is_a_review {
        Some(queue_and_claim(&store, "vf_b", "acct-2", "rev-2").await)
    } else {
        None
    };
    let rival_result: Arc<Mutex<Option<CaseRecord>>> = Arc::default();
    let hooked = {
        let (store, result) = (store.clone(), rival_result.clone());
        paused_at(&store.clone(), "decide:before-script", move || async move {
            let record = match other {
                Some(id) => store
                    .decide(&id, "rev-2", ReviewVerdict::Approve, 1, Some(one()), NOW + 3)
                    .await
                    .unwrap(),
                None => verify_anchor(&store, "vf_b", "acct-2", one()).await,
            };
            *result.lock().unwrap() = Some(record);
        })
    };
    let approved = hooked
        .decide(&paused, "rev-1", ReviewVerdict::Approve, 1, Some(one()), NOW + 2)
        .await
        .unwrap();
    let rival = rival_result
        .lock()
        .unwrap()
        .take()
        .expect("the rival ran while the approval waited");
    let verified: Vec<&CaseRecord> = [&approved, &rival]
        .into_iter()
        .filter(|r| r.status == CaseStatus::Verified)
        .collect();
    assert_eq!(verified.len(), 1, "one ID, one anchor account: {approved:?} {rival:?}");
    let loser = if approved.status == CaseStatus::Verified {
        &rival
    } else {
        &approved
    };
    assert_eq!(loser.refusal, Some(CaseRefusal::IdAccountLimit));
    assert_eq!(
        store.anchor_accounts(&["bi:race".into()], NOW + 4).await.unwrap(),
        [verified[0].account_id.as_str()],
        "the verified account is bound"
    );
}

async fn a_provider_verdict_during_a_paused_approval_counts_its_candidate(store: RedisStore) {
    a_race_with_a_paused_approval(store, false).await;
}

async fn a_second_approval_during_a_paused_approval_counts_its_candidate(store: RedisStore) {
    a_race_with_a_paused_approval(store, true).await;
}

on_every_redis!(
    a_provider_verdict_during_a_paused_approval_counts_its_candidate,
    a_second_approval_during_a_paused_approval_counts_its_candidate,
);
