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
