//! The storage conformance suite: every backend must pass the same tests. Written against
//! `Arc<dyn Store>` so that each backend only supplies a constructor: embedded, Redis standalone and
//! Redis Cluster (real `redis-server` processes from `support::redis`, one per test binary, each test
//! under its own key prefix).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::sync::Arc;

use futures_util::StreamExt;
use idgate::crypto::envelope::WrappedKey;
use idgate::domain::Purpose;
use idgate::store::memory::MemoryStore;
use idgate::store::{AnchorClaim, AuditEvent, Begin, CaseRecord, CaseStatus, Finish, SealedPii, Store, StoreError};

const NOW: i64 = 1_795_000_000;

fn record(id: &str, request_id: &str) -> CaseRecord {
    CaseRecord::processing(
        id,
        "acct-1",
        request_id,
        "onboarding-dev",
        Purpose::Anchor,
        "bk-1:fp",
        NOW,
        NOW + 30,
    )
}

fn pii() -> SealedPii {
    support::sealed_pii()
}

fn finish(status: CaseStatus, with_pii: bool) -> Finish {
    Finish {
        status,
        provider: Some("p".into()),
        refusal: None,
        pii: with_pii.then(|| (pii(), NOW + 100)),
        anchor: None,
        review_reason: None,
    }
}

async fn idempotency_key_is_claimed_once(store: Arc<dyn Store>) {
    assert!(matches!(
        store.begin(record("vf_1", "r-1"), NOW).await.unwrap(),
        Begin::Started(_)
    ));
    match store.begin(record("vf_2", "r-1"), NOW).await.unwrap() {
        Begin::Existing(existing) => assert_eq!(existing.id, "vf_1"),
        other => panic!("expected the existing case, got {other:?}"),
    }
    let mut other_account = record("vf_3", "r-1");
    other_account.account_id = "acct-2".into();
    assert!(matches!(
        store.begin(other_account, NOW).await.unwrap(),
        Begin::Started(_)
    ));
    assert!(store.get("vf_2").await.unwrap().is_none());
}

async fn concurrent_begins_start_exactly_one(store: Arc<dyn Store>) {
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

async fn the_state_machine_holds(store: Arc<dyn Store>) {
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

async fn watch_follows_to_the_final_status_and_ends(store: Arc<dyn Store>) {
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

async fn retention_expires_due_data_and_forgets_old_records(store: Arc<dyn Store>) {
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

async fn an_abandoned_case_is_taken_over_after_its_lease(store: Arc<dyn Store>) {
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

async fn erasure_shreds_pending_cases_of_one_account(store: Arc<dyn Store>) {
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
    other.account_id = "acct-2".into();
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

async fn audit_trail_is_append_only_and_paged(store: Arc<dyn Store>) {
    for i in 0..5 {
        let event = AuditEvent {
            at_unix: NOW + i,
            actor: "admin-dev".into(),
            action: "erase_subject".into(),
            case_id: Some(format!("vf_{i}")),
            detail: format!("n={i}"),
        };
        store.append_audit(event, 86_400).await.unwrap();
    }
    let first = store.audit_events(None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|(_, e)| e.detail.as_str()).collect::<Vec<_>>(),
        ["n=0", "n=1", "n=2"]
    );
    let rest = store.audit_events(Some(&first[2].0), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|(_, e)| e.at_unix).collect::<Vec<_>>(),
        [NOW + 3, NOW + 4]
    );
    assert_eq!(rest[0].1.case_id.as_deref(), Some("vf_3"));
    assert!(store.audit_events(Some(&rest[1].0), 10).await.unwrap().is_empty());
}

async fn window_counters_count_and_restart(store: Arc<dyn Store>) {
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

fn claim(index: &str, consult: &[&str], max: u32) -> AnchorClaim {
    AnchorClaim {
        index: index.into(),
        consult: consult.iter().map(|c| (*c).to_owned()).collect(),
        max_accounts: max,
        ttl_seconds: 3_600,
    }
}

/// Begins a case of `account` and finishes it verified under `claim`; returns the record.
async fn verify_anchor(store: &Arc<dyn Store>, id: &str, account: &str, claim: AnchorClaim) -> CaseRecord {
    let mut r = record(id, &format!("r-{id}"));
    r.account_id = account.into();
    store.begin(r, NOW).await.unwrap();
    let finish = Finish {
        status: CaseStatus::Verified,
        anchor: Some(claim),
        ..Finish::default()
    };
    store.finish(id, finish, NOW + 1).await.unwrap()
}

async fn anchor_bindings_are_limited_per_id_in_the_verifying_step(store: Arc<dyn Store>) {
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
        (c.status, c.refusal.as_deref(), c.anchor_index),
        (CaseStatus::NotVerified, Some("ID_ACCOUNT_LIMIT"), None),
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

async fn a_step_that_fails_leaves_no_binding(store: Arc<dyn Store>) {
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

async fn a_takeover_needs_the_same_request(store: Arc<dyn Store>) {
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

async fn erasure_is_scoped_marks_processing_cases_and_removes_bindings(store: Arc<dyn Store>) {
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

async fn peeking_a_window_counts_nothing(store: Arc<dyn Store>) {
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

async fn wrapped_keys_are_replaced_by_compare_and_set(store: Arc<dyn Store>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    store
        .finish("vf_1", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    let old = store.wrapped_keys_not_under("kek-2", 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].0, "vf_1");
    let new = WrappedKey {
        kek_id: "kek-2".into(),
        bytes: vec![9; 72],
    };
    assert!(store.replace_wrapped_key("vf_1", &old[0].1, new.clone()).await.unwrap());
    assert!(
        !store.replace_wrapped_key("vf_1", &old[0].1, new.clone()).await.unwrap(),
        "stale old key"
    );
    assert!(store.wrapped_keys_not_under("kek-2", 10).await.unwrap().is_empty());
    assert_eq!(store.sealed_pii("vf_1").await.unwrap().unwrap().wrapped_key, new);
    assert_eq!(
        store.sealed_pii("vf_1").await.unwrap().unwrap().body,
        pii().body,
        "the body is untouched"
    );
    assert!(
        !store
            .replace_wrapped_key("vf_missing", &new, new.clone())
            .await
            .unwrap()
    );
}

/// `$make` is awaited inside each test and gives `Option<Arc<dyn Store>>`; `None` only when the
/// backend's tests are explicitly skipped (see `support::redis`).
macro_rules! conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            #[tokio::test]
            async fn idempotency_key_is_claimed_once() {
                if let Some(store) = $make {
                    super::idempotency_key_is_claimed_once(store).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_begins_start_exactly_one() {
                if let Some(store) = $make {
                    super::concurrent_begins_start_exactly_one(store).await
                }
            }
            #[tokio::test]
            async fn the_state_machine_holds() {
                if let Some(store) = $make {
                    super::the_state_machine_holds(store).await
                }
            }
            #[tokio::test]
            async fn watch_follows_to_the_final_status_and_ends() {
                if let Some(store) = $make {
                    super::watch_follows_to_the_final_status_and_ends(store).await
                }
            }
            #[tokio::test]
            async fn retention_expires_due_data_and_forgets_old_records() {
                if let Some(store) = $make {
                    super::retention_expires_due_data_and_forgets_old_records(store).await
                }
            }
            #[tokio::test]
            async fn an_abandoned_case_is_taken_over_after_its_lease() {
                if let Some(store) = $make {
                    super::an_abandoned_case_is_taken_over_after_its_lease(store).await
                }
            }
            #[tokio::test]
            async fn erasure_shreds_pending_cases_of_one_account() {
                if let Some(store) = $make {
                    super::erasure_shreds_pending_cases_of_one_account(store).await
                }
            }
            #[tokio::test]
            async fn audit_trail_is_append_only_and_paged() {
                if let Some(store) = $make {
                    super::audit_trail_is_append_only_and_paged(store).await
                }
            }
            #[tokio::test]
            async fn window_counters_count_and_restart() {
                if let Some(store) = $make {
                    super::window_counters_count_and_restart(store).await
                }
            }
            #[tokio::test]
            async fn anchor_bindings_are_limited_per_id_in_the_verifying_step() {
                if let Some(store) = $make {
                    super::anchor_bindings_are_limited_per_id_in_the_verifying_step(store).await
                }
            }
            #[tokio::test]
            async fn a_step_that_fails_leaves_no_binding() {
                if let Some(store) = $make {
                    super::a_step_that_fails_leaves_no_binding(store).await
                }
            }
            #[tokio::test]
            async fn a_takeover_needs_the_same_request() {
                if let Some(store) = $make {
                    super::a_takeover_needs_the_same_request(store).await
                }
            }
            #[tokio::test]
            async fn erasure_is_scoped_marks_processing_cases_and_removes_bindings() {
                if let Some(store) = $make {
                    super::erasure_is_scoped_marks_processing_cases_and_removes_bindings(store).await
                }
            }
            #[tokio::test]
            async fn peeking_a_window_counts_nothing() {
                if let Some(store) = $make {
                    super::peeking_a_window_counts_nothing(store).await
                }
            }
            #[tokio::test]
            async fn wrapped_keys_are_replaced_by_compare_and_set() {
                if let Some(store) = $make {
                    super::wrapped_keys_are_replaced_by_compare_and_set(store).await
                }
            }
        }
    };
}

conformance!(embedded, Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>));
conformance!(redis_standalone, support::redis::standalone_store().await);
conformance!(redis_cluster, support::redis::cluster_store().await);
