//! A full run (verified, not verified, review with supplement and decision, erasure, refusals) with
//! logging at TRACE level and every OpenTelemetry span and metric captured in memory: none of the
//! test identities' name, ID number or phone, no refused input and no image fragment appears in any
//! log line, span name, attribute or event, metric name or attribute, or answer.
//!
//! Alone in its own test binary because it installs the process-wide subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Person, TestGateway, verify};
use idgate::pb;
use idgate::pb::Purpose::{Anchor, ShortVideo};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_personal_data_in_logs_or_errors() {
    let capture = Capture::default();
    // Every span goes to an in-memory exporter through the gateway's own OpenTelemetry layer.
    let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(capture.clone())
        .with_ansi(false)
        // Timestamps would match short refusal inputs by chance ("…09.912345Z" holds "12345").
        .without_time()
        // Span fields and their context on every line.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL);
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(logs)
        .with(idgate::telemetry::otel_layer(&tracer))
        .init();

    // Every metric the gateway exports goes to an in-memory exporter that is searched at the end.
    let metrics = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
    let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(metrics.clone())
        .build();
    opentelemetry::global::set_meter_provider(meter_provider.clone());

    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    let people: Vec<Person> = ["123", "905", "945", "965", "975", "985", "995"]
        .iter()
        .map(|s| Person::adult(s))
        .collect();
    let mut errors = Vec::new();
    let mut pending_anchors = Vec::new();
    for (i, person) in people.iter().enumerate() {
        for purpose in [ShortVideo, Anchor] {
            let request_id = format!("pii-{i}-{}", purpose as i32);
            let answer = verify(&mut client, purpose, &request_id, person).await;
            let replay = verify(&mut client, purpose, &request_id, person).await;
            if let Ok(a) = &answer
                && purpose == Anchor
                && a.status == pb::Status::PendingReview as i32
            {
                pending_anchors.push(a.verification_id.clone());
            }
            for r in [answer, replay] {
                match r {
                    Ok(a) => errors.push(format!("{a:?}")),
                    Err(s) => errors.push(format!("{s:?} {}", s.message())),
                }
            }
        }
    }
    // Refusals, which are the likeliest to echo input.
    let mut minor = Person::adult("123");
    minor.id_number = common::id_number("20200101", "123");
    let mut bad = Person::adult("123");
    bad.id_number.replace_range(0..1, "0");
    bad.phone = "23800138001".into(); // 11 digits, not a mainland mobile number: refused
    // The refusal inputs are searched for too: they are the likeliest to be echoed.
    let refusal_inputs = [minor.id_number.clone(), bad.id_number.clone(), bad.phone.clone()];
    for (i, person) in [minor, bad].iter().enumerate() {
        let status = verify(&mut client, Anchor, &format!("pii-bad-{i}"), person)
            .await
            .expect_err("refused");
        errors.push(format!("{status:?} {}", status.message()));
    }
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("key")
        .into_inner();
    let mut tampered = common::sealed_request(
        &key,
        Anchor,
        "acct-1",
        "pii-t",
        &people[0].fields(),
        Some((3, "x", "y")),
    );
    tampered.request_id = "pii-t".into();
    errors.push(format!("{:?}", client.verify(tampered).await.expect_err("tampered")));
    // Face recognition without the separate biometric consent (refused), and the document-review
    // path (a sealed face dropped; pending review, or not verified on a two-factor mismatch).
    let mut no_biometric = common::sealed_request(&key, Anchor, "acct-1", "pii-nobio", &people[0].fields(), None);
    no_biometric.consent.as_mut().expect("consent").biometric = None;
    let status = client.verify(no_biometric).await.expect_err("no biometric consent");
    errors.push(format!("{status:?} {}", status.message()));
    for (i, person) in people.iter().take(2).enumerate() {
        let request_id = format!("pii-doc-{i}");
        let mut by_documents = common::sealed_request(&key, Anchor, "acct-1", &request_id, &person.fields(), None);
        by_documents.document_review = true;
        let answer = client.verify(by_documents).await.expect("document review");
        errors.push(format!("{answer:?}"));
    }

    // An anchor case's supplement (three more images), so that it can be reviewed.
    let anchor_case = pending_anchors.first().expect("an anchor case pending review");
    let supplemented = common::submit_supplement(&mut client, anchor_case, "pii-supplement")
        .await
        .expect("supplement");
    errors.push(format!("{supplemented:?}"));

    // The review side: register, claim (material re-sealed to the reviewer), decide, release.
    let mut reviewer = pb::review_service_client::ReviewServiceClient::new(gw.channel("reviewer-1").await);
    let key = idgate::crypto::sealing::OpeningKey::generate().expect("key");
    reviewer
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: key.public_key().to_vec(),
        })
        .await
        .expect("register");
    for decision in [pb::Decision::Approve, pb::Decision::Reject] {
        let claim = reviewer
            .claim_next(pb::ClaimNextRequest {})
            .await
            .expect("claim")
            .into_inner();
        assert!(!claim.case_id.is_empty(), "pending cases exist");
        errors.push(format!("{claim:?}"));
        let request = pb::SubmitDecisionRequest {
            case_id: claim.case_id,
            decision: decision as i32,
            reason_code: "X".into(),
        };
        errors.push(format!("{:?}", reviewer.submit_decision(request).await));
    }
    let mut audit = pb::audit_service_client::AuditServiceClient::new(gw.channel("admin").await);
    let trail = audit
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner();
    assert!(trail.events.iter().any(|e| e.action == "case_decided"));
    errors.push(format!("{trail:?}"));
    // Withdrawal of the biometric consent for what is still pending (faces destroyed), and a refused
    // withdrawal without a scope.
    let withdrawn = client
        .withdraw_consent(pb::WithdrawConsentRequest {
            account_id: "acct-1".into(),
            scope: pb::ConsentScope::BiometricOnly as i32,
        })
        .await
        .expect("withdraw")
        .into_inner();
    assert!(withdrawn.cases_changed > 0, "pending cases lost their faces");
    errors.push(format!("{withdrawn:?}"));
    let refused = client
        .withdraw_consent(pb::WithdrawConsentRequest {
            account_id: "acct-1".into(),
            scope: pb::ConsentScope::Unspecified as i32,
        })
        .await
        .expect_err("no scope");
    errors.push(format!("{refused:?}"));
    // Erasure of what is still pending.
    let erased = client
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-1".into(),
        })
        .await
        .expect("erase")
        .into_inner();
    assert!(erased.cases_erased > 0, "pending cases were erased");
    gw.stop().await;

    // Every span name, attribute and event of the run, as exported.
    tracer.force_flush().expect("flush spans");
    let finished = spans.get_finished_spans().expect("spans");
    let span_names: Vec<String> = finished.iter().map(|s| s.name.to_string()).collect();
    for name in [
        "idgate.v1.VerificationService/Verify",
        "idgate.v1.ReviewService/ClaimNext",
        "idgate.v1.VerificationService/EraseSubject",
        "idgate.v1.VerificationService/WithdrawConsent",
        "idgate.v1.VerificationService/SubmitSupplement",
        "idgate.v1.ReviewService/SubmitDecision",
        "local_checks",
        "open_payload",
        "provider.attempt",
        "store.begin",
        "store.finish",
        "seal_at_rest",
    ] {
        assert!(span_names.iter().any(|n| n == name), "no {name} span in {span_names:?}");
    }
    let attempt = finished.iter().find(|s| s.name == "provider.attempt").expect("attempt");
    let attempt_attrs = format!("{:?}", attempt.attributes);
    assert!(attempt_attrs.contains("simulator"), "provider name: {attempt_attrs}");
    let rpc_span = finished
        .iter()
        .find(|s| s.name == "idgate.v1.VerificationService/Verify")
        .expect("rpc span");
    let rpc_attrs = format!("{:?}", rpc_span.attributes);
    assert!(rpc_attrs.contains("rpc.response.status_code"), "{rpc_attrs}");
    let traced = finished
        .iter()
        .map(|s| format!("{} {:?} {:?}", s.name, s.attributes, s.events))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(traced.contains("verification_id"), "span attributes carry case ids");
    for person in &people {
        for secret in [&person.name, &person.id_number, &person.phone] {
            assert!(!traced.contains(secret.as_str()), "a span contains test PII");
        }
        assert!(!traced.contains(&person.id_number[..17]));
    }
    for input in &refusal_inputs {
        assert!(!traced.contains(input.as_str()), "a span contains a refused input");
    }
    assert!(!traced.contains("similarity"), "a span carries a score");

    meter_provider.force_flush().expect("flush metrics");
    let exported = format!("{:?}", metrics.get_finished_metrics().expect("metrics"));
    assert!(
        exported.contains("idgate.review.queue"),
        "the capture saw the gateway's metrics"
    );

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("verification decided"),
        "the capture must have seen the gateway's logs"
    );
    assert!(
        logs.contains("DEBUG") && logs.contains("TRACE"),
        "debug and trace levels were on"
    );
    let errors = errors.join("\n");
    for person in &people {
        for secret in [&person.name, &person.id_number, &person.phone] {
            assert!(!logs.contains(secret.as_str()), "a log line contains test PII");
            assert!(
                !errors.contains(secret.as_str()),
                "an answer or error contains test PII"
            );
        }
        // The 17 digits without the check character, and the birth date with the region code.
        assert!(!logs.contains(&person.id_number[..17]));
    }
    assert!(!logs.contains("13800138000") && !logs.contains("测试员"));
    for input in &refusal_inputs {
        assert!(
            !logs.contains(input.as_str()),
            "a log line contains a refused input: {:?}",
            logs.lines().filter(|l| l.contains(input.as_str())).collect::<Vec<_>>()
        );
        assert!(!errors.contains(input.as_str()), "an answer contains a refused input");
        assert!(!exported.contains(input.as_str()), "a metric contains a refused input");
    }
    for person in &people {
        for secret in [&person.name, &person.id_number, &person.phone] {
            assert!(
                !exported.contains(secret.as_str()),
                "a metric name or label contains test PII"
            );
        }
    }
    // Similarity scores are derived from biometrics: never at info level or above (they may appear at
    // debug level, where an `Outcome` prints as `FaceCompared { similarity: … }`).
    assert!(logs.contains("similarity"), "the capture saw a score at debug level");
    for line in logs
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR "))
    {
        assert!(!line.contains("similarity"), "a score at info: {line}");
    }

    // No fragment of any image (face, supplement), as base64 or hex, anywhere.
    let mut images = vec![people[0].face.clone()];
    images.extend(common::supplement_images());
    for image in &images {
        // The IHDR chunk: the part of these PNGs that differs between images (their dimensions).
        let fragment = &image[8..33];
        for encoded in [
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, fragment),
            hex::encode(fragment),
        ] {
            for (what, text) in [
                ("log", &logs),
                ("span", &traced),
                ("metric", &exported),
                ("answer", &errors),
            ] {
                assert!(!text.contains(&encoded), "an image fragment in a {what}");
            }
        }
    }
}
