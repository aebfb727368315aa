//! The real binary under signals: SIGTERM stops accepting and lets calls in flight finish.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{GatewayProcess, Person};
use idgate::pb;

#[tokio::test]
async fn sigterm_finishes_the_call_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = GatewayProcess::start(&dir.path().join("dev"), &[]).await;
    let mut client = gateway.onboarding().await;
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    // Sequence 995: the simulated provider never answers, so the call stays in flight until the
    // provider timeout (1.5 s) sends the case to review.
    let person = Person::adult("995");
    let request = common::sealed_request(
        &key,
        pb::Purpose::ShortVideo,
        "acct-1",
        "in-flight",
        &person.fields(),
        None,
    );
    let duplicate = request.clone();
    let call = tokio::spawn(async move { client.verify(request).await });
    // Signal only once the case is certainly being processed: a duplicate of the same request with a
    // short deadline is answered IN_PROGRESS exactly then.
    let mut probe = gateway.onboarding().await;
    let mut in_progress = false;
    for _ in 0..100 {
        let mut attempt = tonic::Request::new(duplicate.clone());
        attempt.set_timeout(std::time::Duration::from_millis(300));
        match probe.verify(attempt).await {
            Err(status) if common::reason(&status).as_deref() == Some("IN_PROGRESS") => {
                in_progress = true;
                break;
            }
            _ => continue,
        }
    }
    assert!(in_progress, "the call never showed as in progress");
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
