//! [`KeyMaintenance`](idgate::store::KeyMaintenance): wrapped data keys are found by KEK and replaced
//! by compare-and-set, never touching the sealed body.

use std::sync::Arc;

use idgate::crypto::envelope::WrappedKey;
use idgate::store::{CaseStatus, CaseStore, KeyMaintenance};

use super::fixtures::{NOW, finish, pii, record};

async fn wrapped_keys_are_replaced_by_compare_and_set<S: CaseStore + KeyMaintenance + ?Sized>(store: Arc<S>) {
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

/// Only cases still holding sealed data are listed, each once, at most `limit` of them.
async fn only_held_keys_are_listed_up_to_the_limit<S: CaseStore + KeyMaintenance + ?Sized>(store: Arc<S>) {
    for i in 1..=3 {
        let id = format!("vf_{i}");
        store.begin(record(&id, &format!("r-{i}")), NOW).await.unwrap();
        store
            .finish(&id, finish(CaseStatus::PendingReview, true), NOW)
            .await
            .unwrap();
    }
    store.begin(record("vf_done", "r-done"), NOW).await.unwrap();
    store
        .finish("vf_done", finish(CaseStatus::Verified, true), NOW)
        .await
        .unwrap();
    assert!(
        store.wrapped_keys_not_under("kek-1", 10).await.unwrap().is_empty(),
        "every key is under kek-1"
    );
    let listed = store.wrapped_keys_not_under("kek-2", 10).await.unwrap();
    assert!(listed.iter().all(|(_, key)| *key == pii().wrapped_key));
    let mut ids: Vec<String> = listed.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["vf_1", "vf_2", "vf_3"], "a decided case holds no key");
    let page = store.wrapped_keys_not_under("kek-2", 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_ne!(page[0].0, page[1].0);
    assert!(page.iter().all(|(id, _)| ids.contains(id)));
    assert!(store.wrapped_keys_not_under("kek-2", 0).await.unwrap().is_empty());
}

on_every_backend!(
    wrapped_keys_are_replaced_by_compare_and_set,
    only_held_keys_are_listed_up_to_the_limit,
);
