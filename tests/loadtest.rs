//! `idgate loadtest` end to end: a short, low-rate run against a real gateway started in-process (the
//! built-in simulator, the embedded store), with the echo baseline, through the command line, and the
//! JSON it writes read back for the fields API.md §6 fixes. No timing assertions.
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
