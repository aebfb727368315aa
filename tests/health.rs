//! Health that tells the truth: with a real `redis-server` behind the gateway, `grpc.health.v1`
//! reports the idgate services `NOT_SERVING` while Redis is down and `SERVING` once it is back, while
//! the overall `""` entry (liveness) stays `SERVING` throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::time::Duration;

use common::TestGateway;
use support::redis::{RedisServer, redis_tests_enabled};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICES: [&str; 3] = [
    "idgate.v1.VerificationService",
    "idgate.v1.ReviewService",
    "idgate.v1.AuditService",
];

async fn status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let answer = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("health check of {service:?}: {s:?}"))
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// Polls (bounded) until every idgate service reports `want`; checks liveness on each round.
async fn wait_for(client: &mut HealthClient<Channel>, want: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(
            status(client, "").await,
            ServingStatus::Serving,
            "liveness must not follow the store"
        );
        let mut got = Vec::new();
        for service in SERVICES {
            got.push(status(client, service).await);
        }
        if got.iter().all(|s| *s == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "services did not become {want:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn services_are_not_serving_while_redis_is_down_and_serving_when_it_returns() {
    if !redis_tests_enabled() {
        return;
    }
    let mut redis = RedisServer::start().await;
    let mut config = TestGateway::config();
    config.store.url = Some(redis.url());
    config.server.health_probe_interval_ms = Duration::from_millis(100);
    config.server.health_probe_timeout_ms = Duration::from_millis(500);
    let gateway = TestGateway::start_with(config, None).await;
    let mut health = HealthClient::new(gateway.channel("onboarding").await);

    wait_for(&mut health, ServingStatus::Serving).await;
    redis.stop();
    wait_for(&mut health, ServingStatus::NotServing).await;
    redis.restart().await;
    wait_for(&mut health, ServingStatus::Serving).await;
    // Frozen (connections open, nothing answers): the probe's timeout decides.
    redis.pause();
    wait_for(&mut health, ServingStatus::NotServing).await;
    redis.resume();
    wait_for(&mut health, ServingStatus::Serving).await;

    gateway.stop().await;
}
