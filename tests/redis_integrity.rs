//! The verified flag on Redis: a record edited inside Redis is never read as verified; state that
//! belongs together survives Redis being killed between the steps of a change (the sweep repairs a
//! pending case; no binding without a verified case); the caller's deadline bounds a call even
//! when Redis hangs (SIGSTOP).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::sync::Arc;

use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use common::{Person, TestGateway, reason, verify};
use idgate::domain::{AccountId, Purpose, RequestId};
use idgate::pb;
use idgate::pb::Purpose::ShortVideo;
use idgate::store::redis::RedisStore;
use idgate::store::{
    AnchorClaim, CaseRecord, CaseStatus, CaseStore, Finish, LimitStore, RetentionStore, ReviewQueue, SealedPii,
    StoreError,
};
use support::redis::{RedisServer, redis_tests_enabled, test_options};
use tonic::Code;

const NOW: i64 = 1_795_000_000;

fn redis_config(url: &str) -> idgate::config::Config {
    let mut config = TestGateway::config();
    config.store.url = Some(url.to_owned());
    config
}

async fn redis_command<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut con).await.unwrap()
}

#[tokio::test]
async fn a_record_edited_inside_redis_is_never_read_as_verified() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url()), None).await;
    let mut client = gw.onboarding().await;
    let person = Person::adult("905"); // the simulator's "mismatch"
    let answer = verify(&mut client, ShortVideo, "tamper-1", &person).await.unwrap();
    assert_eq!(answer.status, pb::Status::NotVerified as i32);

    // Someone who can write to Redis flips the case to verified.
    let keys: Vec<String> = redis_command(
        &redis.url(),
        redis::cmd("KEYS").arg(format!("*{{{}}}:case", answer.verification_id)),
    )
    .await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: i64 = redis_command(
        &redis.url(),
        redis::cmd("HSET").arg(&keys[0]).arg("status").arg("verified"),
    )
    .await;

    let read = client
        .get_verification(pb::GetVerificationRequest {
            verification_id: answer.verification_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::Internal);
    assert_eq!(reason(&read).as_deref(), Some("RECORD_INTEGRITY"));
    let replay = verify(&mut client, ShortVideo, "tamper-1", &person).await.unwrap_err();
    assert_eq!(
        reason(&replay).as_deref(),
        Some("RECORD_INTEGRITY"),
        "a replay is not answered from it"
    );

    // Audited, with ids only.
    let mut audit = pb::audit_service_client::AuditServiceClient::new(gw.channel("admin").await);
    let trail = audit
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        trail
            .events
            .iter()
            .any(|e| e.action == "record_integrity_failed" && e.case_id == answer.verification_id)
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_hung_redis_never_holds_a_call_past_its_deadline() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let mut config = redis_config(&redis.url());
    // The server's own deadline for calls that set none.
    config.server.call_deadline_ms = Duration::from_millis(1_500);
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    verify(&mut client, ShortVideo, "hang-0", &Person::adult("123"))
        .await
        .unwrap();
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();

    redis.pause(); // SIGSTOP: connections stay open, nothing answers
    let request =
        |id: &str| common::sealed_request(&key, ShortVideo, "acct-1", id, &Person::adult("124").fields(), None);
    let mut call = tonic::Request::new(request("hang-1"));
    call.set_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), client.verify(call))
        .await
        .expect("no hang")
        .unwrap_err();
    let took = started.elapsed();
    // The server answered (its reason is in the status), before the client's own deadline.
    assert_eq!(reason(&status).as_deref(), Some("DEADLINE_EXCEEDED"), "{status:?}");
    assert!(took < Duration::from_millis(2_600), "answered after {took:?}");

    // A call without a deadline gets the server's.
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), client.verify(request("hang-2")))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::DeadlineExceeded | Code::Cancelled | Code::Unavailable
        ),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_600),
        "{:?}",
        started.elapsed()
    );
    redis.resume();
    gw.stop().await;
}

fn sealed() -> SealedPii {
    support::sealed_pii()
}

/// A store whose hook kills the server when a given step is reached, and the server to restart.
async fn store_killed_at(step: &'static str) -> (RedisStore, Arc<Mutex<RedisServer>>, RedisStore) {
    let server = Arc::new(Mutex::new(RedisServer::start().await));
    let url = server.lock().await.url();
    let options = test_options();
    let plain = RedisStore::standalone(&url, options.clone()).await.unwrap();
    let killer = server.clone();
    let hooked = plain.with_step_hook(Arc::new(move |at| {
        if at == step {
            // The store calls its hook between two of its own awaits: nobody else holds the lock.
            if let Ok(mut server) = killer.try_lock() {
                server.stop();
            }
        }
    }));
    (hooked, server, plain)
}

async fn restart(server: &Arc<Mutex<RedisServer>>) {
    server.lock().await.restart().await;
}

/// Retries a store call until Redis is back (bounded).
async fn until_back<T, F: std::future::Future<Output = Result<T, StoreError>>>(mut call: impl FnMut() -> F) -> T {
    for _ in 0..200 {
        if let Ok(value) = call().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis did not come back");
}

#[tokio::test]
async fn redis_killed_after_a_case_became_pending_the_sweep_queues_and_expires_it() {
    if !redis_tests_enabled() {
        return;
    }
    let (hooked, server, store) = store_killed_at("finish:after-script").await;
    let record = CaseRecord::processing(
        "vf_k",
        AccountId::parse("acct-1").unwrap(),
        RequestId::parse("r-1").unwrap(),
        "onboarding-dev",
        Purpose::Radio,
        "fp",
        NOW,
        NOW + 30,
    );
    hooked.begin(record, NOW).await.unwrap();
    let finish = Finish {
        status: CaseStatus::PendingReview,
        pii: Some((sealed(), NOW + 3_600)),
        ..Finish::default()
    };
    // Redis dies between the case script and the queue entry: the caller sees a failure.
    assert!(hooked.finish("vf_k", finish, NOW).await.is_err());
    restart(&server).await;
    assert_eq!(
        until_back(|| store.get("vf_k")).await.unwrap().status,
        CaseStatus::PendingReview,
        "the case script had committed"
    );
    // The sweep finds it by the status index and queues it: a reviewer gets it…
    store.sweep(NOW + 120, 0).await.unwrap();
    let claim = store
        .claim_next("rev-1", NOW + 121, NOW + 181, false, false)
        .await
        .unwrap()
        .expect("the repaired case is in the queue");
    assert_eq!(claim.case.id, "vf_k");
    store.release("vf_k", "rev-1", NOW + 122).await.unwrap();
    // …and it expires with its data when its retention ends.
    assert_eq!(store.sweep(NOW + 3_600, 0).await.unwrap(), 1);
    assert_eq!(store.get("vf_k").await.unwrap().unwrap().status, CaseStatus::Expired);
}

#[tokio::test]
async fn redis_killed_before_the_verifying_step_leaves_no_binding() {
    if !redis_tests_enabled() {
        return;
    }
    let (hooked, server, store) = store_killed_at("finish:before-script").await;
    let record = CaseRecord::processing(
        "vf_b",
        AccountId::parse("acct-1").unwrap(),
        RequestId::parse("r-1").unwrap(),
        "onboarding-dev",
        Purpose::Anchor,
        "fp",
        NOW,
        NOW + 30,
    );
    hooked.begin(record, NOW).await.unwrap();
    let claim = AnchorClaim {
        index: "bi:k".into(),
        consult: vec!["bi:k".into()],
        max_accounts: 1,
        ttl_seconds: 3_600,
    };
    let finish = Finish {
        status: CaseStatus::Verified,
        anchor: Some(claim.clone()),
        ..Finish::default()
    };
    assert!(hooked.finish("vf_b", finish, NOW + 1).await.is_err());
    restart(&server).await;
    let case = until_back(|| store.get("vf_b")).await.unwrap();
    assert_eq!(case.status, CaseStatus::Processing, "not verified");
    // Past the case's lease, the candidate binds nothing: another account may verify with the ID.
    assert!(
        store
            .anchor_accounts(&claim.consult, NOW + 31)
            .await
            .unwrap()
            .is_empty()
    );
    let other = CaseRecord::processing(
        "vf_o",
        AccountId::parse("acct-2").unwrap(),
        RequestId::parse("r-2").unwrap(),
        "onboarding-dev",
        Purpose::Anchor,
        "fp",
        NOW + 31,
        NOW + 61,
    );
    store.begin(other, NOW + 31).await.unwrap();
    let finish = Finish {
        status: CaseStatus::Verified,
        anchor: Some(claim.clone()),
        ..Finish::default()
    };
    assert_eq!(
        store.finish("vf_o", finish, NOW + 32).await.unwrap().status,
        CaseStatus::Verified
    );
    assert_eq!(
        store.anchor_accounts(&claim.consult, NOW + 33).await.unwrap(),
        ["acct-2"]
    );
}
