//! Key rotation of data at rest: data keys still wrapped by an older key-encryption key (KEK) are
//! re-wrapped under the current one, so that an old KEK can be retired. The sealed bodies are not
//! touched; each pass that moved keys is audited with a count and the current KEK id.
//!
//! Safe to run on every gateway at once (each replacement is a compare-and-set). It must never open
//! a case's body, record key material, or drop a key it cannot re-wrap (that one expires with its
//! case). Knows no gRPC, protobuf or Redis.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::crypto::envelope::KekRing;
use crate::crypto::live::Live;
use crate::domain::GATEWAY_ACTOR;
use crate::material;
use crate::store::{AuditAction, Store, StoreError};

/// The re-wrapping use case.
pub struct KeyRotation {
    store: Arc<dyn Store>,
    /// Replaced by a key reload; each pass uses the ring current when it starts.
    keks: Live<KekRing>,
    audit: AuditTrail,
}

impl KeyRotation {
    pub fn new(store: Arc<dyn Store>, keks: impl Into<Live<KekRing>>, audit: AuditTrail) -> Self {
        Self {
            store,
            keks: keks.into(),
            audit,
        }
    }

    /// Moves up to `batch` data keys still wrapped by an older KEK to the current one. Returns how
    /// many moved.
    pub async fn rewrap_pending(&self, batch: usize) -> Result<usize, StoreError> {
        let keks = self.keks.load();
        let current = keks.current_id().to_owned();
        let mut moved = 0;
        // Both data keys of a case (identity and face) are listed, each under its own field name.
        for (case_id, part, old) in self.store.wrapped_keys_not_under(&current, batch).await? {
            match keks.rewrap(&case_id, material::field(part), &old) {
                Ok(new) => {
                    if self.store.replace_wrapped_key(&case_id, part, &old, new).await? {
                        moved += 1;
                    }
                }
                // A key under a retired or unknown KEK cannot be moved; it expires with its case.
                Err(_) => {
                    tracing::warn!(verification_id = %case_id, kek = %old.kek_id, "cannot re-wrap: KEK not loaded")
                }
            }
        }
        if moved > 0 {
            self.audit
                .record(
                    GATEWAY_ACTOR,
                    AuditAction::PiiRewrapped,
                    None,
                    format!("count={moved} kek={current}"),
                )
                .await?;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::SecretKey32;
    use crate::crypto::blind_index::BlindIndexer;
    use crate::crypto::envelope::Kek;
    use crate::domain::Purpose;
    use crate::providers::Outcome;
    use crate::providers::router::{Route, Router};
    use crate::store::memory::MemoryStore;
    use crate::verify::Verifier;
    use crate::verify::test_support::*;
    use std::time::Duration;

    #[tokio::test]
    async fn rewrap_moves_pending_data_keys_to_the_current_kek() {
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let old_key = SecretKey32::random().unwrap();
        let old = || Kek {
            id: "kek-1".into(),
            created_at_unix: 1,
            key: old_key.clone(),
        };
        // A gateway with only the old KEK leaves a pending case…
        let first = Verifier::new(
            store.clone(),
            Router::new(vec![Route::new(
                fake("p", Ok(Outcome::CannotDecide)),
                Duration::from_secs(5),
                4,
            )]),
            Arc::new(KekRing::new(vec![old()]).unwrap()),
            Arc::new(BlindIndexer::new("bk".into(), &SecretKey32::random().unwrap())),
            audit_trail(store.clone(), Arc::new(clock.clone())),
            Arc::new(clock.clone()),
            settings(Duration::from_secs(3_600)),
        );
        let id = first
            .verify(command("r-1", Purpose::Anchor))
            .await
            .unwrap()
            .verification_id;
        // …and after rotation the next one re-wraps it; the body opens under the new KEK alone.
        let rotated = Arc::new(
            KekRing::new(vec![
                old(),
                Kek {
                    id: "kek-2".into(),
                    created_at_unix: 2,
                    key: SecretKey32::random().unwrap(),
                },
            ])
            .unwrap(),
        );
        let second = KeyRotation::new(
            store.clone(),
            rotated.clone(),
            audit_trail(store.clone(), Arc::new(clock.clone())),
        );
        // Both data keys of the case move: the identity material's and the face's.
        assert_eq!(second.rewrap_pending(100).await.unwrap(), 2);
        assert_eq!(second.rewrap_pending(100).await.unwrap(), 0, "nothing left");
        let sealed = store.sealed_pii(&id).await.unwrap().unwrap();
        assert_eq!(sealed.wrapped_key.kek_id, "kek-2");
        assert!(
            rotated
                .open(&id, material::PII_FIELD_IDENTITY, &sealed.wrapped_key, &sealed.body)
                .is_ok()
        );
        let face = sealed.face.expect("the face is kept apart");
        assert_eq!(face.wrapped_key.kek_id, "kek-2");
        assert!(
            rotated
                .open(&id, material::PII_FIELD_FACE, &face.wrapped_key, &face.body)
                .is_ok()
        );
    }
}
