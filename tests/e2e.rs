//! End-to-end: the real server on 127.0.0.1:0 over mutual TLS 1.3, the built-in provider simulator,
//! the embedded store, called through the generated client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{Person, TestGateway, reason, sealed_request, sealing_key, verify};
use idgate::pb;
use idgate::pb::Purpose::{Anchor, ShortVideo};
use idgate::pb::Status::{Expired, NotVerified, PendingReview, Verified};
use tonic::Code;

fn status_of(r: &pb::VerifyResponse) -> pb::Status {
    pb::Status::try_from(r.status).expect("known status")
}

#[tokio::test]
async fn every_simulator_path_reaches_its_documented_outcome() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    // (purpose, sequence code, expected status) — docs/api.md §5.
    let table = [
        (ShortVideo, "123", Verified),
        (ShortVideo, "905", NotVerified),
        (ShortVideo, "945", PendingReview),
        (ShortVideo, "965", Verified),
        (ShortVideo, "985", PendingReview),
        (Anchor, "123", Verified),
        (Anchor, "905", NotVerified),
        (Anchor, "945", PendingReview),
        (Anchor, "965", NotVerified),
        (Anchor, "975", PendingReview),
        (Anchor, "985", PendingReview),
        (Anchor, "995", PendingReview),
    ];
    for (i, (purpose, seq, expected)) in table.into_iter().enumerate() {
        let answer = verify(&mut client, purpose, &format!("req-{i}"), &Person::adult(seq))
            .await
            .unwrap_or_else(|s| panic!("{purpose:?} {seq}: {s:?}"));
        assert_eq!(status_of(&answer), expected, "{purpose:?} seq {seq}");
        assert_eq!(answer.verified, expected == Verified);
        assert!(answer.verification_id.starts_with("vf_"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_retried_request_gets_the_same_answer() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    let person = Person::adult("123");
    let first = verify(&mut client, Anchor, "same-request", &person)
        .await
        .expect("first");
    let again = verify(&mut client, Anchor, "same-request", &person)
        .await
        .expect("again");
    assert_eq!(first, again);
    let other = verify(&mut client, Anchor, "other-request", &person)
        .await
        .expect("other");
    assert_ne!(first.verification_id, other.verification_id);
    // The same request_id for a different purpose is a conflict, not a silent second case.
    let clash = verify(&mut client, ShortVideo, "same-request", &person)
        .await
        .expect_err("clash");
    assert_eq!(clash.code(), Code::AlreadyExists);
    gw.stop().await;
}

#[tokio::test]
async fn a_payload_sealed_with_other_bound_fields_is_refused_with_one_message() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("key")
        .into_inner();
    assert_eq!(key.public_key.len(), 32);
    let fields = Person::adult("123").fields();
    let anchor = Anchor as i32;
    let mut messages = Vec::new();
    for bound in [
        (ShortVideo as i32, "acct-1", "r-1"),
        (anchor, "acct-2", "r-1"),
        (anchor, "acct-1", "r-2"),
    ] {
        let request = sealed_request(&key, Anchor, "acct-1", "r-1", &fields, Some(bound));
        let status = client.verify(request).await.expect_err("must be refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        messages.push(status.message().to_owned());
    }
    // Unknown key id, and a damaged ciphertext.
    let mut unknown_key = sealed_request(&key, Anchor, "acct-1", "r-1", &fields, None);
    unknown_key.payload.as_mut().expect("payload").key_id = "sk-nope".into();
    let mut damaged = sealed_request(&key, Anchor, "acct-1", "r-1", &fields, None);
    let payload = damaged.payload.as_mut().expect("payload");
    let mut ciphertext = payload.ciphertext.to_vec();
    ciphertext[3] ^= 0x40;
    payload.ciphertext = ciphertext.into();
    for request in [unknown_key, damaged] {
        let status = client.verify(request).await.expect_err("must be refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status).as_deref(), Some("PAYLOAD_UNOPENABLE"));
        messages.push(status.message().to_owned());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "the same message whatever the cause: {messages:?}");
    // The correctly bound request still works.
    let ok = sealed_request(&key, Anchor, "acct-1", "r-1", &fields, None);
    assert_eq!(status_of(&client.verify(ok).await.expect("ok").into_inner()), Verified);
    gw.stop().await;
}

#[tokio::test]
async fn local_checks_refuse_with_a_reason_and_never_echo_input() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;

    let mut bad_checksum = Person::adult("123");
    let last = if bad_checksum.id_number.ends_with('0') {
        '1'
    } else {
        '0'
    };
    bad_checksum.id_number.pop();
    bad_checksum.id_number.push(last);
    let today = time::OffsetDateTime::now_utc().date();
    let minor_birth = format!(
        "{:04}{:02}{:02}",
        today.year() - 16,
        u8::from(today.month()),
        today.day().min(28)
    );
    let minor = Person {
        id_number: common::id_number(&minor_birth, "123"),
        ..Person::adult("123")
    };
    let mut no_face = Person::adult("123");
    no_face.face.clear();
    let mut gif_face = Person::adult("123");
    gif_face.face = b"GIF89a\x40\x00\x40\x00\x00\x00\x00;".to_vec();

    let cases = [
        (&bad_checksum, ShortVideo, Code::InvalidArgument, "ID_NUMBER_CHECKSUM"),
        (&minor, Anchor, Code::FailedPrecondition, "UNDERAGE"),
        (&no_face, Anchor, Code::InvalidArgument, "FACE_IMAGE_MISSING"),
        (&gif_face, Anchor, Code::InvalidArgument, "IMAGE_FORMAT"),
    ];
    for (i, (person, purpose, code, expected_reason)) in cases.into_iter().enumerate() {
        let status = verify(&mut client, purpose, &format!("bad-{i}"), person)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{expected_reason}: {status:?}");
        assert_eq!(reason(&status).as_deref(), Some(expected_reason));
        let text = format!("{status:?} {}", status.message());
        for secret in [&person.name, &person.id_number, &person.phone] {
            assert!(!text.contains(secret.as_str()), "status echoes input: {text}");
        }
    }

    // Malformed public fields.
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("key")
        .into_inner();
    let fields = Person::adult("123").fields();
    let mut no_consent = sealed_request(&key, Anchor, "acct-1", "r-x", &fields, None);
    no_consent.consent = None;
    let status = client.verify(no_consent).await.expect_err("no consent");
    assert_eq!(
        (status.code(), reason(&status).as_deref()),
        (Code::InvalidArgument, Some("CONSENT_MISSING"))
    );
    let bad_id = sealed_request(&key, Anchor, "acct 1", "r-x", &fields, None);
    let status = client.verify(bad_id).await.expect_err("bad account id");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut no_purpose = sealed_request(&key, Anchor, "acct-1", "r-x", &fields, None);
    no_purpose.purpose = 0;
    assert_eq!(
        client.verify(no_purpose).await.expect_err("no purpose").code(),
        Code::InvalidArgument
    );
    gw.stop().await;
}

#[tokio::test]
async fn get_and_watch_follow_a_case_to_its_final_status() {
    // A manual clock lets the retention limit pass without waiting 72 hours.
    let clock = idgate::clock::ManualClock::new(idgate::clock::Clock::now_unix(&idgate::clock::SystemClock));
    let mut config = TestGateway::config();
    config.retention.pending_review_ttl_seconds = std::time::Duration::from_secs(600);
    config.retention.sweep_interval_seconds = std::time::Duration::from_secs(1);
    let gw = TestGateway::start_with(config, Some(clock.clone())).await;
    let mut client = gw.onboarding().await;

    let pending = verify(&mut client, Anchor, "watch-me", &Person::adult("975"))
        .await
        .expect("verify");
    assert_eq!(status_of(&pending), PendingReview);
    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id.clone(),
    };
    let got = client.get_verification(id.clone()).await.expect("get").into_inner();
    assert_eq!(got, pending);

    let mut stream = client.watch_verification(id.clone()).await.expect("watch").into_inner();
    let first = stream.message().await.expect("stream").expect("first update");
    assert_eq!(status_of(&first), PendingReview);

    clock.advance(601);
    let last = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
        .await
        .expect("expiry reaches the watcher")
        .expect("stream")
        .expect("final update");
    assert_eq!(status_of(&last), Expired);
    assert!(!last.verified);
    assert!(
        stream.message().await.expect("stream end").is_none(),
        "the stream ends at a final status"
    );
    assert_eq!(
        status_of(&client.get_verification(id).await.expect("get").into_inner()),
        Expired
    );

    let unknown = pb::GetVerificationRequest {
        verification_id: "vf_doesnotexist".into(),
    };
    assert_eq!(
        client
            .get_verification(unknown.clone())
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client.watch_verification(unknown).await.expect_err("unknown").code(),
        Code::NotFound
    );
    gw.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let gw = TestGateway::start().await;
    let channel = gw.channel("admin").await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "idgate.v1.VerificationService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    gw.stop().await;
}

#[tokio::test]
async fn erase_subject_destroys_pending_cases_and_tells_watchers() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    let pending = verify(&mut client, Anchor, "erase-me", &Person::adult("945"))
        .await
        .expect("verify");
    assert_eq!(status_of(&pending), PendingReview);
    let decided = verify(&mut client, ShortVideo, "keep-me", &Person::adult("123"))
        .await
        .expect("verify");
    let id = pb::GetVerificationRequest {
        verification_id: pending.verification_id.clone(),
    };
    let mut stream = client.watch_verification(id.clone()).await.expect("watch").into_inner();
    assert_eq!(
        status_of(&stream.message().await.expect("stream").expect("first")),
        PendingReview
    );

    let mut admin = pb::verification_service_client::VerificationServiceClient::new(gw.channel("admin").await);
    let erased = admin
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-1".into(),
        })
        .await
        .expect("erase");
    assert_eq!(erased.into_inner().cases_erased, 1);
    let last = stream.message().await.expect("stream").expect("erased update");
    assert_eq!(status_of(&last), pb::Status::Erased);
    assert!(stream.message().await.expect("end").is_none());
    assert_eq!(
        status_of(&client.get_verification(id).await.expect("get").into_inner()),
        pb::Status::Erased
    );
    let kept = pb::GetVerificationRequest {
        verification_id: decided.verification_id,
    };
    assert_eq!(
        status_of(&client.get_verification(kept).await.expect("get").into_inner()),
        Verified
    );

    let again = client
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-1".into(),
        })
        .await
        .expect("erase");
    assert_eq!(again.into_inner().cases_erased, 0, "idempotent");
    let bad = client
        .erase_subject(pb::EraseSubjectRequest {
            account_id: String::new(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    gw.stop().await;
}

#[tokio::test]
async fn too_many_verifications_are_refused_with_a_retry_hint() {
    let mut config = TestGateway::config();
    config.limits.verifications_per_account_per_hour = 2;
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    for i in 0..2 {
        verify(&mut client, ShortVideo, &format!("rl-{i}"), &Person::adult("123"))
            .await
            .expect("within the limit");
    }
    let status = verify(&mut client, ShortVideo, "rl-2", &Person::adult("124"))
        .await
        .expect_err("limited");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status).as_deref(), Some("RATE_LIMITED"));
    let retry = tonic_types::StatusExt::get_details_retry_info(&status).expect("retry info");
    let delay = retry.retry_delay.expect("retry delay");
    assert!(delay > std::time::Duration::ZERO && delay <= std::time::Duration::from_secs(3_600));
    gw.stop().await;
}

#[tokio::test]
async fn a_request_id_reused_with_other_content_is_refused_and_replays_are_free() {
    let mut config = TestGateway::config();
    config.limits.verifications_per_account_per_hour = 2;
    let gw = TestGateway::start_with(config, None).await;
    let mut client = gw.onboarding().await;
    let person = Person::adult("123");
    let first = verify(&mut client, Anchor, "reuse-1", &person).await.expect("verified");
    assert_eq!(status_of(&first), Verified);
    // The same request_id, another identity or another face: never the first answer.
    let mut other_id = Person::adult("124");
    other_id.face = person.face.clone();
    let mut other_face = Person::adult("123");
    other_face.face = common::png(641, 480);
    for reuse in [&other_id, &other_face] {
        let status = verify(&mut client, Anchor, "reuse-1", reuse).await.expect_err("reused");
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(reason(&status).as_deref(), Some("REQUEST_ID_REUSED"));
    }
    // Replays are answered from the record and never count against the limit (2 per hour here).
    for _ in 0..10 {
        assert_eq!(
            verify(&mut client, Anchor, "reuse-1", &person).await.expect("replay"),
            first
        );
    }
    verify(&mut client, ShortVideo, "reuse-2", &person)
        .await
        .expect("a second new request still fits");
    let limited = verify(&mut client, ShortVideo, "reuse-3", &person)
        .await
        .expect_err("third");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    gw.stop().await;
}

#[tokio::test]
async fn a_replay_of_a_request_in_progress_names_the_case_to_watch() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    // Sequence 995: the simulator hangs, so the first call is in progress until its provider gives up.
    let person = Person::adult("995");
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("key")
        .into_inner();
    // Each attempt starts a first call, then replays it with a short deadline. A replay that reaches
    // the gateway before the first call becomes the first itself: then the next attempt tries again.
    let mut in_progress = None;
    let mut first = None;
    for attempt in 0..10 {
        let request = sealed_request(
            &key,
            ShortVideo,
            "acct-1",
            &format!("slow-{attempt}"),
            &person.fields(),
            None,
        );
        let mut first_client = client.clone();
        let first_request = request.clone();
        let started = tokio::spawn(async move { first_client.verify(first_request).await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(std::time::Duration::from_millis(600));
        if let Err(status) = client.verify(call).await
            && reason(&status).as_deref() == Some("IN_PROGRESS")
        {
            in_progress = Some(status);
            first = Some(started);
            break;
        }
    }
    let status = in_progress.expect("a replay saw the request in progress");
    assert_eq!(status.code(), Code::Unavailable);
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    let id = info.metadata.get("verification_id").expect("the case to watch").clone();
    assert!(id.starts_with("vf_"));
    // The client can watch that case to its end instead of polling.
    let mut watch = client
        .watch_verification(pb::GetVerificationRequest {
            verification_id: id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    // Its first public status: the provider hung, so the case went to manual review.
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
        .await
        .expect("the case moves on")
        .expect("stream")
        .expect("a status");
    assert_eq!(next.status, PendingReview as i32);
    drop(watch);
    let answer = first
        .expect("the first call")
        .await
        .expect("task")
        .expect("first call answered");
    assert_eq!(answer.into_inner().verification_id, id);
    gw.stop().await;
}

/// A face sealed with a purpose that compares none (SHORT_VIDEO, RADIO: no biometric
/// consent needed) is dropped unread. A broken one is not refused; a case that goes to review holds
/// none, so the reviewer sees none; and it is no part of the request's content (a replay without it
/// is the same request).
#[tokio::test]
async fn a_face_sent_with_a_purpose_that_compares_none_is_dropped_unread() {
    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    let key = sealing_key(&mut client).await;
    let without_biometric_consent = |request_id: &str, purpose: pb::Purpose, person: &Person| {
        let mut request = sealed_request(&key, purpose, "acct-1", request_id, &person.fields(), None);
        request.consent.as_mut().unwrap().biometric = None;
        request
    };
    let mut broken = Person::adult("123");
    broken.face = b"GIF89a\x40\x00\x40\x00\x00\x00\x00;".to_vec();
    for (i, purpose) in [ShortVideo, pb::Purpose::Radio].into_iter().enumerate() {
        let answer = client
            .verify(without_biometric_consent(&format!("broken-{i}"), purpose, &broken))
            .await
            .expect("a face that is not read is not refused")
            .into_inner();
        assert_eq!(status_of(&answer), Verified);
    }

    // 945: the provider cannot decide, so the case goes to manual review.
    let person = Person::adult("945");
    let pending = client
        .verify(without_biometric_consent("face-0", ShortVideo, &person))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&pending), PendingReview);
    let mut without_face = Person::adult("945");
    without_face.face.clear();
    let replay = client
        .verify(without_biometric_consent("face-0", ShortVideo, &without_face))
        .await
        .expect("the same request without the face")
        .into_inner();
    assert_eq!(replay, pending);

    let (mut reviewer, opening) = common::registered_reviewer(gw.channel("reviewer-1").await).await;
    let claim = reviewer.claim_next(pb::ClaimNextRequest {}).await.unwrap().into_inner();
    assert_eq!(claim.case_id, pending.verification_id);
    let plain = opening
        .open(
            &idgate::crypto::sealing::Context::review(&claim.case_id, "reviewer-1"),
            &claim.enc,
            &claim.ciphertext,
        )
        .unwrap();
    let seen = idgate::material::decode(&plain).unwrap();
    assert_eq!(seen.id_number, person.id_number, "the reviewer sees the case");
    assert!(seen.face_image.is_empty(), "but no face");
    gw.stop().await;
}
