//! [`KeyMaintenance`](idgate::store::KeyMaintenance): wrapped data keys — the identity material's and
//! the face's, each its own — are found by KEK and replaced by compare-and-set, never touching a
//! sealed body.

use std::sync::Arc;

use idgate::crypto::envelope::WrappedKey;
use idgate::store::{CaseStatus, CaseStore, KeyMaintenance, PiiPart};

use super::fixtures::{NOW, finish, pii, record};

async fn wrapped_keys_are_replaced_by_compare_and_set<S: CaseStore + KeyMaintenance + ?Sized>(store: Arc<S>) {
    store.begin(record("vf_1", "r-1"), NOW).await.unwrap();
    store
        .finish("vf_1", finish(CaseStatus::PendingReview, true), NOW)
        .await
        .unwrap();
    let mut old = store.wrapped_keys_not_under("kek-2", 10).await.unwrap();
    old.sort_by_key(|(_, part, _)| *part == PiiPart::Face);
    assert_eq!(old.len(), 2, "the identity material's key and the face's");
    assert!(old.iter().all(|(id, _, _)| id == "vf_1"));
    assert_eq!((old[0].1, old[1].1), (PiiPart::Identity, PiiPart::Face));
    assert_eq!(old[0].2, pii().wrapped_key);
    assert_eq!(Some(&old[1].2), pii().face.as_ref().map(|f| &f.wrapped_key));
    let new = WrappedKey {
        kek_id: "kek-2".into(),
        bytes: vec![9; 72],
    };
    let new_face = WrappedKey {
        kek_id: "kek-2".into(),
        bytes: vec![10; 72],
    };
    assert!(
        !store
            .replace_wrapped_key("vf_1", PiiPart::Face, &old[0].2, new_face.clone())
            .await
            .unwrap(),
        "the identity key is not the face's"
    );
    assert!(
        store
            .replace_wrapped_key("vf_1", PiiPart::Identity, &old[0].2, new.clone())
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_wrapped_key("vf_1", PiiPart::Identity, &old[0].2, new.clone())
            .await
            .unwrap(),
        "stale old key"
    );
    let left = store.wrapped_keys_not_under("kek-2", 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, PiiPart::Face);
    assert!(
        store
            .replace_wrapped_key("vf_1", PiiPart::Face, &old[1].2, new_face.clone())
            .await
            .unwrap()
    );
    assert!(store.wrapped_keys_not_under("kek-2", 10).await.unwrap().is_empty());
    let sealed = store.sealed_pii("vf_1").await.unwrap().unwrap();
    assert_eq!(sealed.wrapped_key, new);
    assert_eq!(sealed.body, pii().body, "the body is untouched");
    let face = sealed.face.unwrap();
    assert_eq!(face.wrapped_key, new_face);
    assert_eq!(
        Some(face.body),
        pii().face.map(|f| f.body),
        "the face body is untouched"
    );
    assert!(
        !store
            .replace_wrapped_key("vf_missing", PiiPart::Identity, &new, new.clone())
            .await
            .unwrap()
    );
}

/// Only cases still holding sealed data are listed, each part once, at most `limit` entries.
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
    assert_eq!(listed.len(), 6, "two keys per pending case");
    for (_, part, key) in &listed {
        let expected = match part {
            PiiPart::Identity => pii().wrapped_key,
            PiiPart::Face => pii().face.unwrap().wrapped_key,
        };
        assert_eq!(*key, expected);
    }
    let mut ids: Vec<String> = listed.into_iter().map(|(id, _, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["vf_1", "vf_2", "vf_3"], "a decided case holds no key");
    let page = store.wrapped_keys_not_under("kek-2", 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|(id, _, _)| ids.contains(id)));
    assert!(store.wrapped_keys_not_under("kek-2", 0).await.unwrap().is_empty());
}

on_every_backend!(
    wrapped_keys_are_replaced_by_compare_and_set,
    only_held_keys_are_listed_up_to_the_limit,
);
