//! Retention that holds for copies: a backup of Redis taken while a case was
//! pending opens nothing once its KEK has been destroyed on schedule.
//!
//! The gateway runs on a real `redis-server` with a manual clock. A case goes to review; every
//! `idg:*` key is copied out with `DUMP` (a backup). Retention and the KEK's epoch pass on the
//! clock (no sleeps); `keyfile::maintain_keks` — what `idgate keys maintain` runs — rotates, then,
//! past the destruction date, destroys the old KEK. The backup is restored (`RESTORE`, with no
//! TTL: the worst case of a copy that never expires) into a fresh `redis-server`, and every key
//! that still exists is tried on every wrapped data key in it: all fail. Before the destruction
//! the same backup did open (so the test can fail). A copy of the destroyed KEK's file put back
//! is refused by the gateway at start and on reload.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Person, TestGateway, verify};
use idgate::clock::{Clock, ManualClock, SystemClock};
use idgate::crypto::envelope::{Kek, KekRing};
use idgate::crypto::keyfile::{self, KeyKind};
use idgate::gateway::{Gateway, Plan};
use idgate::material;
use idgate::pb;
use idgate::store::redis::{RedisOptions, RedisStore};
use idgate::store::{CaseStore, SealedPii};
use support::redis::{RedisServer, keys_matching, redis_tests_enabled};

const PENDING_TTL: u64 = 600;
const EPOCH: u64 = 3_600;
const GRACE: u64 = 60;

/// Every `idg:*` key of the server at `url` with its `DUMP` payload (a backup).
async fn dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut dumped = Vec::new();
    for key in keys_matching(&mut con, "idg:*").await {
        let payload: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query_async(&mut con).await.unwrap();
        if let Some(payload) = payload {
            dumped.push((key, payload));
        }
    }
    dumped
}

/// Restores `dumped` into the server at `url`, without TTLs.
async fn restore(url: &str, dumped: &[(String, Vec<u8>)]) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for (key, payload) in dumped {
        let () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(payload)
            .arg("REPLACE")
            .query_async(&mut con)
            .await
            .unwrap();
    }
}

/// The case ids whose wrapped data key is in `dumped`.
fn wrapped_cases(dumped: &[(String, Vec<u8>)]) -> Vec<String> {
    dumped
        .iter()
        .filter_map(|(key, _)| key.strip_prefix("idg:{")?.strip_suffix("}:pii:key").map(str::to_owned))
        .collect()
}

/// The sealed material of every case in `cases`, read from `store` as the gateway reads it.
async fn sealed(store: &RedisStore, cases: &[String]) -> Vec<(String, SealedPii)> {
    let mut all = Vec::new();
    for id in cases {
        let pii = store.sealed_pii(id).await.unwrap().expect("both halves restored");
        all.push((id.clone(), pii));
    }
    all
}

/// Every way to use every key left in `dir` on `pii`: the gateway's own KEK ring as it loads now,
/// and each key file of every kind — its raw secret and (for KEKs) the key the gateway derives —
/// under its own id and under the id the wrapped key names. Returns how many attempts opened it.
fn openings(dir: &Path, clock: &ManualClock, case_id: &str, pii: &SealedPii) -> (usize, usize) {
    // Both parts a pending case holds: its identity material and (kept apart) its face.
    let open = |ring: &KekRing| {
        ring.open(case_id, material::PII_FIELD_IDENTITY, &pii.wrapped_key, &pii.body)
            .is_ok()
            || pii.face.as_ref().is_some_and(|face| {
                ring.open(case_id, material::PII_FIELD_FACE, &face.wrapped_key, &face.body)
                    .is_ok()
            })
    };
    let mut attempts = 0;
    let mut opened = 0;
    let mut attempt = |ok: bool| {
        attempts += 1;
        opened += usize::from(ok);
    };
    let config = config_for_schedule();
    match keyfile::load_kek_ring(dir, Vec::new(), 0, &config.kek_schedule(), Arc::new(clock.clone())) {
        Ok(loaded) => attempt(open(&loaded.ring)),
        Err(keyfile::KeyFileError::Missing(..)) => {}
        Err(other) => panic!("{other}"),
    }
    for kind in [KeyKind::Kek, KeyKind::Sealing, KeyKind::BlindIndex] {
        for key in keyfile::load(dir, kind).unwrap() {
            let mut candidates = vec![key.secret.clone()];
            if kind == KeyKind::Kek {
                candidates.push(key.kek().unwrap().key);
            }
            for secret in candidates {
                for id in [key.id.clone(), pii.wrapped_key.kek_id.clone()] {
                    let ring = KekRing::new(vec![Kek {
                        id,
                        created_at_unix: 1,
                        key: secret.clone(),
                    }])
                    .unwrap();
                    attempt(open(&ring));
                }
            }
        }
    }
    (attempts, opened)
}

fn config_for_schedule() -> idgate::config::Config {
    let mut config = TestGateway::config();
    config.retention.pending_review_ttl_seconds = Duration::from_secs(PENDING_TTL);
    config.retention.sweep_interval_seconds = Duration::from_secs(1);
    config.keys.kek_epoch_seconds = Duration::from_secs(EPOCH);
    config.keys.kek_destroy_grace_seconds = Duration::from_secs(GRACE);
    config
}

#[tokio::test]
async fn a_backup_taken_while_a_case_was_pending_opens_nothing_once_its_kek_is_destroyed() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let clock = ManualClock::new(SystemClock.now_unix());
    let started = clock.now_unix();
    let mut config = config_for_schedule();
    config.store.url = Some(redis.url());
    let schedule = config.kek_schedule();
    let gw = TestGateway::start_with(config.clone(), Some(clock.clone())).await;
    let keys = gw.dir.path().join("dev").join("keys");
    let first_kek = keyfile::load(&keys, KeyKind::Kek).unwrap().remove(0);
    let first_dates = first_kek.dates.expect("dev KEKs are dated");
    assert_eq!(first_dates, schedule.dates_from(started));
    let first_file = keys.join("kek").join(format!("{}.key", first_kek.id));
    let first_copy = std::fs::read(&first_file).unwrap();

    // A case goes to review: its data is sealed under the first KEK. A backup is taken.
    let mut client = gw.onboarding().await;
    let pending = verify(&mut client, pb::Purpose::Anchor, "backed-up", &Person::adult("975"))
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let backup = dump(&redis.url()).await;
    let cases = wrapped_cases(&backup);
    assert_eq!(
        cases,
        [pending.verification_id.as_str()],
        "the pending case's wrapped key is in the backup"
    );

    // Retention passes: the live store destroys the case's data (the gateway's own sweep).
    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id.clone(),
    };
    let mut watch = client.watch_verification(id).await.unwrap().into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        pb::Status::PendingReview as i32
    );
    clock.advance(PENDING_TTL as i64 + 1);
    let last = tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .expect("expiry reaches the watcher")
        .unwrap()
        .unwrap();
    assert_eq!(last.status, pb::Status::Expired as i32);

    // The epoch passes: scheduled upkeep rotates (nothing is destroyed yet).
    clock.set(first_dates.wraps_until_unix);
    let upkeep = keyfile::maintain_keks(&keys, clock.now_unix(), &schedule, 0).unwrap();
    let second = upkeep.rotated.expect("a new KEK once the epoch is over");
    assert!(upkeep.destroyed.is_empty());

    // The backup restored now would still open: the old KEK exists until its destruction date.
    let restored_early = RedisServer::start().await;
    restore(&restored_early.url(), &backup).await;
    let store = RedisStore::standalone(&restored_early.url(), RedisOptions::default())
        .await
        .unwrap();
    for (case_id, pii) in sealed(&store, &cases).await {
        let (_, opened) = openings(&keys, &clock, &case_id, &pii);
        assert!(
            opened > 0,
            "before destruction the backup opens: the check below can fail"
        );
    }

    // Past the destruction date the same upkeep destroys the old KEK.
    clock.set(first_dates.destroy_after_unix);
    assert!(
        first_dates.destroy_after_unix >= first_dates.wraps_until_unix + PENDING_TTL as i64 + 1 + GRACE as i64,
        "the destruction date outlasts every case the KEK wrapped"
    );
    let upkeep = keyfile::maintain_keks(&keys, clock.now_unix(), &schedule, 0).unwrap();
    assert_eq!(upkeep.destroyed, [first_kek.id.as_str()]);
    assert_eq!(upkeep.rotated, None, "the second KEK is still in its epoch");
    assert!(!first_file.exists());

    // The backup restored into a fresh Redis: no key that still exists opens anything in it.
    let restored = RedisServer::start().await;
    restore(&restored.url(), &backup).await;
    let store = RedisStore::standalone(&restored.url(), RedisOptions::default())
        .await
        .unwrap();
    let restored_pii = sealed(&store, &cases).await;
    assert_eq!(restored_pii.len(), 1);
    for (case_id, pii) in &restored_pii {
        assert_eq!(pii.wrapped_key.kek_id, first_kek.id);
        let face = pii
            .face
            .as_ref()
            .expect("the anchor case's face, kept apart, is in the backup too");
        assert_eq!(face.wrapped_key.kek_id, first_kek.id);
        let (attempts, opened) = openings(&keys, &clock, case_id, pii);
        assert!(attempts >= 9, "the ring, and every key file each way: {attempts}");
        eprintln!(
            "restored backup, case {case_id}: {attempts} attempts with the keys that still exist, {opened} opened"
        );
        assert_eq!(opened, 0, "nothing in the backup opens with a key that still exists");
    }

    // Someone puts the destroyed KEK's file back: the gateway refuses it at start and on reload.
    keyfile::write_private_file(&first_file, &first_copy).unwrap();
    let mut restarted = config.clone();
    restarted.store.url = Some(restored.url());
    restarted.keys.dir = Some(keys.clone());
    let plan = Plan::dev(
        restarted,
        Some("127.0.0.1:0".parse().unwrap()),
        &gw.dir.path().join("dev"),
        clock.now_unix(),
    )
    .unwrap();
    let gateway = Gateway::build(plan, Arc::new(clock.clone())).await.unwrap();
    let banner = gateway.notes.join("\n");
    assert!(
        banner.contains(&format!("key-encryption key {second}"))
            && banner.contains(&format!("past their destruction date: {}", first_kek.id)),
        "{banner}"
    );
    let reloaded = gateway.keys.reload().unwrap();
    assert!(
        reloaded.contains(&format!("past their destruction date: {}", first_kek.id)),
        "{reloaded}"
    );
    let (_, opened) = openings(&keys, &clock, &restored_pii[0].0, &restored_pii[0].1);
    assert!(
        opened > 0,
        "the file put back still holds the key (so only the refusal protects the backup)"
    );
    let loaded = keyfile::load_kek_ring(&keys, Vec::new(), 0, &schedule, Arc::new(clock.clone())).unwrap();
    assert_eq!(loaded.refused, [first_kek.id.as_str()]);
    let (case_id, pii) = &restored_pii[0];
    assert!(
        loaded
            .ring
            .open(case_id, "identity", &pii.wrapped_key, &pii.body)
            .is_err()
    );
    gw.stop().await;
}

#[tokio::test]
async fn with_no_kek_in_its_epoch_a_case_for_review_fails_closed_and_decided_cases_go_on() {
    // The embedded store: nothing to restore, but the same rule — no wrapping past the epoch.
    let clock = ManualClock::new(SystemClock.now_unix());
    let gw = TestGateway::start_with(config_for_schedule(), Some(clock.clone())).await;
    let mut client = gw.onboarding().await;
    clock.advance(EPOCH as i64);

    let refused = verify(&mut client, pb::Purpose::Anchor, "needs-review", &Person::adult("975"))
        .await
        .expect_err("nothing may wrap");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert_eq!(common::reason(&refused).as_deref(), Some("KEK_UNAVAILABLE"));
    let person = Person::adult("975");
    for secret in [&person.name, &person.id_number, &person.phone] {
        assert!(!refused.message().contains(secret.as_str()));
    }

    let decided = verify(&mut client, pb::Purpose::ShortVideo, "decided", &Person::adult("123"))
        .await
        .expect("a case that stores nothing is decided as before");
    assert_eq!(decided.status, pb::Status::Verified as i32);
    gw.stop().await;
}
