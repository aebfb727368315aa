//! Every RPC × every role, and no certificate at all: the authorization table of docs/api.md §1/§3 holds,
//! on the call's headers (a refused caller's request body is never read), and no certificate acts
//! under the gateway's own audit name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{TestGateway, answered_while_held, call_with_held_body, reason};
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
        Rpc::WithdrawConsent => v
            .withdraw_consent(pb::WithdrawConsentRequest::default())
            .await
            .map(drop),
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
                // A refusal by the table carries its reason like every other refusal; an allowed
                // call that fails fails for another reason.
                let by_the_table = reason(status).as_deref() == Some("ROLE_NOT_ALLOWED");
                assert_eq!(by_the_table, !allowed, "{rpc:?} as {role:?}: {status:?}");
            }
        }
    }
    gw.stop().await;
}

/// Writes `<stem>.pem` / `<stem>.key` into the dev PKI `dir`: a client certificate issued by the dev
/// CA whose subject OU is `ou` and CN is `cn`.
fn issue_client_certificate(dir: &Path, stem: &str, ou: &str, cn: &str) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    // The dev CA as `idgate::pki` made it (its name and key): enough to sign with.
    let ca_key = KeyPair::from_pem(&read("ca.key")).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::OrganizationName, "idgate development");
    ca_name.push(DnType::CommonName, "idgate development CA");
    ca.distinguished_name = ca_name;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "idgate development");
    name.push(DnType::OrganizationalUnitName, ou);
    name.push(DnType::CommonName, cn);
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    // Its owner's only, as the client tools require of a private key.
    idgate::crypto::keyfile::write_private_file(&dir.join(format!("{stem}.key")), key.serialize_pem().as_bytes())
        .unwrap();
}

#[tokio::test]
async fn a_certificate_of_no_known_role_is_refused_with_a_reason() {
    let gw = TestGateway::start().await;
    // Issued by the trusted CA, so the TLS handshake succeeds: the refusal is the role check's.
    issue_client_certificate(&gw.certs(), "auditor", "auditor", "auditor-1");
    let channel = gw.channel("auditor").await;
    for rpc in Rpc::ALL {
        let status = call(rpc, channel.clone()).await.expect_err("no role, no call");
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc:?}: {status:?}");
        assert_eq!(status.message(), "the client certificate names no known role");
        assert_eq!(reason(&status).as_deref(), Some("CERTIFICATE_UNRECOGNIZED"), "{rpc:?}");
    }
    gw.stop().await;
}

/// Calls every RPC with a request body that declares an 8 MiB message and sends 1 KiB of it, the rest
/// held: the answer comes while the body is incomplete, so the refusal did not read it.
async fn refused_before_the_body(channel: &Channel, rpcs: &[Rpc], code: Code, want_reason: &str) {
    for rpc in rpcs {
        let (call, release) = call_with_held_body(channel.clone(), rpc.path(), 8 << 20, 1024);
        let status = answered_while_held(call, &format!("{rpc:?}")).await;
        assert_eq!(status.code(), code, "{rpc:?}: {status:?}");
        assert_eq!(reason(&status).as_deref(), Some(want_reason), "{rpc:?}");
        drop(release);
    }
}

#[tokio::test]
async fn a_caller_the_table_refuses_is_answered_before_its_request_body_is_read() {
    let gw = TestGateway::start().await;
    issue_client_certificate(&gw.certs(), "auditor", "auditor", "auditor-1");
    refused_before_the_body(
        &gw.channel("auditor").await,
        &Rpc::ALL,
        Code::PermissionDenied,
        "CERTIFICATE_UNRECOGNIZED",
    )
    .await;
    // A known role, on a method the table does not allow it.
    let not_for_reviewers: Vec<Rpc> = Rpc::ALL
        .into_iter()
        .filter(|rpc| !allowed_roles(*rpc).contains(&Role::Reviewer))
        .collect();
    refused_before_the_body(
        &gw.channel("reviewer-1").await,
        &not_for_reviewers,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn a_certificate_named_like_the_gateway_is_refused_on_every_call() {
    let gw = TestGateway::start().await;
    // The gateway writes its own audit events (retention, key rotation, integrity alarms) as
    // `idgate`: a client certificate of any role and any letter case of that name is no caller.
    for (stem, ou, cn) in [
        ("as-idgate", "onboarding", "idgate"),
        ("as-idgate-admin", "admin", "IDGATE"),
        ("as-idgate-reviewer", "reviewer", "IdGate"),
    ] {
        issue_client_certificate(&gw.certs(), stem, ou, cn);
        let channel = gw.channel(stem).await;
        for rpc in Rpc::ALL {
            let status = call(rpc, channel.clone()).await.expect_err("a reserved name, no call");
            assert_eq!(status.code(), Code::PermissionDenied, "{rpc:?} as {cn}: {status:?}");
            assert_eq!(
                reason(&status).as_deref(),
                Some("PRINCIPAL_RESERVED"),
                "{rpc:?} as {cn}"
            );
        }
    }
    // A name that only starts like it is a principal like any other.
    issue_client_certificate(&gw.certs(), "idgate-ops", "admin", "idgate-ops");
    pb::audit_service_client::AuditServiceClient::new(gw.channel("idgate-ops").await)
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .expect("served");
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
        Rpc::WithdrawConsent,
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
