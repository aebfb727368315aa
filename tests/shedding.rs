//! Load shedding through the real server: with `server.max_in_flight_verify = 1`, a Verify that waits on
//! a hanging provider (the simulator's sequence codes 990–999) holds the only slot, and another Verify
//! is answered at once with RESOURCE_EXHAUSTED / OVERLOADED and a RetryInfo, not queued.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{Person, TestGateway, reason, verify};
use idgate::pb;
use tonic_types::StatusExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_past_the_in_flight_limit_is_shed_with_retry_info() {
    let mut config = TestGateway::config();
    config.server.max_in_flight_verify = 1;
    config.server.shed_retry_after_ms = 2_000;
    // Held at the base: how the delay adapts is `shedding::Pushback`'s unit test.
    config.server.shed_retry_after_max_ms = 2_000;
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
