//! The real binary under signals: SIGTERM stops accepting and lets calls in flight finish.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::GatewayProcess;
use idgate::pb;

#[tokio::test]
async fn sigterm_finishes_the_call_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = GatewayProcess::start(&dir.path().join("dev"), &[]).await;
    // A call that stays in flight until the provider timeout sends its case to review.
    let call = gateway.call_in_flight("in-flight").await;
    gateway.signal(15);

    let answer = call
        .await
        .unwrap()
        .expect("the call in flight is answered")
        .into_inner();
    assert_eq!(answer.status, pb::Status::PendingReview as i32);
    let status = gateway.wait_exit(std::time::Duration::from_secs(20));
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}

/// Variables that share the `IDGATE_` prefix but are not configuration — the log level, and what
/// Kubernetes injects for a Service named `idgate` — do not stop the gateway; an unknown key under a
/// real section still does, and names the key.
#[tokio::test]
async fn start_up_tolerates_the_environment_it_runs_in() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(
        &dir.path().join("dev"),
        &[
            ("IDGATE_LOG", "debug"),
            ("IDGATE_SERVICE_HOST", "10.96.0.12"),
            ("IDGATE_SERVICE_PORT", "50051"),
            ("IDGATE_PORT", "tcp://10.96.0.12:50051"),
            ("IDGATE_PORT_50051_TCP_ADDR", "10.96.0.12"),
        ],
    )
    .await;
    assert!(gateway.stderr().contains("DEBUG"), "IDGATE_LOG took effect");
    drop(gateway);

    let (status, stderr) = GatewayProcess::run_to_exit(
        &dir.path().join("dev-bad"),
        &[("IDGATE_RETENTION__PENDING_REVIEW_TTL", "60")],
    );
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("pending_review_ttl"),
        "the unknown key is named: {stderr}"
    );
}
