//! Logging, tracing and OpenTelemetry set-up. Events and spans carry ids and outcomes, never
//! personal data or similarity scores (tested end to end).
//!
//! - Logs: level from `IDGATE_LOG` (or `RUST_LOG`), default `info`; `text` or `json` lines on stderr.
//!   In JSON, a line written inside a call carries the call span's `trace_id` and `span_id`.
//! - Traces: `tracing` spans become OpenTelemetry spans, exported over OTLP/gRPC when
//!   `telemetry.otlp_endpoint` is set (without it ids are still made, for log correlation). Only
//!   spans and events at `info` and above reach OpenTelemetry: debug events may print a provider's
//!   `Outcome`, whose score must not leave the process.
//! - Metrics: the process-wide meter provider exports over OTLP/gRPC when the endpoint is set.
//!
//! Every exported span and metric carries `service.name`, `service.version` and
//! `service.instance.id`.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// W3C trace-context headers (`traceparent`, `tracestate`) for an outgoing call made inside the
/// current span, so a provider's side of the call joins the trace. Empty outside any trace.
pub fn trace_headers() -> Vec<(String, String)> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let mut headers = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers.into_iter().collect()
}

/// The OpenTelemetry resource of this process: its service name, version and a fresh instance id.
pub fn resource() -> Resource {
    let instance =
        crate::crypto::random::id("idgate-").unwrap_or_else(|_| format!("idgate-pid-{}", std::process::id()));
    Resource::builder()
        .with_service_name("idgate")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance),
        ])
        .build()
}

/// Keeps the providers of one process; [`Telemetry::shutdown`] sends what is still buffered.
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporters. Blocking: call it from `spawn_blocking` in async code.
    pub fn shutdown(self) {
        let _ = self.tracer.shutdown();
        if let Some(meter) = self.meter {
            let _ = meter.shutdown();
        }
    }
}

/// Installs the global subscriber (logs and spans) and, with `otlp_endpoint`, the OTLP span and
/// metric exporters. Later calls in the same process install nothing.
pub fn init(json: bool, otlp_endpoint: Option<&str>) -> Result<Telemetry, String> {
    let resource = resource();
    let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meter = None;
    if let Some(endpoint) = otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        tracer = tracer.with_batch_exporter(spans);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_periodic_exporter(metrics)
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        meter = Some(provider);
    }
    let tracer = tracer.build();
    // Colour only on a terminal: escape codes are noise in a log file or collector, and cost CPU.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(json, ansi, &tracer, std::io::stderr);
    Ok(Telemetry { tracer, meter })
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `tracer`, at `info` and above
/// only (debug events may print a provider outcome with its score).
pub fn otel_layer<S>(tracer: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer("idgate"))
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
}

/// The subscriber: log lines to `writer` at the `IDGATE_LOG` level (coloured with `ansi`), and spans
/// to `tracer` at `info` and above.
pub fn install<W>(json: bool, ansi: bool, tracer: &SdkTracerProvider, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("IDGATE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = otel_layer(tracer);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    let fmt = if json {
        // The span list puts the call span's fields, trace_id and span_id among them, on each line.
        fmt.json().with_span_list(true).with_current_span(false).boxed()
    } else {
        fmt.boxed()
    };
    // The level filter applies to log lines only: spans keep reaching OpenTelemetry (at `info`)
    // when an operator quiets the logs with `IDGATE_LOG=warn`.
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
}
