//! The RPC and decision metrics, through the real server: `rpc.server.call.duration` in seconds with
//! the conventions' buckets and attributes (method name, status-code name), `idgate.decisions` by
//! outcome and purpose, `idgate.erasures`, provider attempts, the sealing key's age, each provider's
//! breaker state; and `idgate.load_shed` (in `tests/shedding.rs`'s sibling unit tests of the counter).
//!
//! Alone in its own test binary because it installs the process-wide meter provider.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{Person, TestGateway, verify};
use idgate::metrics::{RPC_DURATION_BOUNDARIES, names};
use idgate::pb;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};

fn attrs<'a>(kvs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = kvs.map(|kv| (kv.key.to_string(), kv.value.to_string())).collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    out.sort();
    out
}

/// `(attributes, count, bounds)` of every data point of the duration histogram, and
/// `(metric name, attributes, value)` of every counter point.
type Histos = Vec<(Vec<(String, String)>, u64, Vec<f64>)>;
type Counts = Vec<(String, Vec<(String, String)>, u64)>;

fn read(last: &ResourceMetrics) -> (Histos, Counts, String) {
    let (mut histos, mut counts, mut unit) = (Vec::new(), Vec::new(), String::new());
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(MetricData::Histogram(h))
                    if metric.name() == names::RPC_SERVER_CALL_DURATION =>
                {
                    unit = metric.unit().to_owned();
                    for p in h.data_points() {
                        histos.push((attrs(p.attributes()), p.count(), p.bounds().collect()));
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) if metric.name() == names::PROVIDER_CALL_DURATION => {
                    for p in h.data_points() {
                        counts.push((metric.name().to_owned(), attrs(p.attributes()), p.count()));
                    }
                }
                AggregatedMetrics::I64(MetricData::Gauge(g))
                    if metric.name() == names::SEALING_KEY_AGE || metric.name() == names::KEK_AGE =>
                {
                    for p in g.data_points() {
                        counts.push((metric.name().to_owned(), attrs(p.attributes()), p.value() as u64));
                    }
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) if metric.name() == names::PROVIDER_BREAKER_STATE => {
                    for p in g.data_points() {
                        counts.push((metric.name().to_owned(), attrs(p.attributes()), p.value()));
                    }
                }
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    for p in s.data_points() {
                        counts.push((metric.name().to_owned(), attrs(p.attributes()), p.value()));
                    }
                }
                _ => {}
            }
        }
    }
    (histos, counts, unit)
}

#[tokio::test]
async fn calls_decisions_and_erasures_are_measured_with_the_conventions_names() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let gw = TestGateway::start().await;
    let mut client = gw.onboarding().await;
    // OK: GetSealingKey and Verify (inside `verify`).
    let answer = verify(&mut client, pb::Purpose::ShortVideo, "m-1", &Person::adult("123"))
        .await
        .unwrap();
    // A case pending review (sequence 945), which the erasure below destroys.
    let pending = verify(&mut client, pb::Purpose::Anchor, "m-2", &Person::adult("945"))
        .await
        .unwrap();
    assert_eq!(pending.status, pb::Status::PendingReview as i32);
    // INVALID_ARGUMENT: a request without anything in it.
    let refused = client.verify(pb::VerifyRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // Erasure of the pending case.
    let erased = client
        .erase_subject(pb::EraseSubjectRequest {
            account_id: "acct-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .cases_erased;
    assert_eq!(erased, 1);
    provider.force_flush().unwrap();

    let exported = exporter.get_finished_metrics().unwrap();
    let (histos, counts, unit) = read(exported.last().expect("an export"));
    assert_eq!(unit, "s");
    let grpc = ("rpc.system.name", "grpc");
    for (method, code, calls) in [
        ("idgate.v1.VerificationService/GetSealingKey", "OK", 2),
        ("idgate.v1.VerificationService/Verify", "OK", 2),
        ("idgate.v1.VerificationService/Verify", "INVALID_ARGUMENT", 1),
        ("idgate.v1.VerificationService/EraseSubject", "OK", 1),
    ] {
        let want = pairs(&[grpc, ("rpc.method", method), ("rpc.response.status_code", code)]);
        let point = histos
            .iter()
            .find(|(a, _, _)| *a == want)
            .unwrap_or_else(|| panic!("no point {want:?} in {histos:?}"));
        assert_eq!(point.1, calls, "{want:?}");
        assert_eq!(point.2, RPC_DURATION_BOUNDARIES.to_vec());
    }
    assert_eq!(answer.status, pb::Status::Verified as i32, "sequence 123 is a match");
    for (outcome, purpose) in [("verified", "short_video"), ("pending_review", "anchor")] {
        let decision = pairs(&[("idgate.outcome", outcome), ("idgate.purpose", purpose)]);
        assert!(
            counts.contains(&(names::DECISIONS.to_owned(), decision.clone(), 1)),
            "{decision:?} missing from {counts:?}"
        );
    }
    assert!(
        counts.contains(&(names::ERASURES.to_owned(), Vec::new(), 1)),
        "erasures missing from {counts:?}"
    );
    // One provider attempt per Verify: the simulator's two-factor match, then the anchor's face check.
    let provider_match = pairs(&[("idgate.provider", "simulator"), ("idgate.provider.result", "match")]);
    assert!(
        counts
            .iter()
            .any(|(n, a, c)| n == names::PROVIDER_CALL_DURATION && *a == provider_match && *c >= 1),
        "{provider_match:?} missing from {counts:?}"
    );
    // The dev key was made moments ago.
    let age = counts
        .iter()
        .find(|(n, _, _)| n == names::SEALING_KEY_AGE)
        .unwrap_or_else(|| panic!("no sealing key age in {counts:?}"));
    assert!(age.2 < 600, "{age:?}");
    let kek_age = counts
        .iter()
        .find(|(n, _, _)| n == names::KEK_AGE)
        .unwrap_or_else(|| panic!("no KEK age in {counts:?}"));
    assert!(kek_age.2 < 600, "{kek_age:?}");
    // The built-in simulator's breaker is closed (0) after its answers.
    assert!(
        counts.contains(&(
            names::PROVIDER_BREAKER_STATE.to_owned(),
            pairs(&[("idgate.provider", "simulator")]),
            0
        )),
        "no breaker state in {counts:?}"
    );
    gw.stop().await;
}
