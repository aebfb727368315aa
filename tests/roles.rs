//! Every RPC × every role, and no certificate at all: the authorization table of API.md §1/§3 holds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::TestGateway;
use idgate::pb;
use idgate::pb::review_service_client::ReviewServiceClient;
use idgate::pb::verification_service_client::VerificationServiceClient;
use idgate::transport::auth::{Role, Rpc, allowed_roles};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Calls `rpc` with an empty (or minimal) request.
async fn call(rpc: Rpc, channel: Channel) -> Result<(), Status> {
    let mut v = VerificationServiceClient::new(channel.clone());
    let channel_for_audit = channel.clone();
    let mut r = ReviewServiceClient::new(channel);
    let id = || pb::GetVerificationRequest {
        verification_id: "vf_x".into(),
    };
    match rpc {
        Rpc::GetSealingKey => v.get_sealing_key(pb::GetSealingKeyRequest {}).await.map(drop),
        Rpc::Verify => v.verify(pb::VerifyRequest::default()).await.map(drop),
        Rpc::GetVerification => v.get_verification(id()).await.map(drop),
        Rpc::WatchVerification => v.watch_verification(id()).await.map(drop),
        Rpc::SubmitSupplement => v
            .submit_supplement(pb::SubmitSupplementRequest::default())
            .await
            .map(drop),
        Rpc::EraseSubject => v.erase_subject(pb::EraseSubjectRequest::default()).await.map(drop),
        Rpc::RegisterReviewerKey => r
            .register_reviewer_key(pb::RegisterReviewerKeyRequest::default())
            .await
            .map(drop),
        Rpc::ClaimNext => r.claim_next(pb::ClaimNextRequest {}).await.map(drop),
        Rpc::SubmitDecision => r.submit_decision(pb::SubmitDecisionRequest::default()).await.map(drop),
        Rpc::ReleaseCase => r.release_case(pb::ReleaseCaseRequest::default()).await.map(drop),
        Rpc::GetQueueStats => r.get_queue_stats(pb::GetQueueStatsRequest {}).await.map(drop),
        Rpc::ListAuditEvents => pb::audit_service_client::AuditServiceClient::new(channel_for_audit)
            .list_audit_events(pb::ListAuditEventsRequest::default())
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn every_rpc_with_every_role() {
    let gw = TestGateway::start().await;
    let identities = [
        (Role::Onboarding, "onboarding"),
        (Role::Reviewer, "reviewer-1"),
        (Role::Admin, "admin"),
    ];
    for (role, stem) in identities {
        let channel = gw.channel(stem).await;
        for rpc in Rpc::ALL {
            let result = call(rpc, channel.clone()).await;
            let denied = matches!(&result, Err(s) if s.code() == Code::PermissionDenied);
            let allowed = allowed_roles(rpc).contains(&role);
            assert_eq!(!denied, allowed, "{rpc:?} as {role:?}: {result:?}");
            if let Err(status) = &result {
                // Unauthenticated would mean the certificate was not read at all.
                assert_ne!(status.code(), Code::Unauthenticated, "{rpc:?} as {role:?}");
            }
        }
    }
    gw.stop().await;
}

// A client without a certificate is refused by the TLS layer itself: see
// `tests/tls.rs::only_tls_13_with_a_client_certificate_is_served`.

#[test]
fn the_table_matches_the_contract() {
    use Role::*;
    for rpc in [
        Rpc::GetSealingKey,
        Rpc::Verify,
        Rpc::GetVerification,
        Rpc::WatchVerification,
        Rpc::SubmitSupplement,
    ] {
        assert_eq!(allowed_roles(rpc), &[Onboarding]);
    }
    assert_eq!(allowed_roles(Rpc::EraseSubject), &[Onboarding, Admin]);
    for rpc in [
        Rpc::RegisterReviewerKey,
        Rpc::ClaimNext,
        Rpc::SubmitDecision,
        Rpc::ReleaseCase,
    ] {
        assert_eq!(allowed_roles(rpc), &[Reviewer]);
    }
    assert_eq!(allowed_roles(Rpc::GetQueueStats), &[Reviewer, Admin]);
    assert_eq!(allowed_roles(Rpc::ListAuditEvents), &[Admin]);
}
