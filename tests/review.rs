//! Manual review end to end: reviewers with their own keys, leases, four-eyes, supplements, audit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::collections::HashSet;

use common::{Person, TestGateway, png, reason, verify};
use idgate::clock::{Clock, ManualClock, SystemClock};
use idgate::crypto::sealing::{Context, OpeningKey};
use idgate::pb;
use idgate::pb::audit_service_client::AuditServiceClient;
use idgate::pb::review_service_client::ReviewServiceClient;
use tonic::Code;
use tonic::transport::Channel;

struct ReviewerConsole {
    principal: &'static str,
    key: OpeningKey,
    client: ReviewServiceClient<Channel>,
}

impl ReviewerConsole {
    async fn open(gw: &TestGateway, principal: &'static str) -> Self {
        let (client, key) = common::registered_reviewer(gw.channel(principal).await).await;
        Self { principal, key, client }
    }

    async fn claim(&mut self) -> Option<pb::ClaimNextResponse> {
        let claim = self
            .client
            .claim_next(pb::ClaimNextRequest {})
            .await
            .unwrap()
            .into_inner();
        if !claim.case_id.is_empty() {
            // Every case says why it is in review, as one of the documented codes (never a score).
            assert!(
                idgate::decision::ReviewReason::from_code(&claim.review_reason).is_some(),
                "review_reason {:?}",
                claim.review_reason
            );
        }
        (!claim.case_id.is_empty()).then_some(claim)
    }

    /// Opens a claimed case as a console would: with the reviewer's own private key.
    fn read(&self, claim: &pb::ClaimNextResponse) -> idgate::domain::IdentityFields {
        let plain = self
            .key
            .open(
                &Context::review(&claim.case_id, self.principal),
                &claim.enc,
                &claim.ciphertext,
            )
            .unwrap();
        idgate::material::decode(&plain).unwrap()
    }

    async fn decide(&mut self, case_id: &str, decision: pb::Decision) -> Result<pb::Status, tonic::Status> {
        let request = pb::SubmitDecisionRequest {
            case_id: case_id.into(),
            decision: decision as i32,
            reason_code: "DOCS_MATCH".into(),
        };
        self.client
            .submit_decision(request)
            .await
            .map(|r| pb::Status::try_from(r.into_inner().status).unwrap())
    }
}

async fn supplement(gw: &TestGateway, verification_id: &str, request_id: &str) -> pb::VerifyResponse {
    common::submit_supplement(&mut gw.onboarding().await, verification_id, request_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_anchor_case_is_reviewed_end_to_end_with_supplement_and_audit() {
    anchor_review_flow(TestGateway::start().await).await;
}

#[tokio::test]
async fn an_anchor_case_is_reviewed_end_to_end_on_redis() {
    if !support::redis::redis_tests_enabled() {
        return;
    }
    let redis = support::redis::RedisServer::start().await;
    let mut config = TestGateway::config();
    config.store.url = Some(redis.url());
    anchor_review_flow(TestGateway::start_with(config, None).await).await;
}

async fn anchor_review_flow(gw: TestGateway) {
    let mut onboarding = gw.onboarding().await;
    let person = Person::adult("975");
    let pending = verify(&mut onboarding, pb::Purpose::Anchor, "review-1", &person)
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);

    // No key, no case.
    let mut raw = ReviewServiceClient::new(gw.channel("reviewer-1").await);
    let status = raw.claim_next(pb::ClaimNextRequest {}).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_deref()),
        (Code::FailedPrecondition, Some("NO_REVIEWER_KEY"))
    );
    let bad_key = raw
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: vec![1; 31],
        })
        .await;
    assert_eq!(bad_key.unwrap_err().code(), Code::InvalidArgument);

    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    assert!(r1.claim().await.is_none(), "an anchor case waits for its supplement");

    let after = supplement(&gw, &pending.verification_id, "supp-1").await;
    assert_eq!(after.status, pb::Status::PendingReview as i32);
    supplement(&gw, &pending.verification_id, "supp-1").await; // an idempotent retry

    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id.clone(),
    };
    let mut watch = onboarding.watch_verification(id.clone()).await.unwrap().into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        pb::Status::PendingReview as i32
    );

    let claim = r1.claim().await.expect("the case is ready now");
    assert_eq!(claim.case_id, pending.verification_id);
    assert_eq!(claim.purpose, pb::Purpose::Anchor as i32);
    assert!(claim.lease_expires_unix > SystemClock.now_unix());
    let fields = r1.read(&claim);
    assert_eq!(
        (fields.name.as_str(), fields.id_number.as_str()),
        (person.name.as_str(), person.id_number.as_str())
    );
    assert_eq!(fields.face_image, person.face);
    assert_eq!(fields.id_card_front, png(800, 500));
    assert_eq!(fields.handheld_id_photo, png(600, 800));
    // Bound to the reviewer: nobody else can open it.
    assert!(
        r1.key
            .open(
                &Context::review(&claim.case_id, "reviewer-2"),
                &claim.enc,
                &claim.ciphertext
            )
            .is_err()
    );

    assert_eq!(
        r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );
    let last = watch.message().await.unwrap().unwrap();
    assert_eq!((last.status, last.verified), (pb::Status::Verified as i32, true));
    assert!(watch.message().await.unwrap().is_none());
    let got = onboarding.get_verification(id).await.unwrap().into_inner();
    assert!(got.verified);
    // A decided case takes no more decisions.
    let again = r1.decide(&claim.case_id, pb::Decision::Reject).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    let mut audit = AuditServiceClient::new(gw.channel("admin").await);
    let events = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            case_id: claim.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "supplement_added",
            "case_claimed",
            "case_material_handed_out",
            "case_decided"
        ]
    );
    assert!(events.iter().skip(1).all(|e| e.actor == "reviewer-1"));
    let text = format!("{events:?}");
    assert!(!text.contains(&person.name) && !text.contains(&person.id_number) && !text.contains(&person.phone));
    // Paging by principal.
    let page = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            principal: "reviewer-1".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 2);
    let rest = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            principal: "reviewer-1".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rest.events.iter().all(|e| e.actor == "reviewer-1") && rest.events.len() >= 2);
    gw.stop().await;
}

#[tokio::test]
async fn four_eyes_needs_two_different_reviewers_and_a_rejection_ends_at_once() {
    let mut config = TestGateway::config();
    config.review.approvals_required = 2;
    four_eyes_flow(TestGateway::start_with(config, None).await).await;
}

#[tokio::test]
async fn four_eyes_on_redis_cluster() {
    if !support::redis::redis_tests_enabled() {
        return;
    }
    let cluster = support::redis::RedisCluster::start().await;
    let mut config = TestGateway::config();
    config.review.approvals_required = 2;
    config.store.cluster_nodes = Some(cluster.urls());
    four_eyes_flow(TestGateway::start_with(config, None).await).await;
}

async fn four_eyes_flow(gw: TestGateway) {
    let mut onboarding = gw.onboarding().await;
    let first = verify(&mut onboarding, pb::Purpose::ShortVideo, "fe-1", &Person::adult("945"))
        .await
        .unwrap();
    let second = verify(&mut onboarding, pb::Purpose::ShortVideo, "fe-2", &Person::adult("946"))
        .await
        .unwrap();

    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let mut r2 = ReviewerConsole::open(&gw, "reviewer-2").await;
    let claim = r1.claim().await.unwrap();
    assert_eq!(claim.case_id, first.verification_id, "oldest first");
    assert_eq!(
        r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::PendingReview
    );
    // reviewer-1 never gets the same case again; it gets the other one.
    let next = r1.claim().await.unwrap();
    assert_eq!(next.case_id, second.verification_id);
    assert_eq!(
        r1.decide(&next.case_id, pb::Decision::Reject).await.unwrap(),
        pb::Status::NotVerified
    );
    assert!(r1.claim().await.is_none());

    let claim2 = r2.claim().await.unwrap();
    assert_eq!(claim2.case_id, first.verification_id);
    assert_eq!(
        r2.decide(&claim2.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );
    assert!(r2.claim().await.is_none(), "the rejected case is gone from the queue");
    gw.stop().await;
}

#[tokio::test]
async fn leases_are_exclusive_expire_and_return_cases_to_the_queue() {
    let clock = ManualClock::new(SystemClock.now_unix());
    let mut config = TestGateway::config();
    config.review.lease_seconds = std::time::Duration::from_secs(60);
    let gw = TestGateway::start_with(config, Some(clock.clone())).await;
    let mut onboarding = gw.onboarding().await;
    let pending = verify(&mut onboarding, pb::Purpose::Radio, "lease-1", &Person::adult("950"))
        .await
        .unwrap();

    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let mut r2 = ReviewerConsole::open(&gw, "reviewer-2").await;
    let claim = r1.claim().await.unwrap();
    assert!(r2.claim().await.is_none(), "two reviewers never hold the same case");
    let mut stats_client = ReviewServiceClient::new(gw.channel("admin").await);
    let stats = stats_client
        .get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.pending, stats.claimed), (0, 1));

    // Another reviewer cannot decide or release it.
    let foreign = r2.decide(&claim.case_id, pb::Decision::Approve).await.unwrap_err();
    assert_eq!(
        (foreign.code(), reason(&foreign).as_deref()),
        (Code::PermissionDenied, Some("FOREIGN_LEASE"))
    );
    let release = r2
        .client
        .release_case(pb::ReleaseCaseRequest {
            case_id: claim.case_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(release.code(), Code::PermissionDenied);

    // The lease runs out: the case goes back, and the late decision is refused.
    clock.advance(61);
    let late = r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap_err();
    assert_eq!(
        (late.code(), reason(&late).as_deref()),
        (Code::FailedPrecondition, Some("LEASE_EXPIRED"))
    );
    let stats = stats_client
        .get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.pending, stats.claimed), (1, 0));
    assert!(stats.oldest_pending_age_seconds >= 61);
    let reclaimed = r2.claim().await.unwrap();
    assert_eq!(reclaimed.case_id, pending.verification_id);
    r2.client
        .release_case(pb::ReleaseCaseRequest {
            case_id: reclaimed.case_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        r1.claim().await.unwrap().case_id,
        pending.verification_id,
        "released cases return at once"
    );
    gw.stop().await;
}

#[tokio::test]
async fn retention_expiry_while_claimed_ends_the_case() {
    let clock = ManualClock::new(SystemClock.now_unix());
    let mut config = TestGateway::config();
    config.retention.pending_review_ttl_seconds = std::time::Duration::from_secs(600);
    config.retention.sweep_interval_seconds = std::time::Duration::from_secs(1);
    config.review.lease_seconds = std::time::Duration::from_secs(3_600);
    let gw = TestGateway::start_with(config, Some(clock.clone())).await;
    let mut onboarding = gw.onboarding().await;
    let pending = verify(&mut onboarding, pb::Purpose::ShortVideo, "exp-1", &Person::adult("955"))
        .await
        .unwrap();
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let claim = r1.claim().await.unwrap();
    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id.clone(),
    };
    let mut watch = onboarding.watch_verification(id).await.unwrap().into_inner();
    watch.message().await.unwrap();
    clock.advance(601);
    let expired = tokio::time::timeout(std::time::Duration::from_secs(20), watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.unwrap().status, pb::Status::Expired as i32);
    let refused = r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_deref()),
        (Code::FailedPrecondition, Some("NOT_PENDING"))
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reviewers_never_claim_the_same_case() {
    let gw = TestGateway::start().await;
    let mut onboarding = gw.onboarding().await;
    let mut expected = HashSet::new();
    for i in 0..12 {
        let seq = format!("{}", 940 + i);
        let answer = verify(
            &mut onboarding,
            pb::Purpose::ShortVideo,
            &format!("cc-{i}"),
            &Person::adult(&seq),
        )
        .await;
        expected.insert(answer.unwrap().verification_id);
    }
    let mut tasks = Vec::new();
    for principal in ["reviewer-1", "reviewer-2"] {
        let mut console = ReviewerConsole::open(&gw, principal).await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(claim) = console.claim().await {
                mine.push(claim.case_id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(unique.len(), claimed.len(), "a case was claimed twice");
    assert_eq!(unique, expected);
    gw.stop().await;
}

#[tokio::test]
async fn the_review_console_decides_a_case_and_leaves_nothing_behind() {
    let gw = TestGateway::start().await;
    let mut onboarding = gw.onboarding().await;
    let pending = verify(
        &mut onboarding,
        pb::Purpose::ShortVideo,
        "console-1",
        &Person::adult("947"),
    )
    .await
    .unwrap();
    let key_file = gw.dir.path().join("reviewer-2.review-key");
    let mut command = common::review_console_command(&gw, "reviewer-2");
    command
        .args(["--decide", "reject", "--reason", "FACE_MISMATCH"])
        .env("TMPDIR", gw.dir.path());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&pending.verification_id) && stdout.contains("STATUS_NOT_VERIFIED"),
        "{stdout}"
    );
    assert!(stdout.contains("测试员·甲"), "the reviewer sees the decrypted case");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The private image directory is gone.
    let leftovers: Vec<_> = std::fs::read_dir(gw.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("idgate-review-"))
        .collect();
    assert!(leftovers.is_empty(), "decrypted images left behind");
    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id,
    };
    assert_eq!(
        onboarding.get_verification(id).await.unwrap().into_inner().status,
        pb::Status::NotVerified as i32
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_queue_figures_behind_the_metrics_follow_the_queue() {
    let mut config = TestGateway::config();
    config.retention.sweep_interval_seconds = std::time::Duration::from_secs(1);
    let gw = TestGateway::start_with(config, None).await;
    let mut onboarding = gw.onboarding().await;
    for i in 0..2 {
        verify(
            &mut onboarding,
            pb::Purpose::Radio,
            &format!("fig-{i}"),
            &Person::adult(&format!("94{i}")),
        )
        .await
        .unwrap();
    }
    // The maintenance loop refreshes the figures every second; wait (bounded) for the next refresh.
    let wait_for = |pending: u64, claimed: u64| {
        let figures = gw.queue_figures.clone();
        async move {
            for _ in 0..200 {
                let now = figures.snapshot();
                if (now.pending, now.claimed) == (pending, claimed) {
                    return now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            panic!(
                "queue figures never reached pending={pending} claimed={claimed}: {:?}",
                figures.snapshot()
            );
        }
    };
    wait_for(2, 0).await;
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    r1.claim().await.unwrap();
    let figures = wait_for(1, 1).await;
    assert!(figures.oldest_pending_age_seconds >= 0);
    gw.stop().await;
}

#[tokio::test]
async fn a_reviewer_approval_respects_the_anchor_accounts_per_id_limit() {
    let mut config = TestGateway::config();
    config.limits.max_anchor_accounts_per_id = 1;
    config.review.anchor_requires_supplement = false;
    let gw = TestGateway::start_with(config, None).await;
    let mut onboarding = gw.onboarding().await;
    let key = onboarding
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    // The same person (grey-zone face, so a human decides) from two accounts.
    let person = Person::adult("975");
    let mut ids = Vec::new();
    for account in ["acct-1", "acct-2"] {
        let request = common::sealed_request(&key, pb::Purpose::Anchor, account, "anchor-1", &person.fields(), None);
        let answer = onboarding.verify(request).await.unwrap().into_inner();
        assert_eq!(answer.status, pb::Status::PendingReview as i32);
        ids.push(answer.verification_id);
    }
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let first = r1.claim().await.unwrap();
    assert_eq!(first.case_id, ids[0]);
    assert_eq!(
        r1.decide(&first.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );
    let second = r1.claim().await.unwrap();
    assert_eq!(second.case_id, ids[1]);
    assert_eq!(
        r1.decide(&second.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::NotVerified,
        "a second anchor account for one ID is refused even when a reviewer approves"
    );
    let mut audit = AuditServiceClient::new(gw.channel("admin").await);
    let events = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            case_id: ids[1].clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.detail.contains("approve_refused_by_id_account_limit"))
    );
    gw.stop().await;
}

/// An ANCHOR request of `person` who chose document review instead of face recognition and gave no
/// biometric consent (the face they sealed anyway must be dropped).
async fn verify_by_documents(gw: &TestGateway, request_id: &str, person: &Person) -> pb::VerifyResponse {
    let mut onboarding = gw.onboarding().await;
    let key = onboarding
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut request = common::sealed_request(&key, pb::Purpose::Anchor, "acct-1", request_id, &person.fields(), None);
    request.document_review = true;
    request.consent.as_mut().unwrap().biometric = None;
    onboarding.verify(request).await.unwrap().into_inner()
}

#[tokio::test]
async fn document_review_instead_of_face_recognition_end_to_end() {
    let gw = TestGateway::start().await;
    // Face recognition without the separate biometric consent is refused before anything happens.
    let mut onboarding = gw.onboarding().await;
    let key = onboarding
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let person = Person::adult("123");
    let mut no_consent = common::sealed_request(&key, pb::Purpose::Anchor, "acct-1", "face-1", &person.fields(), None);
    no_consent.consent.as_mut().unwrap().biometric = None;
    let status = onboarding.verify(no_consent).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_deref()),
        (Code::FailedPrecondition, Some("BIOMETRIC_CONSENT_MISSING"))
    );
    assert!(!status.message().contains(&person.name) && !status.message().contains(&person.id_number));

    // The non-face alternative: name + ID pass the two-factor check, then a reviewer decides from the
    // ID card photos; the face never reaches the case.
    let pending = verify_by_documents(&gw, "doc-1", &person).await;
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    assert!(r1.claim().await.is_none(), "the case waits for the ID card photos");
    supplement(&gw, &pending.verification_id, "supp-doc-1").await;
    let claim = r1.claim().await.expect("ready once the photos are in");
    assert_eq!(claim.case_id, pending.verification_id);
    assert_eq!(claim.review_reason, "DOCUMENT_REVIEW_REQUESTED");
    assert!(claim.supplement_complete);
    let fields = r1.read(&claim);
    assert!(fields.face_image.is_empty(), "the face was dropped, not stored");
    assert_eq!(fields.id_number, person.id_number);
    assert_eq!(fields.id_card_back, png(801, 500));
    assert_eq!(
        r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );

    // A two-factor mismatch ends the case at once, without a reviewer.
    let mismatch = verify_by_documents(&gw, "doc-2", &Person::adult("905")).await;
    assert_eq!(
        (mismatch.status, mismatch.verified),
        (pb::Status::NotVerified as i32, false)
    );
    assert!(r1.claim().await.is_none());
    gw.stop().await;
}

/// Faces kept apart on Redis, seen from inside Redis: a pending case's face and identity material
/// are separate stored values under separate data keys; both reviewers of a four-eyes case get the
/// face (a first approval does not end the need for it); the deciding step deletes the face's
/// wrapped key and body, and nothing written after it — no stored value, no AOF write — holds that
/// key again.
#[tokio::test]
async fn the_face_is_stored_apart_and_gone_with_the_decision_on_redis() {
    if !support::redis::redis_tests_enabled() {
        return;
    }
    let redis = support::redis::RedisServer::start().await;
    let mut config = TestGateway::config();
    config.store.url = Some(redis.url());
    config.review.approvals_required = 2;
    config.review.anchor_requires_supplement = false;
    let prefix = "idg"; // the default key prefix
    let gw = TestGateway::start_with(config, None).await;
    let mut onboarding = gw.onboarding().await;
    let mut person = Person::adult("975");
    person.face.extend(std::iter::repeat_n(0xA5u8, 40 * 1024));
    let pending = verify(&mut onboarding, pb::Purpose::Anchor, "apart-1", &person)
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let id = &pending.verification_id;
    let value = |values: &[(String, Vec<u8>)], suffix: &str| {
        let name = format!("{prefix}:{{{id}}}:{suffix}");
        values.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    };

    // Two values each, the face's body large enough for the face, the identity's not.
    let stored = support::redis::all_values(&[redis.url()]).await;
    let face_key = value(&stored, "face:key").expect("the face's own wrapped key");
    let face_body = value(&stored, "face:body").expect("the face's own body");
    let identity_key = value(&stored, "pii:key").expect("the identity material's wrapped key");
    let identity_body = value(&stored, "pii:body").expect("the identity material's body");
    assert!(
        face_body.len() > person.face.len(),
        "the face is sealed in its own value"
    );
    assert!(identity_body.len() < 40 * 1024, "the identity material holds no face");
    assert_ne!(face_key, identity_key, "separate data keys");
    let secrets = [
        person.name.as_bytes().to_vec(),
        person.id_number.as_bytes().to_vec(),
        person.phone.as_bytes().to_vec(),
        person.face[..64].to_vec(),
        vec![0xA5; 64],
    ];
    for (key, v) in &stored {
        for secret in &secrets {
            assert!(!support::redis::contains(v, secret), "plaintext under {key}");
        }
    }
    // The wrapped face key is a value of its own, in no other value.
    let wrapped = &face_key[face_key.len() - 72..];
    let holders: Vec<&String> = stored
        .iter()
        .filter(|(_, v)| support::redis::contains(v, wrapped))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(holders.len(), 1, "held by {holders:?}");

    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let mut r2 = ReviewerConsole::open(&gw, "reviewer-2").await;
    let claim = r1.claim().await.expect("the case");
    assert_eq!(
        r1.read(&claim).face_image,
        person.face,
        "the first reviewer sees the face"
    );
    assert_eq!(
        r1.decide(id, pb::Decision::Approve).await.unwrap(),
        pb::Status::PendingReview
    );
    let stored = support::redis::all_values(&[redis.url()]).await;
    assert_eq!(
        value(&stored, "face:key"),
        Some(face_key.clone()),
        "kept for the second reviewer"
    );

    let claim = r2.claim().await.expect("the case again");
    assert_eq!(
        r2.read(&claim).face_image,
        person.face,
        "the second reviewer sees it too"
    );
    let aof_before: Vec<(std::path::PathBuf, usize)> = redis
        .data_files()
        .into_iter()
        .map(|f| {
            let len = std::fs::read(&f).unwrap().len();
            (f, len)
        })
        .collect();
    assert_eq!(
        r2.decide(id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );

    let after = support::redis::all_values(&[redis.url()]).await;
    assert!(value(&after, "face:key").is_none() && value(&after, "face:body").is_none());
    for (key, v) in &after {
        assert!(
            !support::redis::contains(v, wrapped),
            "the face's wrapped key outlived the decision under {key}"
        );
    }
    // What the AOF gained from the decision on names the face's keys (their deletion) but never
    // holds the wrapped key or the face's body again.
    let mut grown = 0;
    for file in redis.data_files() {
        let bytes = std::fs::read(&file).unwrap();
        let from = aof_before
            .iter()
            .find(|(f, _)| *f == file)
            .map_or(0, |(_, len)| *len)
            .min(bytes.len());
        let new = &bytes[from..];
        grown += new.len();
        assert!(!support::redis::contains(new, wrapped), "AOF rewrote the face key");
        assert!(!support::redis::contains(new, &face_body[face_body.len() - 64..]));
    }
    assert!(grown > 0, "the decision was written to the AOF");
    gw.stop().await;
}

/// Biometric withdrawal end to end over gRPC on Redis: withdrawing the biometric consent destroys the
/// pending case's face in the store and turns the case to document review, where a reviewer still
/// decides it; withdrawing all consent erases the material. A reviewer may not withdraw, a missing
/// scope is refused with its reason, an unknown account is OK with 0, and the audit trail records
/// each withdrawal without personal data.
#[tokio::test]
async fn consent_withdrawal_end_to_end_on_redis() {
    if !support::redis::redis_tests_enabled() {
        return;
    }
    let redis = support::redis::RedisServer::start().await;
    let mut config = TestGateway::config();
    config.store.url = Some(redis.url());
    config.review.anchor_requires_supplement = false;
    let gw = TestGateway::start_with(config, None).await;
    let mut onboarding = gw.onboarding().await;
    let person = Person::adult("975");
    let pending = verify(&mut onboarding, pb::Purpose::Anchor, "withdraw-1", &person)
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let id = pending.verification_id.clone();
    let stored = |suffix: &str| {
        let name = format!("idg:{{{id}}}:{suffix}");
        let url = redis.url();
        async move {
            support::redis::all_values(&[url])
                .await
                .into_iter()
                .any(|(k, _)| k == name)
        }
    };
    assert!(stored("face:key").await && stored("face:body").await && stored("pii:body").await);

    // Only the onboarding role may withdraw.
    let mut as_reviewer =
        pb::verification_service_client::VerificationServiceClient::new(gw.channel("reviewer-1").await);
    let refused = as_reviewer
        .withdraw_consent(pb::WithdrawConsentRequest {
            account_id: "acct-1".into(),
            scope: pb::ConsentScope::BiometricOnly as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_deref()),
        (Code::PermissionDenied, Some("ROLE_NOT_ALLOWED"))
    );
    let no_scope = onboarding
        .withdraw_consent(pb::WithdrawConsentRequest {
            account_id: "acct-1".into(),
            scope: pb::ConsentScope::Unspecified as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (no_scope.code(), reason(&no_scope).as_deref()),
        (Code::InvalidArgument, Some("CONSENT_SCOPE_INVALID"))
    );
    assert!(stored("face:key").await, "nothing changed by refused calls");

    let withdraw = |account: &str, scope: pb::ConsentScope| pb::WithdrawConsentRequest {
        account_id: account.into(),
        scope: scope as i32,
    };
    let changed = onboarding
        .withdraw_consent(withdraw("acct-1", pb::ConsentScope::BiometricOnly))
        .await
        .unwrap()
        .into_inner()
        .cases_changed;
    assert_eq!(changed, 1);
    assert!(
        !stored("face:key").await && !stored("face:body").await,
        "the face is gone from the store"
    );
    assert!(
        stored("pii:key").await && stored("pii:body").await,
        "the identity material stays"
    );
    let unknown = onboarding
        .withdraw_consent(withdraw("acct-nobody", pb::ConsentScope::All))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown.cases_changed, 0);

    // The case is on the document path: it waits for the ID card and handheld photos, then a
    // reviewer sees no face and still decides it.
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    assert!(r1.claim().await.is_none(), "no documents yet: nothing to decide from");
    supplement(&gw, &id, "withdraw-documents").await;
    let claim = r1.claim().await.expect("reviewable with its documents");
    assert_eq!(claim.case_id, id);
    assert_eq!(claim.review_reason, "DOCUMENT_REVIEW_REQUESTED");
    let seen = r1.read(&claim);
    assert!(seen.face_image.is_empty(), "no face for the reviewer");
    assert_eq!(seen.id_number, person.id_number);
    assert_eq!(
        r1.decide(&id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );

    // Withdrawing all consent erases the pending material.
    let other = verify(&mut onboarding, pb::Purpose::Anchor, "withdraw-2", &person)
        .await
        .unwrap();
    assert_eq!(other.status, pb::Status::PendingReview as i32);
    let changed = onboarding
        .withdraw_consent(withdraw("acct-1", pb::ConsentScope::All))
        .await
        .unwrap()
        .into_inner()
        .cases_changed;
    assert_eq!(changed, 1);
    let now = onboarding
        .get_verification(pb::GetVerificationRequest {
            verification_id: other.verification_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.status, pb::Status::Erased as i32);
    let left = support::redis::all_values(&[redis.url()]).await;
    assert!(
        !left
            .iter()
            .any(|(k, _)| k.contains(&other.verification_id) && (k.contains(":pii:") || k.contains(":face:"))),
        "the erased case's material is gone"
    );

    // Audited, without personal data.
    let mut audit = AuditServiceClient::new(gw.channel("admin").await);
    let events = audit
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let withdrawals: Vec<_> = events.iter().filter(|e| e.action == "consent_withdrawn").collect();
    assert_eq!(withdrawals.len(), 3, "biometric, unknown account, all");
    assert!(
        withdrawals[0]
            .detail
            .starts_with("withdrawn=biometric_only account=acct-1 cases=")
    );
    assert!(
        withdrawals[2]
            .detail
            .starts_with("withdrawn=all account=acct-1 scope=own cases=")
    );
    for event in &events {
        let text = format!("{event:?}");
        for secret in [&person.name, &person.id_number, &person.phone] {
            assert!(!text.contains(secret.as_str()), "personal data in the audit trail");
        }
    }
    gw.stop().await;
}

/// `idgate consent withdraw --account ID --biometric-only` against a running gateway: the pending
/// case's face is destroyed and the case goes on to document review; without the flag, the case is
/// erased.
#[tokio::test]
async fn the_consent_command_withdraws_biometric_consent_then_all() {
    let gw = TestGateway::start().await;
    let mut onboarding = gw.onboarding().await;
    let pending = verify(
        &mut onboarding,
        pb::Purpose::Anchor,
        "cli-withdraw",
        &Person::adult("975"),
    )
    .await
    .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    let run = |extra: &'static [&'static str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_idgate"));
        command
            .args([
                "consent",
                "withdraw",
                "--target",
                &gw.addr.to_string(),
                "--account",
                "acct-1",
                "--certs",
            ])
            .arg(gw.certs())
            .args(extra);
        async move {
            let output = tokio::task::spawn_blocking(move || command.output())
                .await
                .unwrap()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).unwrap()
        }
    };
    assert_eq!(
        run(&["--biometric-only"]).await.trim(),
        "scope=CONSENT_SCOPE_BIOMETRIC_ONLY cases_changed=1"
    );
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    // The anchor case now waits for its documents (supplement) like any document-review case.
    assert!(r1.claim().await.is_none());
    assert_eq!(run(&[]).await.trim(), "scope=CONSENT_SCOPE_ALL cases_changed=1");
    let status = onboarding
        .get_verification(pb::GetVerificationRequest {
            verification_id: pending.verification_id,
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, pb::Status::Erased as i32);
    gw.stop().await;
}

/// Four-eyes with a supplement between the two approvals (an anchor case, offered once its first
/// supplement is in; a second one comes after the first approval): the first approval was given on
/// material the supplement replaced, so it is void; two approvals on the supplemented material
/// verify the case, the first reviewer's again among them.
async fn a_supplement_between_two_approvals_voids_the_first(gw: TestGateway) {
    let mut onboarding = gw.onboarding().await;
    let pending = verify(&mut onboarding, pb::Purpose::Anchor, "fe-supp", &Person::adult("975"))
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    supplement(&gw, &pending.verification_id, "fe-supp-1").await;
    let mut r1 = ReviewerConsole::open(&gw, "reviewer-1").await;
    let mut r2 = ReviewerConsole::open(&gw, "reviewer-2").await;
    let claim = r1.claim().await.unwrap();
    assert_eq!(claim.case_id, pending.verification_id);
    assert_eq!(
        r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::PendingReview
    );
    supplement(&gw, &pending.verification_id, "fe-supp-2").await;
    let claim = r2.claim().await.expect("offered to the second reviewer");
    assert_eq!(claim.case_id, pending.verification_id);
    assert!(
        claim.approved_by.is_empty(),
        "the first approval was given on other material"
    );
    assert!(claim.supplement_complete);
    assert!(!r2.read(&claim).id_card_front.is_empty(), "the supplemented material");
    assert_eq!(
        r2.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::PendingReview,
        "one approval on this material"
    );
    let claim = r1.claim().await.expect("offered to the first reviewer again");
    assert_eq!(claim.approved_by, ["reviewer-2"]);
    assert_eq!(
        r1.decide(&claim.case_id, pb::Decision::Approve).await.unwrap(),
        pb::Status::Verified
    );
    assert!(r1.claim().await.is_none() && r2.claim().await.is_none());
    gw.stop().await;
}

#[tokio::test]
async fn a_supplement_between_two_approvals_voids_the_first_embedded() {
    let mut config = TestGateway::config();
    config.review.approvals_required = 2;
    a_supplement_between_two_approvals_voids_the_first(TestGateway::start_with(config, None).await).await;
}

#[tokio::test]
async fn a_supplement_between_two_approvals_voids_the_first_on_redis() {
    if !support::redis::redis_tests_enabled() {
        return;
    }
    let redis = support::redis::RedisServer::start().await;
    let mut config = TestGateway::config();
    config.review.approvals_required = 2;
    config.store.url = Some(redis.url());
    a_supplement_between_two_approvals_voids_the_first(TestGateway::start_with(config, None).await).await;
}
