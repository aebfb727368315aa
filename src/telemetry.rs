//! Logging set-up. Events carry ids and outcomes, never personal data (tested end to end).
//!
//! Level from `IDGATE_LOG` (or `RUST_LOG`), default `info`; `text` or `json` lines on stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("IDGATE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Exports metrics over OTLP/gRPC to `endpoint` (e.g. `http://127.0.0.1:4317`) through the
/// process-wide meter provider. Call before building the gateway; shut the returned provider down
/// at exit so the last figures are sent.
pub fn init_otlp_metrics(endpoint: &str) -> Result<opentelemetry_sdk::metrics::SdkMeterProvider, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());
    Ok(provider)
}
