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
use crate::domain::GATEWAY_ACTOR;
use crate::live::Live;
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
        // With no KEK in its epoch there is nowhere to move keys to (and nothing is lost by waiting:
        // the keys stay under KEKs whose destruction dates outlast their cases).
        if !keks.can_wrap() {
            tracing::warn!(kek = %current, "re-wrap skipped: no key-encryption key may wrap now");
            return Ok(0);
        }
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
    use crate::crypto::envelope::KekDates;
    use crate::crypto::keyfile::KekSchedule;
    use crate::domain::Purpose;
    use crate::providers::Outcome;
    use crate::providers::router::{Route, Router};
    use crate::store::memory::MemoryStore;
    use crate::verify::test_support::*;
    use crate::verify::{Verifier, VerifyError};
    use std::collections::HashMap;
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

    /// A gateway whose one KEK (`kek-1`) is time-boxed by `dates` on `clock`.
    fn dated_verifier(
        store: &Arc<dyn Store>,
        clock: &ManualClock,
        dates: KekDates,
        ttl: Duration,
    ) -> (Verifier, Arc<KekRing>) {
        let ring = Arc::new(
            KekRing::new(vec![Kek {
                id: "kek-1".into(),
                created_at_unix: 1,
                key: SecretKey32::random().unwrap(),
            }])
            .unwrap()
            .with_dates(HashMap::from([("kek-1".to_owned(), dates)]), Arc::new(clock.clone())),
        );
        let verifier = Verifier::new(
            store.clone(),
            Router::new(vec![Route::new(
                fake("p", Ok(Outcome::CannotDecide)),
                Duration::from_secs(5),
                4,
            )]),
            ring.clone(),
            Arc::new(BlindIndexer::new("bk".into(), &SecretKey32::random().unwrap())),
            audit_trail(store.clone(), Arc::new(clock.clone())),
            Arc::new(clock.clone()),
            settings(ttl),
        );
        (verifier, ring)
    }

    #[tokio::test]
    async fn no_pending_case_outlives_its_kek_and_none_is_sealed_after_the_epoch() {
        // The gateway's schedule: retention 600 s + a 30 s sweep interval, a one-hour epoch.
        let ttl = 600;
        let schedule = KekSchedule {
            epoch_seconds: 3_600,
            longest_retention_seconds: ttl + 30,
            grace_seconds: 60,
        };
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let dates = schedule.dates_from(NOW);
        let (verifier, ring) = dated_verifier(
            &store,
            &clock,
            schedule.wrapping_dates(dates),
            Duration::from_secs(ttl as u64),
        );

        // Sealed in the last second of the epoch, the case is out of retention (and swept) before
        // its KEK's destruction date.
        clock.set(dates.wraps_until_unix - 1);
        let last = verifier
            .verify(command("r-1", Purpose::Anchor))
            .await
            .unwrap()
            .verification_id;
        let record = store.get(&last).await.unwrap().unwrap();
        assert_eq!(
            store.sealed_pii(&last).await.unwrap().unwrap().wrapped_key.kek_id,
            "kek-1"
        );
        let swept_by = record.pii_expires_at_unix.unwrap() + 30;
        assert!(
            swept_by < dates.destroy_after_unix,
            "{swept_by} < {}",
            dates.destroy_after_unix
        );

        // From the end of the epoch nothing is sealed (fail closed), and nothing is re-wrapped to it.
        clock.set(dates.wraps_until_unix);
        assert!(matches!(
            verifier.verify(command("r-2", Purpose::Anchor)).await,
            Err(VerifyError::NoWrappingKek)
        ));
        let rotation = KeyRotation::new(store.clone(), ring, audit_trail(store.clone(), Arc::new(clock.clone())));
        assert_eq!(rotation.rewrap_pending(100).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn raised_retention_stops_a_kek_wrapping_early_rather_than_outlive_it() {
        // A KEK made when retention was 600 s; retention is now 3 000 s: it stops wrapping when a
        // case sealed under it could outlive its destruction date, before its epoch ends.
        let made = KekSchedule {
            epoch_seconds: 3_600,
            longest_retention_seconds: 600,
            grace_seconds: 0,
        };
        let now = KekSchedule {
            longest_retention_seconds: 3_000,
            ..made
        };
        let dates = made.dates_from(NOW);
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (verifier, _) = dated_verifier(&store, &clock, now.wrapping_dates(dates), Duration::from_secs(3_000));
        clock.set(dates.destroy_after_unix - 3_000 - 1);
        let id = verifier
            .verify(command("r-1", Purpose::Anchor))
            .await
            .unwrap()
            .verification_id;
        let record = store.get(&id).await.unwrap().unwrap();
        assert!(record.pii_expires_at_unix.unwrap() < dates.destroy_after_unix);
        clock.set(dates.destroy_after_unix - 3_000);
        assert!(
            dates.wraps_at(dates.destroy_after_unix - 3_000),
            "still in its epoch by the file"
        );
        assert!(matches!(
            verifier.verify(command("r-2", Purpose::Anchor)).await,
            Err(VerifyError::NoWrappingKek)
        ));
    }
}
