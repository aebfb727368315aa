//! The gateway on Redis, end to end: the real server (and the real binary) with `store.url`, against
//! a real `redis-server` with an append-only file. Durability under SIGKILL, Redis outages, and no
//! plaintext at rest anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::time::Duration;

use common::{GatewayProcess, Person, TestGateway, reason, verify};
use idgate::pb;
use idgate::pb::Purpose::{Anchor, ShortVideo};
use support::redis::{RedisServer, redis_tests_enabled};
use tonic::Code;

fn redis_config(url: &str) -> idgate::config::Config {
    let mut config = TestGateway::config();
    config.store.url = Some(url.to_owned());
    config
}

#[tokio::test]
async fn no_acknowledged_verification_is_lost_when_the_gateway_is_killed() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let url = redis.url();
    let mut acknowledged = Vec::new();
    {
        let mut gateway = GatewayProcess::start(&dev, &[("IDGATE_STORE__URL", &url)]).await;
        let mut client = gateway.onboarding().await;
        for (i, seq) in ["123", "905", "945", "975", "124"].iter().enumerate() {
            let purpose = if i % 2 == 0 { ShortVideo } else { Anchor };
            let answer = verify(&mut client, purpose, &format!("kill-{i}"), &Person::adult(seq))
                .await
                .unwrap();
            acknowledged.push(answer);
        }
        gateway.signal(9);
        assert!(
            !gateway.wait_exit(Duration::from_secs(10)).success(),
            "killed, not exited"
        );
    }
    let gateway = GatewayProcess::start(&dev, &[("IDGATE_STORE__URL", &url)]).await;
    let mut client = gateway.onboarding().await;
    for answer in &acknowledged {
        let id = pb::GetVerificationRequest {
            verification_id: answer.verification_id.clone(),
        };
        let now = client
            .get_verification(id)
            .await
            .expect("readable after restart")
            .into_inner();
        assert_eq!(&now, answer);
    }
}

#[tokio::test]
async fn redis_down_means_unavailable_within_the_deadline_and_the_gateway_recovers() {
    if !redis_tests_enabled() {
        return;
    }
    let mut redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url()), None).await;
    let mut client = gw.onboarding().await;
    let before = verify(&mut client, ShortVideo, "down-0", &Person::adult("123"))
        .await
        .unwrap();

    redis.stop();
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let request = common::sealed_request(
        &key,
        ShortVideo,
        "acct-1",
        "down-1",
        &Person::adult("124").fields(),
        None,
    );
    let mut call = tonic::Request::new(request);
    call.set_timeout(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), client.verify(call))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{:?} {}",
        status.code(),
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered within the deadline: {:?}",
        started.elapsed()
    );
    if status.code() == Code::Unavailable {
        assert_eq!(reason(&status).as_deref(), Some("STORE_UNAVAILABLE"));
    }

    redis.restart().await;
    // The gateway reconnects by itself: within a bounded time the same request goes through.
    let mut recovered = None;
    for _ in 0..100 {
        match verify(&mut client, ShortVideo, "down-2", &Person::adult("125")).await {
            Ok(answer) => {
                recovered = Some(answer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        recovered.expect("recovered after Redis returned").status,
        pb::Status::Verified as i32
    );
    let id = pb::GetVerificationRequest {
        verification_id: before.verification_id.clone(),
    };
    assert_eq!(
        client.get_verification(id).await.unwrap().into_inner(),
        before,
        "persisted across the restart"
    );
    gw.stop().await;
}

#[tokio::test]
async fn every_flow_through_the_gateway_leaves_no_plaintext_at_rest() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = RedisServer::start().await;
    let clock = idgate::clock::ManualClock::new(idgate::clock::Clock::now_unix(&idgate::clock::SystemClock));
    let mut config = redis_config(&redis.url());
    config.retention.pending_review_ttl_seconds = Duration::from_secs(600);
    config.retention.sweep_interval_seconds = Duration::from_secs(1);
    config.limits.max_anchor_accounts_per_id = 1;
    let gw = TestGateway::start_with(config, Some(clock.clone())).await;
    let mut client = gw.onboarding().await;

    // Every provider path for both purposes, each twice (idempotent replays), with big images.
    let mut people = Vec::new();
    let mut pending = Vec::new();
    for (i, seq) in ["123", "905", "945", "965", "975", "985", "995"].iter().enumerate() {
        let mut person = Person::adult(seq);
        person.face = common::png(640, 480);
        person.face.extend(std::iter::repeat_n(0xA5u8, 40 * 1024));
        for purpose in [ShortVideo, Anchor] {
            let request_id = format!("all-{i}-{}", purpose as i32);
            let answer = verify(&mut client, purpose, &request_id, &person).await.unwrap();
            assert_eq!(
                answer,
                verify(&mut client, purpose, &request_id, &person).await.unwrap()
            );
            if answer.status == pb::Status::PendingReview as i32 {
                pending.push(answer.verification_id);
            }
        }
        people.push(person);
    }
    // The anchor-accounts limit (blind index) from a second account.
    let mut other =
        idgate::pb::verification_service_client::VerificationServiceClient::new(gw.channel("onboarding").await);
    let key = other
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let request = common::sealed_request(&key, Anchor, "acct-2", "limit-1", &people[0].fields(), None);
    let status = other.verify(request).await.unwrap_err();
    assert_eq!(reason(&status).as_deref(), Some("ID_ACCOUNT_LIMIT"));

    // While cases are pending, their sealed material is in Redis — as ciphertext only.
    let stored = support::redis::all_values(&[redis.url()]).await;
    assert!(
        stored.iter().any(|(_, v)| v.len() > 40 * 1024),
        "pending material is stored (sealed)"
    );
    let secrets = |people: &[Person]| -> Vec<Vec<u8>> {
        people
            .iter()
            .flat_map(|p| {
                [
                    p.name.as_bytes().to_vec(),
                    p.id_number.as_bytes().to_vec(),
                    p.id_number.as_bytes()[..17].to_vec(),
                    p.phone.as_bytes().to_vec(),
                    p.face[..64].to_vec(),
                    vec![0xA5; 64],
                ]
            })
            .collect()
    };
    let check = |values: &[(String, Vec<u8>)]| {
        for (key, value) in values {
            for secret in secrets(&people) {
                assert!(!support::redis::contains(value, &secret), "plaintext under {key}");
                assert!(
                    !support::redis::contains(key.as_bytes(), &secret),
                    "plaintext in a key name"
                );
            }
        }
    };
    check(&stored);
    // Faces are kept apart: each pending anchor case holds its (40 KiB) face in a value of its own,
    // and identity material too small to hold a face in another.
    let mut anchors_seen = 0;
    for id in &pending {
        let value = |suffix: &str| {
            let name = format!("idg:{{{id}}}:{suffix}");
            stored.iter().find(|(k, _)| *k == name).map(|(_, v)| v.len())
        };
        let identity = value("pii:body").expect("identity material stored");
        assert!(identity < 40 * 1024, "a face in the identity material of {id}");
        if let Some(face) = value("face:body") {
            assert!(face > 40 * 1024, "the face of {id} in its own value");
            assert!(value("face:key").is_some(), "under its own data key");
            anchors_seen += 1;
        }
    }
    assert!(anchors_seen > 0, "some pending anchor case holds a face");

    // Erase one pending case's account… (a separate account, so the others stay pending)
    let person = Person::adult("946");
    let key = other
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let request = common::sealed_request(&key, ShortVideo, "acct-3", "erase-1", &person.fields(), None);
    assert_eq!(
        other.verify(request).await.unwrap().into_inner().status,
        pb::Status::PendingReview as i32
    );
    let erased = other
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-3".into(),
        })
        .await
        .unwrap();
    assert_eq!(erased.into_inner().cases_erased, 1);
    // …and let retention expire the rest.
    let watch_id = pb::GetVerificationRequest {
        verification_id: pending[0].clone(),
    };
    let mut watch = client.watch_verification(watch_id).await.unwrap().into_inner();
    watch.message().await.unwrap();
    clock.advance(601);
    let last = tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(last.status, pb::Status::Expired as i32);
    for id in &pending {
        let status = client
            .get_verification(pb::GetVerificationRequest {
                verification_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, pb::Status::Expired as i32);
    }
    gw.stop().await;

    // Afterwards: nothing large enough to hold an image, nothing personal, in any key, value or AOF.
    let after = support::redis::all_values(&[redis.url()]).await;
    check(&after);
    let largest = after.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    assert!(largest <= 1024, "a value of {largest} bytes outlived its case");
    let files = redis.data_files();
    assert!(!files.is_empty(), "the append-only file exists");
    let mut scanned = 0;
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        scanned += bytes.len();
        for secret in secrets(&people) {
            assert!(
                !support::redis::contains(&bytes, &secret),
                "plaintext in {}",
                file.display()
            );
        }
    }
    assert!(scanned > 40 * 1024, "the AOF saw the sealed material ({scanned} bytes)");
}

/// The gateway on a locked-down Redis: TLS only with a client certificate, the `default` user off,
/// and an ACL user that may touch only `idg:*` keys with `support::redis::GATEWAY_COMMANDS`. A
/// verification and a case sent to review go through; a wrong password, a plain `redis://` URL and
/// TLS files with a plain URL each stop the start with a clear error that names no password.
#[tokio::test]
async fn the_gateway_runs_on_a_locked_down_redis_and_a_wrong_login_stops_the_start() {
    if !redis_tests_enabled() {
        return;
    }
    let redis = support::redis::LockedDown::start().await;
    let (username, password) = redis.gateway_user("idg").await;
    // The user is locked down indeed: other keys and dangerous commands are refused.
    let mut as_gateway = redis
        .admin
        .client_as(&redis.server.url(), &username, &password)
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for cmd in [
        redis::cmd("GET").arg("other:key").clone(),
        redis::cmd("FLUSHALL"),
        redis::cmd("KEYS").arg("*").clone(),
    ] {
        let refused = cmd.query_async::<redis::Value>(&mut as_gateway).await.unwrap_err();
        assert_eq!(
            refused.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm),
            "{refused:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        // Owner-only: key and secret files others may read are refused.
        idgate::crypto::keyfile::write_private_file(&path, bytes).unwrap();
        path
    };
    let mut config = redis_config(&redis.server.url());
    config.store.username = Some(username);
    config.store.password_file = Some(file("password", format!("{password}\n").as_bytes()));
    config.store.tls_ca_file = Some(file("ca.pem", &redis.admin.ca));
    config.store.tls_cert_file = Some(file("client.pem", &redis.admin.client_cert));
    config.store.tls_key_file = Some(file("client.key", &redis.admin.client_key));

    let gw = TestGateway::start_with(config.clone(), None).await;
    let mut client = gw.onboarding().await;
    let verified = verify(&mut client, ShortVideo, "locked-0", &Person::adult("123"))
        .await
        .unwrap();
    assert_eq!(verified.status, pb::Status::Verified as i32);
    let pending = verify(&mut client, Anchor, "locked-1", &Person::adult("945"))
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    gw.stop().await;

    const WRONG: &str = "wrong-password-never-printed-7f3a";
    let mut wrong = config.clone();
    wrong.store.password_file = None;
    wrong.store.password = Some(idgate::config::Secret::new(WRONG.to_owned()));
    let error = start_error(wrong).await;
    assert!(error.contains("refused the login"), "{error}");
    assert!(!error.contains(WRONG) && !error.contains(&password), "{error}");

    let mut plain = config.clone();
    plain.store.url = Some(redis.server.url().replace("rediss://", "redis://"));
    let error = start_error(plain.clone()).await;
    assert!(error.contains("rediss://"), "TLS files need rediss://: {error}");
    plain.store.tls_ca_file = None;
    plain.store.tls_cert_file = None;
    plain.store.tls_key_file = None;
    let error = start_error(plain).await;
    assert!(
        error.contains("could not be reached"),
        "no plain link to a TLS port: {error}"
    );
    assert!(!error.contains(&password), "{error}");
}

/// The start-up error of a gateway built from `config` (it must not start).
async fn start_error(config: idgate::config::Config) -> String {
    let dir = tempfile::tempdir().unwrap();
    let listen = "127.0.0.1:0".parse().unwrap();
    let clock = idgate::clock::SystemClock;
    let now = idgate::clock::Clock::now_unix(&clock);
    let plan = idgate::gateway::Plan::dev(config, Some(listen), &dir.path().join("dev"), now).unwrap();
    match idgate::gateway::Gateway::build(plan, std::sync::Arc::new(clock)).await {
        Ok(_) => panic!("the gateway started"),
        Err(error) => error.to_string(),
    }
}
