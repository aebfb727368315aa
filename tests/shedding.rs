//! Load shedding through the real server: with `server.max_in_flight_verify = 1`, a Verify that waits on
//! a hanging provider (the simulator's sequence codes 990–999) holds the only slot, and another Verify
//! is answered at once with RESOURCE_EXHAUSTED / OVERLOADED and a RetryInfo, not queued. The same for
//! `SubmitSupplement` past `server.max_in_flight_supplement`, with slots of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{Person, TestGateway, call_with_held_body, reason, verify};
use idgate::pb;
use tonic_types::StatusExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_past_the_in_flight_limit_is_shed_with_retry_info() {
    let mut config = TestGateway::config();
    config.server.max_in_flight_verify = 1;
    config.server.shed_retry_after_ms = std::time::Duration::from_millis(2_000);
    // Held at the base: how the delay adapts is `shedding::Pushback`'s unit test.
    config.server.shed_retry_after_max_ms = std::time::Duration::from_millis(2_000);
    let gateway = TestGateway::start_with(config, None).await;

    let mut slow_client = gateway.onboarding().await;
    // The slow call itself may be the one shed (when a fast call holds the slot at that moment):
    // then it tries again, so that it ends up holding the slot (bounded).
    let slow = tokio::spawn(async move {
        for _ in 0..200 {
            match verify(
                &mut slow_client,
                pb::Purpose::ShortVideo,
                "req-slow",
                &Person::adult("990"),
            )
            .await
            {
                Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                other => return other,
            }
        }
        panic!("the slow call was never admitted");
    });

    let mut client = gateway.onboarding().await;
    let mut shed = None;
    for attempt in 0..200 {
        assert!(
            !slow.is_finished(),
            "the hanging call ended before a second call was shed"
        );
        match verify(
            &mut client,
            pb::Purpose::ShortVideo,
            &format!("req-{attempt}"),
            &Person::adult("001"),
        )
        .await
        {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                shed = Some(status);
                break;
            }
            // Admitted before the slow call took the slot: try again.
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            Err(status) => panic!("unexpected {:?}", status.code()),
        }
    }
    let shed = shed.expect("a call past the limit was shed");
    assert_eq!(reason(&shed).as_deref(), Some("OVERLOADED"));
    assert_eq!(
        shed.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(std::time::Duration::from_secs(2))
    );

    // The slow call is answered (after failover) and its slot is free again.
    let answer = slow.await.unwrap().expect("the slow call is answered");
    assert_eq!(answer.status, pb::Status::PendingReview as i32);
    let after = verify(&mut client, pb::Purpose::ShortVideo, "req-after", &Person::adult("002")).await;
    assert_eq!(after.expect("admitted again").status, pb::Status::Verified as i32);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplement_past_its_in_flight_limit_is_shed_and_verify_is_not_affected() {
    let mut config = TestGateway::config();
    config.server.max_in_flight_supplement = 1;
    config.server.shed_retry_after_ms = std::time::Duration::from_millis(3_000);
    config.server.shed_retry_after_max_ms = std::time::Duration::from_millis(3_000);
    let gateway = TestGateway::start_with(config, None).await;

    // A supplement that holds the only slot: its request is never complete, so it stays in flight.
    let (held, release) = call_with_held_body(
        gateway.channel("onboarding").await,
        idgate::transport::auth::Rpc::SubmitSupplement.path(),
        4096,
        16,
    );
    let mut client = gateway.onboarding().await;
    let supplement = || pb::SubmitSupplementRequest::default();
    // Until the held call has taken the slot, other supplements are answered by the handler (an
    // empty request is INVALID_ARGUMENT); then they are shed (bounded).
    let mut shed = None;
    for _ in 0..200 {
        match client.submit_supplement(supplement()).await {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                shed = Some(status);
                break;
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let shed = shed.expect("a supplement past the limit was shed");
    assert_eq!(reason(&shed).as_deref(), Some("OVERLOADED"));
    assert_eq!(
        shed.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(std::time::Duration::from_secs(3))
    );
    assert!(!held.is_finished(), "the held supplement is still in flight");
    // Verify has its own slots.
    let answer = verify(
        &mut client,
        pb::Purpose::ShortVideo,
        "req-beside",
        &Person::adult("001"),
    )
    .await;
    assert_eq!(answer.expect("verify admitted").status, pb::Status::Verified as i32);

    // The held call ends (its body ends incomplete) and gives its slot back.
    drop(release);
    let _ = held.await.expect("held call");
    let after = client
        .submit_supplement(supplement())
        .await
        .expect_err("an empty supplement is refused");
    assert_eq!(after.code(), tonic::Code::InvalidArgument, "admitted again: {after:?}");
    gateway.stop().await;
}
