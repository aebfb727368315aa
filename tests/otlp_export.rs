//! The real OTLP exporter of the real binary, pointed at a small OTLP/gRPC receiver started here:
//! spans and metrics arrive, with `service.name`, `service.version` and `service.instance.id`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{GatewayProcess, Person, verify};
use idgate::pb;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const CALLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn attribute(resource: &Option<Resource>, key: &str) -> Option<String> {
    let resource = resource.as_ref()?;
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

// Multi-threaded: the receiver must keep answering while the test waits (blocking) for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_an_otlp_receiver_with_the_resource_attributes() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let mut gateway = GatewayProcess::start(
        &dir.path().join("dev"),
        &[
            ("IDGATE_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
            ("IDGATE_TELEMETRY__LOG_FORMAT", "json"),
        ],
    )
    .await;
    let mut client = gateway.onboarding().await;
    verify(&mut client, pb::Purpose::ShortVideo, "otlp-1", &Person::adult("123"))
        .await
        .unwrap();
    // A caller's trace: the call span continues it.
    let mut traced = tonic::Request::new(pb::GetSealingKeyRequest {});
    traced
        .metadata_mut()
        .insert("traceparent", CALLER_TRACEPARENT.parse().unwrap());
    client.get_sealing_key(traced).await.unwrap();
    // SIGTERM: the gateway flushes what it holds (spans in batches, metrics periodically) on exit.
    gateway.signal(15);
    assert!(gateway.wait_exit(Duration::from_secs(20)).success());
    receiver.abort();

    let traces = received.traces.lock().unwrap().clone();
    let metrics = received.metrics.lock().unwrap().clone();
    assert!(!traces.is_empty(), "no spans arrived; stderr:\n{}", gateway.stderr());
    assert!(!metrics.is_empty(), "no metrics arrived; stderr:\n{}", gateway.stderr());

    let mut span_names = Vec::new();
    let mut trace_ids = Vec::new();
    let mut continued = false;
    for batch in &traces {
        for rs in &batch.resource_spans {
            assert_eq!(attribute(&rs.resource, "service.name").as_deref(), Some("idgate"));
            assert_eq!(
                attribute(&rs.resource, "service.version").as_deref(),
                Some(env!("CARGO_PKG_VERSION"))
            );
            assert!(attribute(&rs.resource, "service.instance.id").is_some_and(|id| !id.is_empty()));
            for scope in &rs.scope_spans {
                span_names.extend(scope.spans.iter().map(|s| s.name.clone()));
                trace_ids.extend(scope.spans.iter().map(|s| hex::encode(&s.trace_id)));
                continued |= scope.spans.iter().any(|s| {
                    s.name == "idgate.v1.VerificationService/GetSealingKey"
                        && hex::encode(&s.trace_id) == CALLER_TRACE
                        && hex::encode(&s.parent_span_id) == CALLER_SPAN
                });
            }
        }
    }
    for name in ["idgate.v1.VerificationService/Verify", "provider.attempt"] {
        assert!(span_names.iter().any(|n| n == name), "no {name} in {span_names:?}");
    }

    assert!(continued, "no GetSealingKey span continuing the caller's traceparent");
    // JSON log lines written inside a call carry its trace id (the one exported) and span id.
    let stderr = gateway.stderr();
    let decided = stderr
        .lines()
        .find(|l| l.contains("verification decided"))
        .unwrap_or_else(|| panic!("no decision line in:\n{stderr}"));
    let line: serde_json::Value = serde_json::from_str(decided).expect("a JSON line");
    let call = line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["trace_id"].is_string()))
        .unwrap_or_else(|| panic!("no span with a trace id on {decided}"));
    assert!(call["span_id"].as_str().is_some_and(|id| id.len() == 16), "{decided}");
    let trace_id = call["trace_id"].as_str().unwrap();
    assert!(
        trace_ids.iter().any(|t| t == trace_id),
        "trace id {trace_id} of the log line was not exported"
    );

    let mut metric_names = Vec::new();
    for batch in &metrics {
        for rm in &batch.resource_metrics {
            assert_eq!(attribute(&rm.resource, "service.name").as_deref(), Some("idgate"));
            assert!(attribute(&rm.resource, "service.instance.id").is_some());
            for scope in &rm.scope_metrics {
                metric_names.extend(scope.metrics.iter().map(|m| m.name.clone()));
            }
        }
    }
    for name in ["rpc.server.call.duration", "idgate.decisions"] {
        assert!(metric_names.iter().any(|n| n == name), "no {name} in {metric_names:?}");
    }
}
