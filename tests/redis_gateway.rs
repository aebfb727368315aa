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
