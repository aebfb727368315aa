//! What the Redis store leaves behind, and how it behaves when Redis goes away.
//!
//! - Once a case is decided, expired or erased, nothing in Redis could hold an image (no value over
//!   1 KiB) or any of the applicant's data; while pending, the sealed data carries a TTL.
//! - The append-only files never contain plaintext personal data: only sealed bytes reach Redis.
//! - A dead or frozen Redis makes calls fail with `Unavailable` within the response timeout, and the
//!   store recovers by itself when Redis is back, with acknowledged cases intact.
//!
//! Each test starts its own `redis-server`(s), so they can stop and inspect them freely.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::sync::Arc;
use std::time::Duration;

use idgate::crypto::SecretKey32;
use idgate::crypto::envelope::{Kek, KekRing};
use idgate::domain::{AccountId, Purpose, RequestId};
use idgate::store::redis::{RedisOptions, RedisStore};
use idgate::store::{
    AuditAction, AuditEvent, CaseRecord, CaseStatus, Finish, SealedPii, SealedValue, Store, StoreError,
};
use support::redis::{RedisCluster, RedisServer, all_values, contains, redis_tests_enabled, test_options};
use tokio::time::{Instant, timeout};

const NOW: i64 = 1_795_000_000;
const RETAIN: i64 = 3_600;
const NAME: &str = "张三丰";
const ID_NUMBER: &str = "11010519491231002X";
const PHONE: &str = "13800138000";
const MAX_VALUE: usize = 1024;

/// A 50 KiB fake JPEG: a real header, then bytes from a fixed generator (recognisable, incompressible).
fn fake_image() -> Vec<u8> {
    let mut image = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x1234_5678;
    while image.len() < 50 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image.extend_from_slice(&x.to_le_bytes());
    }
    image
}

/// What must never be found in Redis: the applicant's data, and a piece from the middle of the image.
fn secrets() -> Vec<Vec<u8>> {
    let image = fake_image();
    vec![
        NAME.as_bytes().to_vec(),
        ID_NUMBER.as_bytes().to_vec(),
        PHONE.as_bytes().to_vec(),
        image[25_000..25_064].to_vec(),
    ]
}

fn ring() -> KekRing {
    KekRing::new(vec![Kek {
        id: "kek-1".into(),
        created_at_unix: NOW,
        key: SecretKey32::random().unwrap(),
    }])
    .unwrap()
}

/// Identity material and face sealed apart, as a gateway seals a pending case.
fn sealed(ring: &KekRing, case_id: &str) -> SealedPii {
    let plaintext = format!("name={NAME};id_number={ID_NUMBER};phone={PHONE}").into_bytes();
    let (wrapped_key, body) = ring.seal(case_id, "identity", &plaintext).unwrap();
    let (face_key, face_body) = ring.seal(case_id, "face", &fake_image()).unwrap();
    SealedPii {
        wrapped_key,
        body,
        face: Some(SealedValue {
            wrapped_key: face_key,
            body: face_body,
        }),
    }
}

fn record(id: &str, account: &str, request: &str) -> CaseRecord {
    CaseRecord::processing(
        id,
        AccountId::parse(account).unwrap(),
        RequestId::parse(request).unwrap(),
        "onboarding-dev",
        Purpose::Anchor,
        "fp",
        NOW,
        NOW + 30,
    )
}

fn finish(status: CaseStatus, pii: SealedPii) -> Finish {
    Finish {
        status,
        provider: Some("sim".into()),
        refusal: None,
        pii: Some((pii, NOW + RETAIN)),
        anchor: None,
        review_reason: None,
        documents_complete: false,
    }
}

/// Decided, expired and erased cases (and a pending one meanwhile), with sealed data from the real
/// envelope; returns the ids and a piece of a sealed body that was stored.
async fn full_flow(store: &dyn Store, prefix: &str, urls: &[String]) -> ([String; 3], Vec<u8>) {
    let ring = ring();
    // Decided by the provider: the sealed data offered with it is never kept.
    store.begin(record("vf_decided", "acct-1", "r-1"), NOW).await.unwrap();
    store
        .finish(
            "vf_decided",
            finish(CaseStatus::Verified, sealed(&ring, "vf_decided")),
            NOW + 1,
        )
        .await
        .unwrap();
    // Pending, then expired by retention.
    store.begin(record("vf_expired", "acct-1", "r-2"), NOW).await.unwrap();
    let pending = sealed(&ring, "vf_expired");
    let sealed_piece = pending.face.as_ref().unwrap().body.ciphertext[25_000..25_064].to_vec();
    store
        .finish("vf_expired", finish(CaseStatus::PendingReview, pending), NOW + 1)
        .await
        .unwrap();
    // Pending, then erased with its account.
    store.begin(record("vf_erased", "acct-2", "r-3"), NOW).await.unwrap();
    store
        .finish(
            "vf_erased",
            finish(CaseStatus::PendingReview, sealed(&ring, "vf_erased")),
            NOW + 1,
        )
        .await
        .unwrap();

    // While pending, the sealed data is in Redis (the scan sees it) and carries a TTL; each face is
    // a value of its own (the only large ones), apart from the identity material.
    let big: Vec<String> = all_values(urls)
        .await
        .into_iter()
        .filter(|(_, v)| v.len() > MAX_VALUE)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(big.len(), 2, "two sealed faces while pending");
    assert!(big.iter().all(|k| k.ends_with(":face:body")), "{big:?}");
    for id in ["vf_expired", "vf_erased"] {
        for part in ["pii:key", "pii:body", "face:key", "face:body"] {
            let key = format!("{prefix}:{{{id}}}:{part}");
            let ttl = pttl(urls, &key).await;
            assert!(
                ttl > 0 && ttl <= RETAIN * 1000,
                "{key} must expire on its own (PTTL {ttl})"
            );
        }
    }

    assert_eq!(
        store.erase_account("acct-2", None, NOW + 2).await.unwrap(),
        ["vf_erased"]
    );
    assert_eq!(store.sweep(NOW + RETAIN, 0).await.unwrap(), 1);
    store
        .append_audit(
            AuditEvent {
                at_unix: NOW + 2,
                actor: "admin-dev".into(),
                action: AuditAction::EraseSubject,
                case_id: Some("vf_erased".into()),
                detail: "cases=1".into(),
            },
            86_400,
        )
        .await
        .unwrap();
    for (id, status) in [
        ("vf_decided", CaseStatus::Verified),
        ("vf_expired", CaseStatus::Expired),
        ("vf_erased", CaseStatus::Erased),
    ] {
        assert_eq!(store.get(id).await.unwrap().unwrap().status, status);
        assert!(store.sealed_pii(id).await.unwrap().is_none());
    }
    (
        ["vf_decided".into(), "vf_expired".into(), "vf_erased".into()],
        sealed_piece,
    )
}

async fn pttl(urls: &[String], key: &str) -> i64 {
    // On a cluster the key lives on one node; the others answer -2 (no such key).
    let mut best = -2;
    for url in urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut con).await.unwrap_or(-2);
        best = best.max(ttl);
    }
    best
}

async fn assert_nothing_left(urls: &[String]) {
    let values = all_values(urls).await;
    assert!(!values.is_empty(), "the scan sees the case records");
    for (key, value) in &values {
        assert!(
            value.len() <= MAX_VALUE,
            "{key} holds {} bytes after every case ended",
            value.len()
        );
        for secret in secrets() {
            assert!(!contains(value, &secret), "{key} holds applicant data");
        }
    }
}

#[tokio::test]
async fn nothing_that_could_hold_personal_data_outlives_a_case_standalone() {
    if !redis_tests_enabled() {
        return;
    }
    let server = RedisServer::start().await;
    let options = test_options();
    let prefix = options.key_prefix.clone();
    let store = RedisStore::standalone(&server.url(), options).await.unwrap();
    let urls = [server.url()];
    full_flow(&store, &prefix, &urls).await;
    assert_nothing_left(&urls).await;
}

#[tokio::test]
async fn nothing_that_could_hold_personal_data_outlives_a_case_cluster() {
    if !redis_tests_enabled() {
        return;
    }
    let cluster = RedisCluster::start().await;
    let options = test_options();
    let prefix = options.key_prefix.clone();
    let store = RedisStore::cluster(&cluster.urls(), options).await.unwrap();
    full_flow(&store, &prefix, &cluster.urls()).await;
    assert_nothing_left(&cluster.urls()).await;
}

#[tokio::test]
async fn the_append_only_file_holds_only_sealed_bytes() {
    if !redis_tests_enabled() {
        return;
    }
    let server = RedisServer::start().await;
    let options = test_options();
    let prefix = options.key_prefix.clone();
    let store = RedisStore::standalone(&server.url(), options).await.unwrap();
    let (ids, sealed_piece) = full_flow(&store, &prefix, &[server.url()]).await;

    // appendfsync is `always` on test servers: every acknowledged write is in the files now.
    let mut aof = Vec::new();
    for file in server.data_files() {
        aof.extend(std::fs::read(&file).unwrap());
    }
    // Positive controls: the scan reads the log that holds the writes, sealed bodies included.
    for id in &ids {
        assert!(contains(&aof, id.as_bytes()), "the AOF records {id}");
    }
    assert!(contains(&aof, &sealed_piece), "the sealed bodies went through the AOF");
    for secret in secrets() {
        assert!(
            !contains(&aof, &secret),
            "plaintext personal data in the append-only file"
        );
    }
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_the_store_recovers_by_itself() {
    if !redis_tests_enabled() {
        return;
    }
    let mut server = RedisServer::start().await;
    let response_timeout = Duration::from_millis(500);
    let options = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        response_timeout,
        ..test_options()
    };
    let store: Arc<dyn Store> = Arc::new(RedisStore::standalone(&server.url(), options).await.unwrap());
    store.begin(record("vf_kept", "acct-1", "r-1"), NOW).await.unwrap();
    let bound = response_timeout + Duration::from_millis(500);

    // Frozen: the connection stays open, nothing answers.
    server.pause();
    let started = Instant::now();
    let frozen = timeout(bound, store.get("vf_kept")).await;
    server.resume();
    assert!(
        matches!(frozen, Ok(Err(StoreError::Unavailable))),
        "a frozen Redis: {frozen:?}"
    );
    assert!(started.elapsed() < bound);

    // Gone: connections refused.
    server.stop();
    let started = Instant::now();
    let gone = timeout(bound, store.begin(record("vf_x", "acct-1", "r-2"), NOW)).await;
    assert!(
        matches!(gone, Ok(Err(StoreError::Unavailable))),
        "a dead Redis: {:?}",
        gone.map(|r| r.map(|_| ()))
    );
    assert!(started.elapsed() < bound);
    // Still failing fast while it stays down (the reconnect backoff must not make callers wait).
    let again = timeout(bound, store.get("vf_kept")).await;
    assert!(matches!(again, Ok(Err(StoreError::Unavailable))));

    // Back on the same port and directory: the same store works again, without help, and the
    // acknowledged case survived (append-only file).
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let kept = loop {
        match timeout(bound, store.get("vf_kept")).await {
            Ok(Ok(found)) => break found,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "the store did not recover after Redis came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(kept.unwrap().status, CaseStatus::Processing);
}

/// A case record this version cannot decode — a review reason a newer version writes, a garbage
/// field — stops neither the sweep nor an erasure: the sweep skips it and goes on with the other
/// cases; the erasure of its account succeeds, erases the account's other cases and destroys the
/// undecodable case's sealed data by key name.
#[tokio::test]
async fn an_undecodable_record_stops_neither_the_sweep_nor_erasure() {
    if !redis_tests_enabled() {
        return;
    }
    let server = RedisServer::start().await;
    let options = test_options();
    let prefix = options.key_prefix.clone();
    let store: Arc<dyn Store> = Arc::new(RedisStore::standalone(&server.url(), options).await.unwrap());
    let ring = ring();
    // All due at NOW + RETAIN but `vf_kept`, due later.
    for (id, account, due) in [
        ("vf_newer", "acct-1", NOW + RETAIN),
        ("vf_garbage", "acct-1", NOW + RETAIN),
        ("vf_kept", "acct-1", NOW + 2 * RETAIN),
        ("vf_due", "acct-2", NOW + RETAIN),
    ] {
        store.begin(record(id, account, &format!("r-{id}")), NOW).await.unwrap();
        let mut pending = finish(CaseStatus::PendingReview, sealed(&ring, id));
        pending.pii = pending.pii.map(|(pii, _)| (pii, due));
        store.finish(id, pending, NOW + 1).await.unwrap();
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for (id, field, value) in [
        ("vf_newer", "why", "A_REASON_OF_A_LATER_VERSION"),
        ("vf_garbage", "created", "not a number"),
    ] {
        let _: i64 = redis::cmd("HSET")
            .arg(format!("{prefix}:{{{id}}}:case"))
            .arg(field)
            .arg(value)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(store.get(id).await.is_err(), "{id} cannot be read");
    }

    assert_eq!(store.sweep(NOW + RETAIN, 0).await.unwrap(), 1, "the sweep goes on");
    assert_eq!(store.get("vf_due").await.unwrap().unwrap().status, CaseStatus::Expired);

    assert_eq!(
        store.erase_account("acct-1", None, NOW + RETAIN + 1).await.unwrap(),
        ["vf_kept"]
    );
    assert_eq!(store.get("vf_kept").await.unwrap().unwrap().status, CaseStatus::Erased);
    for id in ["vf_newer", "vf_garbage", "vf_kept"] {
        for part in ["pii:key", "pii:body", "face:key", "face:body", "review"] {
            let key = format!("{prefix}:{{{id}}}:{part}");
            let exists: i64 = redis::cmd("EXISTS").arg(&key).query_async(&mut con).await.unwrap();
            assert_eq!(exists, 0, "{key} is destroyed");
        }
    }
    // Later sweeps still pass the undecodable records by.
    assert_eq!(store.sweep(NOW + 3 * RETAIN, 0).await.unwrap(), 0);
}
