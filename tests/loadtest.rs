//! `idgate loadtest` end to end: a short, low-rate run against a real gateway started in-process (the
//! built-in simulator, the embedded store), with the echo baseline, through the command line, and the
//! JSON it writes read back for the fields docs/api.md §6 fixes. No timing assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use clap::Parser as _;
use common::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_open_loop_run_with_baseline_writes_the_contract_json() {
    let gateway = TestGateway::start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let json = out.path().join("run.json");
    let html = out.path().join("run.html");
    let (addr, certs) = (gateway.addr.to_string(), gateway.certs());
    let args = [
        "idgate",
        "loadtest",
        "--target",
        &addr,
        "--certs",
        certs.to_str().expect("utf-8 path"),
        "--purpose",
        "anchor",
        "--image-kb",
        "16",
        "--rate",
        "20",
        "--warmup",
        "1",
        "--duration",
        "1.5",
        "--connections",
        "2",
        "--timeout",
        "20",
        "--mix",
        "2:1:1",
        "--get-ratio",
        "0.2",
        "--baseline",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--html",
        html.to_str().expect("utf-8 path"),
    ];
    let cli = idgate::cli::Cli::try_parse_from(args).expect("flags parse");
    idgate::cli::run(cli).await.expect("loadtest runs");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    for phase in [&v, &v["baseline"]] {
        assert!(phase["requests"].as_u64().expect("requests") > 0);
        assert!(phase["throughput_rps"].as_f64().expect("throughput_rps") > 0.0);
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(phase["latency_ms"][k].as_f64().expect(k) > 0.0, "latency_ms.{k}");
        }
        assert_eq!(phase["errors"], serde_json::json!({}), "no call failed");
        assert!(phase["message_bytes"].as_u64().expect("message_bytes") > 16 * 1024);
    }
    assert!(v["throughput_ratio"].as_f64().expect("throughput_ratio") > 0.0);
    assert_eq!(v["message_bytes"], v["baseline"]["message_bytes"]);
    assert_eq!(v["service"], "idgate.v1.VerificationService");
    assert_eq!(v["baseline"]["service"], "idgate.loadtest.v1.EchoService");
    assert!(v["baseline"]["statuses"]["ECHOED"].as_u64().expect("echoed") > 0);
    // The mix reached every simulator outcome, and GetVerification was mixed in.
    for status in ["VERIFIED", "NOT_VERIFIED", "PENDING_REVIEW"] {
        assert!(v["statuses"][status].as_u64().unwrap_or(0) > 0, "no {status} answer");
    }
    assert!(v["calls"]["Verify"].as_u64().expect("Verify calls") > 0);
    assert!(v["calls"]["GetVerification"].as_u64().unwrap_or(0) > 0);
    assert!(v["schedule"]["late_requests"].is_u64());

    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<svg") && page.contains("throughput ratio"));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_closed_loop_run_counts_every_answer() {
    let gateway = TestGateway::start().await;
    let options = idgate::loadtest::Options {
        target: gateway.addr.to_string(),
        tls_name: None,
        production_i_know: false,
        certs: gateway.certs(),
        purpose: idgate::pb::Purpose::ShortVideo,
        image_bytes: 0,
        load: idgate::loadtest::Load::Concurrency(3),
        duration: std::time::Duration::from_secs(1),
        warmup: std::time::Duration::ZERO,
        connections: 2,
        timeout: std::time::Duration::from_secs(20),
        mix: "1:1:0".parse().expect("mix"),
        get_ratio: 0.0,
        baseline: false,
        progress: false,
        pool_bytes: 1 << 20,
        pool_threads: 1,
        max_in_flight: 100,
        honour_retry_info: true,
    };
    let report = idgate::loadtest::run(&options).await.expect("loadtest runs");
    let target = &report.target;
    assert!(report.baseline.is_none() && report.throughput_ratio.is_none());
    assert_eq!(target.settings.mode, "closed");
    assert!(target.schedule.is_none());
    assert!(target.ok > 0 && target.errors.is_empty());
    assert_eq!(target.requests, target.statuses.values().sum::<u64>());
    assert_eq!(target.calls.get("Verify"), Some(&target.requests));
    assert!(target.statuses.contains_key("VERIFIED") && target.statuses.contains_key("NOT_VERIFIED"));
    assert!(
        !target.statuses.contains_key("PENDING_REVIEW"),
        "the mix asked for no review"
    );
    assert_eq!(target.timeline.iter().map(|s| s.ok).sum::<u64>(), target.ok);
    gateway.stop().await;
}

/// The flags of a short, light run against `target` with `certs`, plus `extra`.
fn short_run(target: &str, certs: &std::path::Path, extra: &[&str]) -> idgate::cli::Cli {
    let certs = certs.to_str().expect("utf-8 path");
    let mut args = vec![
        "idgate",
        "loadtest",
        "--target",
        target,
        "--certs",
        certs,
        "--purpose",
        "short-video",
        "--concurrency",
        "1",
        "--warmup",
        "0",
        "--duration",
        "0.3",
        "--connections",
        "1",
        "--mix",
        "1:0:0",
    ];
    args.extend_from_slice(extra);
    idgate::cli::Cli::try_parse_from(args).expect("flags parse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_the_development_ca_did_not_certify_gets_no_load_unless_told() {
    // The gateway presents a certificate of another CA (as a production one would); the tool trusts it.
    let server_dir = tempfile::tempdir().expect("tempdir");
    let mut config = TestGateway::config();
    common::serve_foreign_certificate(
        &mut config,
        server_dir.path(),
        "Example Corp Issuing CA",
        &["127.0.0.1"],
    );
    let gateway = TestGateway::start_with(config, None).await;
    let certs = common::client_certs_for(&gateway, server_dir.path(), &["onboarding"]);
    let target = gateway.addr.to_string();

    let refused = idgate::cli::run(short_run(&target, certs.path(), &[]))
        .await
        .expect_err("refused without --production-i-know");
    assert_eq!(refused.exit_code(), 64, "{refused}");
    assert!(refused.to_string().contains("--production-i-know"), "{refused}");

    let json = certs.path().join("run.json");
    let told = short_run(
        &target,
        certs.path(),
        &["--production-i-know", "--json", json.to_str().expect("utf-8 path")],
    );
    idgate::cli::run(told).await.expect("runs when told");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert!(v["requests"].as_u64().expect("requests") > 0);
    gateway.stop().await;
}

#[tokio::test]
async fn the_development_mark_is_the_dev_ca_as_issuer() {
    let gateway = TestGateway::start().await;
    use rustls_pki_types::pem::PemObject as _;
    let der = |path: &std::path::Path| {
        let pem = std::fs::read(path).expect("read");
        let cert = rustls_pki_types::CertificateDer::from_pem_slice(&pem).expect("pem");
        cert.to_vec()
    };
    assert!(idgate::loadtest::issued_by_dev_ca(&der(&gateway
        .certs()
        .join("server.pem"))));
    // A CA of the same common name under another organisation does not.
    let other = tempfile::tempdir().expect("tempdir");
    let mut config = TestGateway::config();
    common::serve_foreign_certificate(&mut config, other.path(), "idgate development CA", &["localhost"]);
    assert!(!idgate::loadtest::issued_by_dev_ca(&der(&other
        .path()
        .join("server.pem"))));
    gateway.stop().await;
}
