//! The whole gateway with configured providers on loopback: an Alibaba Cloud simulator behind a
//! dead Tencent endpoint answers the case; with every provider down or hanging the case goes to
//! PENDING_REVIEW within the deadline, never to an error the onboarding backend must handle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Person, TestGateway, verify};
use idgate::clock::SystemClock;
use idgate::config::{ProviderConfig, ProviderKind, Secret};
use idgate::pb;
use idgate::pb::Purpose::{Anchor, ShortVideo};
use idgate::providers::breaker::BreakerConfig;
use idgate::providers::sim::{self, Faults, SimConfig, SimControl};
use idgate::providers::tencent::SecretKey;
use tokio::sync::oneshot;

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
        timeout_ms,
        max_concurrency: 8,
        scene_id: Some("1000000006".into()),
        rate_limit_backoff_ms: 1_000,
        breaker: BreakerConfig::default(),
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
    config.server.verify_deadline_ms = 3_000;
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
