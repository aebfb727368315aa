//! The whole gateway with configured providers on loopback: an Alibaba Cloud simulator behind a
//! dead Tencent endpoint answers the case; with every provider down or hanging the case goes to
//! PENDING_REVIEW within the deadline, never to an error the onboarding backend must handle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Person, TestGateway, reason, sealed_request, sealing_key, verify};
use idgate::clock::SystemClock;
use idgate::config::{ProviderConfig, ProviderKind, Secret};
use idgate::pb;
use idgate::pb::Purpose::{Anchor, ShortVideo};
use idgate::providers::credentials::SecretKey;
use idgate::providers::sim::{self, Faults, SimConfig, SimControl};
use tokio::sync::oneshot;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const KEY_ID: &str = "LTAIloopback";
const SECRET: &str = "gateway-loopback-secret";

async fn aliyun_sim(faults: Faults) -> (std::net::SocketAddr, Arc<SimControl>, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = SimControl::new(faults).unwrap();
    let config = SimConfig {
        control: control.clone(),
        ..SimConfig::aliyun(KEY_ID, SecretKey::new(SECRET.into()))
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sim::serve(listener, config, Arc::new(SystemClock), async move {
        let _ = stopped.await;
    }));
    (addr, control, stop)
}

fn provider(name: &str, kind: ProviderKind, endpoint: String, timeout_ms: u64) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind,
        endpoint,
        secret_id: KEY_ID.into(),
        secret_key: Some(Secret::new(SECRET.into())),
        secret_key_file: None,
        region: None,
        timeout_ms: Duration::from_millis(timeout_ms),
        max_concurrency: 8,
        scene_id: Some("1000000006".into()),
        rate_limit_backoff_ms: Duration::from_millis(1_000),
        breaker: idgate::config::BreakerSettings::default(),
    }
}

async fn dead_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn status_of(r: &pb::VerifyResponse) -> pb::Status {
    pb::Status::try_from(r.status).expect("known status")
}

#[tokio::test]
async fn aliyun_answers_behind_a_dead_tencent_and_all_down_means_review() {
    let (addr, control, _stop) = aliyun_sim(Faults::default()).await;
    let mut config = TestGateway::config();
    config.server.verify_deadline_ms = Duration::from_millis(3_000);
    config.providers = vec![
        provider(
            "tencent-primary",
            ProviderKind::TencentFaceId,
            dead_endpoint().await,
            1_000,
        ),
        provider(
            "aliyun-backup",
            ProviderKind::AliyunCloudAuth,
            format!("http://{addr}"),
            1_000,
        ),
    ];
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;

    let answer = verify(&mut client, ShortVideo, "r-1", &Person::adult("123"))
        .await
        .unwrap();
    assert_eq!(status_of(&answer), pb::Status::Verified);
    let answer = verify(&mut client, ShortVideo, "r-2", &Person::adult("905"))
        .await
        .unwrap();
    assert_eq!(status_of(&answer), pb::Status::NotVerified);
    assert_eq!(control.requests(), 2);

    // Alibaba now hangs too: nobody can answer, the case waits for a human, within the deadline.
    control
        .set_faults(Faults {
            hang_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let started = Instant::now();
    let answer = verify(&mut client, Anchor, "r-3", &Person::adult("123")).await.unwrap();
    assert_eq!(status_of(&answer), pb::Status::PendingReview);
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "answered within the deadline"
    );
    gw.stop().await;
}

/// A caller's short deadline is not the provider's failure. A provider answering in 600 ms
/// (its timeout: 1.5 s) and callers that stop waiting after 500 ms: each caller is answered
/// DEADLINE_EXCEEDED while its case is still decided by the provider; no breaker opens, readiness
/// stays SERVING, and every retry gets the provider's decision, never a review.
#[tokio::test]
async fn callers_in_a_hurry_open_no_breaker_and_send_nothing_to_review() {
    let (addr, control, _stop) = aliyun_sim(Faults {
        latency_ms: 600,
        ..Faults::default()
    })
    .await;
    let mut config = TestGateway::config();
    config.server.health_probe_interval_ms = Duration::from_millis(50);
    config.providers = vec![provider(
        "aliyun",
        ProviderKind::AliyunCloudAuth,
        format!("http://{addr}"),
        1_500,
    )];
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    let key = sealing_key(&mut client).await;
    // 905: a name/ID pair the authority refuses.
    let refused = Person::adult("905").fields();
    let request = |request_id: &str| sealed_request(&key, ShortVideo, "acct-1", request_id, &refused, None);

    // More hurried callers than the five failures in a row that would open the breaker.
    let hurried: Vec<_> = (0..6)
        .map(|i| {
            let mut call = tonic::Request::new(request(&format!("hurried-{i}")));
            call.set_timeout(Duration::from_millis(500));
            let mut client = client.clone();
            tokio::spawn(async move { client.verify(call).await })
        })
        .collect();
    for call in hurried {
        let status = call
            .await
            .unwrap()
            .expect_err("the provider needs longer than the caller waits");
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{status:?}"
        );
    }
    // Each retry is answered with the provider's decision (a replay: no second provider call).
    for i in 0..6 {
        let answer = client
            .verify(request(&format!("hurried-{i}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status_of(&answer), pb::Status::NotVerified, "hurried-{i}");
    }
    assert_eq!(control.requests(), 6);
    // The breaker is closed: a caller with time gets the provider's decision too, and the gateway is
    // ready.
    let answer = client.verify(request("patient")).await.unwrap().into_inner();
    assert_eq!(status_of(&answer), pb::Status::NotVerified);
    assert_eq!(control.requests(), 7);
    let mut health = HealthClient::new(gw.channel("onboarding").await);
    let ready = health
        .check(HealthCheckRequest {
            service: "idgate.v1.VerificationService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ready.status, ServingStatus::Serving as i32);

    // A deadline that leaves no provider time (200 ms, less the gateway's margins and the 200 ms
    // minimum) starts nothing: DEADLINE_EXCEEDED with its reason, no provider call, no case.
    let mut call = tonic::Request::new(request("too-short"));
    call.set_timeout(Duration::from_millis(200));
    let status = client.verify(call).await.expect_err("too short to start");
    assert_eq!(
        (status.code(), reason(&status).as_deref()),
        (Code::DeadlineExceeded, Some("DEADLINE_TOO_SHORT"))
    );
    assert_eq!(control.requests(), 7, "no provider asked");
    // No case was kept under that request id: the retry with time is a new case, decided by the
    // provider (not a replay of a review case).
    let answer = client.verify(request("too-short")).await.unwrap().into_inner();
    assert_eq!(status_of(&answer), pb::Status::NotVerified);
    assert_eq!(control.requests(), 8);
    gw.stop().await;
}
