//! Metrics: the figures operators watch, as OpenTelemetry instruments (exported over OTLP when
//! `telemetry.otlp_endpoint` is set; see `telemetry`).
//!
//! Every metric name is a constant in [`names`] (the Rust semantic-conventions crate lags the spec);
//! units are UCUM. The review queue's figures are refreshed by the gateway's maintenance loop and read
//! by observable gauges, so an export never waits on the store.
//!
//! Must never take an id, an input value or personal data as an attribute: attributes are fixed
//! vocabularies only (RPC method names from the served set, status-code names, outcomes, purposes).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

/// Metric and attribute names (OpenTelemetry RPC semantic conventions, then idgate's own).
pub mod names {
    /// Histogram, seconds: one gRPC call served, from request to response headers.
    pub const RPC_SERVER_CALL_DURATION: &str = "rpc.server.call.duration";
    /// Counter: answers to `Verify`, by outcome and purpose.
    pub const DECISIONS: &str = "idgate.decisions";
    /// Counter: pending cases whose data retention expired and destroyed.
    pub const RETENTION_EXPIRED: &str = "idgate.retention.expired";
    /// Counter: cases erased on request (`EraseSubject`).
    pub const ERASURES: &str = "idgate.erasures";
    /// Histogram, seconds: one provider attempt, by provider and result (outcome or error kind).
    pub const PROVIDER_CALL_DURATION: &str = "idgate.provider.call.duration";
    /// Counter: provider attempts that gave no outcome, by provider and error kind.
    pub const PROVIDER_ERRORS: &str = "idgate.provider.errors";
    /// Gauge, seconds: age of the current sealing key (rotate before it grows too old).
    pub const SEALING_KEY_AGE: &str = "idgate.keys.sealing.age";
    /// Gauge, seconds: age of the current key-encryption key (from its key file).
    pub const KEK_AGE: &str = "idgate.keys.kek.age";
    /// Seconds until the current KEK stops wrapping; 0 or less: no KEK wraps, sealing refuses.
    pub const KEK_WRAPS_FOR: &str = "idgate.keys.kek.wraps_for";
    /// Gauge: each provider's circuit breaker, 0 closed, 1 half-open, 2 open (attribute: provider).
    pub const PROVIDER_BREAKER_STATE: &str = "idgate.provider.breaker.state";
    /// Counter: calls shed because too many of their method were in flight (`RESOURCE_EXHAUSTED` /
    /// `OVERLOADED`), by `rpc.method` (`Verify` or `SubmitSupplement`, as `package.Service/Method`).
    pub const LOAD_SHED: &str = "idgate.load_shed";
    pub const REVIEW_QUEUE_PENDING: &str = "idgate.review.queue.pending";
    pub const REVIEW_QUEUE_CLAIMED: &str = "idgate.review.queue.claimed";
    pub const REVIEW_QUEUE_OLDEST_PENDING_AGE: &str = "idgate.review.queue.oldest_pending_age";

    pub const ATTR_RPC_SYSTEM_NAME: &str = "rpc.system.name";
    pub const ATTR_RPC_METHOD: &str = "rpc.method";
    pub const ATTR_RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
    pub const ATTR_OUTCOME: &str = "idgate.outcome";
    pub const ATTR_PURPOSE: &str = "idgate.purpose";
    pub const ATTR_PROVIDER: &str = "idgate.provider";
    pub const ATTR_PROVIDER_RESULT: &str = "idgate.provider.result";
    pub const ATTR_ERROR_KIND: &str = "error.type";
}

/// The bucket boundaries the RPC semantic conventions give for call durations, in seconds.
pub const RPC_DURATION_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The gateway's instruments (cheap to clone; recording never blocks).
#[derive(Clone)]
pub struct Instruments {
    rpc_duration: Histogram<f64>,
    decisions: Counter<u64>,
    retention_expired: Counter<u64>,
    erasures: Counter<u64>,
    provider_duration: Histogram<f64>,
    provider_errors: Counter<u64>,
    load_shed: Counter<u64>,
}

impl Instruments {
    pub fn new(meter: &Meter) -> Self {
        Self {
            rpc_duration: meter
                .f64_histogram(names::RPC_SERVER_CALL_DURATION)
                .with_description("Duration of gRPC calls served")
                .with_unit("s")
                .with_boundaries(RPC_DURATION_BOUNDARIES.to_vec())
                .build(),
            decisions: meter
                .u64_counter(names::DECISIONS)
                .with_description("Verify answers by outcome and purpose")
                .with_unit("{decision}")
                .build(),
            retention_expired: meter
                .u64_counter(names::RETENTION_EXPIRED)
                .with_description("Pending cases whose personal data was destroyed when its retention ran out")
                .with_unit("{case}")
                .build(),
            erasures: meter
                .u64_counter(names::ERASURES)
                .with_description("Cases erased on request")
                .with_unit("{case}")
                .build(),
            provider_duration: meter
                .f64_histogram(names::PROVIDER_CALL_DURATION)
                .with_description("Duration of provider attempts")
                .with_unit("s")
                .with_boundaries(RPC_DURATION_BOUNDARIES.to_vec())
                .build(),
            provider_errors: meter
                .u64_counter(names::PROVIDER_ERRORS)
                .with_description("Provider attempts that gave no outcome")
                .with_unit("{attempt}")
                .build(),
            load_shed: meter
                .u64_counter(names::LOAD_SHED)
                .with_description("Calls shed because too many of their method were in flight")
                .with_unit("{call}")
                .build(),
        }
    }

    /// One gRPC call: `method` as `package.Service/Method` (or `_OTHER`), `code` a status-code name.
    pub fn rpc_call(&self, method: &str, code: &'static str, seconds: f64) {
        self.rpc_duration.record(
            seconds,
            &[
                KeyValue::new(names::ATTR_RPC_SYSTEM_NAME, "grpc"),
                KeyValue::new(names::ATTR_RPC_METHOD, method.to_owned()),
                KeyValue::new(names::ATTR_RPC_RESPONSE_STATUS_CODE, code),
            ],
        );
    }

    /// One `Verify` answer.
    pub fn decision(&self, outcome: &'static str, purpose: &'static str) {
        self.decisions.add(
            1,
            &[
                KeyValue::new(names::ATTR_OUTCOME, outcome),
                KeyValue::new(names::ATTR_PURPOSE, purpose),
            ],
        );
    }

    /// One provider attempt: `result` is the outcome kind, or the error kind when `failed`.
    pub fn provider_attempt(&self, provider: &str, result: &'static str, failed: bool, seconds: f64) {
        let provider = KeyValue::new(names::ATTR_PROVIDER, provider.to_owned());
        self.provider_duration.record(
            seconds,
            &[provider.clone(), KeyValue::new(names::ATTR_PROVIDER_RESULT, result)],
        );
        if failed {
            self.provider_errors
                .add(1, &[provider, KeyValue::new(names::ATTR_ERROR_KIND, result)]);
        }
    }

    /// One call of `method` (`package.Service/Method`) shed by its in-flight limit.
    pub fn shed(&self, method: &str) {
        self.load_shed
            .add(1, &[KeyValue::new(names::ATTR_RPC_METHOD, method.to_owned())]);
    }

    pub fn retention_expired(&self, cases: u64) {
        self.retention_expired.add(cases, &[]);
    }

    pub fn erased(&self, cases: u64) {
        self.erasures.add(cases, &[]);
    }
}

use crate::store::QueueStats;

/// The last known review-queue figures.
#[derive(Debug, Default)]
pub struct QueueFigures {
    pending: AtomicU64,
    claimed: AtomicU64,
    oldest_pending_age_seconds: AtomicI64,
}

impl QueueFigures {
    pub fn update(&self, stats: QueueStats) {
        self.pending.store(stats.pending, Ordering::Relaxed);
        self.claimed.store(stats.claimed, Ordering::Relaxed);
        self.oldest_pending_age_seconds
            .store(stats.oldest_pending_age_seconds, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> QueueStats {
        QueueStats {
            pending: self.pending.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            oldest_pending_age_seconds: self.oldest_pending_age_seconds.load(Ordering::Relaxed),
        }
    }
}

/// Keeps the breaker-state gauge registered.
pub struct BreakerGauge {
    _state: ObservableGauge<u64>,
}

/// Registers `idgate.provider.breaker.state`, read from `states` (provider name, state) at each export.
pub fn register_breaker_gauge(
    meter: &Meter,
    states: impl Fn() -> Vec<(String, crate::providers::breaker::BreakerState)> + Send + Sync + 'static,
) -> BreakerGauge {
    use crate::providers::breaker::BreakerState;
    BreakerGauge {
        _state: meter
            .u64_observable_gauge(names::PROVIDER_BREAKER_STATE)
            .with_description("Circuit breaker per provider: 0 closed, 1 half-open, 2 open")
            .with_unit("{state}")
            .with_callback(move |o| {
                for (provider, state) in states() {
                    let value = match state {
                        BreakerState::Closed => 0,
                        BreakerState::HalfOpen => 1,
                        BreakerState::Open => 2,
                    };
                    o.observe(value, &[KeyValue::new(names::ATTR_PROVIDER, provider)]);
                }
            })
            .build(),
    }
}

/// Keeps the key age gauges registered.
pub struct KeyAgeGauge {
    _sealing: ObservableGauge<i64>,
    _kek: ObservableGauge<i64>,
    _kek_wraps_for: ObservableGauge<i64>,
}

/// Registers `idgate.keys.sealing.age`: seconds since the current sealing key (from `created_at`,
/// read at each export, so a reload shows at once) was created, by `now`; the same for the KEK; and
/// `idgate.keys.kek.wraps_for`: seconds the current KEK still wraps (`kek_wraps_for`: `None` when it
/// is undated, reported as 0 — it never wraps).
pub fn register_key_age_gauge(
    meter: &Meter,
    sealing_created_at: impl Fn() -> i64 + Send + Sync + 'static,
    kek_created_at: impl Fn() -> Option<i64> + Send + Sync + 'static,
    kek_wraps_for: impl Fn() -> Option<i64> + Send + Sync + 'static,
    now: impl Fn() -> i64 + Send + Sync + 'static,
) -> KeyAgeGauge {
    let now = Arc::new(now);
    let kek_now = now.clone();
    KeyAgeGauge {
        _kek_wraps_for: meter
            .i64_observable_gauge(names::KEK_WRAPS_FOR)
            .with_description("Seconds the current key-encryption key still wraps new data keys (0: none does)")
            .with_unit("s")
            .with_callback(move |o| o.observe(kek_wraps_for().unwrap_or(0).max(0), &[]))
            .build(),
        _kek: meter
            .i64_observable_gauge(names::KEK_AGE)
            .with_description("Age of the current key-encryption key (when it came from a key file)")
            .with_unit("s")
            .with_callback(move |o| {
                if let Some(created) = kek_created_at() {
                    o.observe((kek_now() - created).max(0), &[]);
                }
            })
            .build(),
        _sealing: meter
            .i64_observable_gauge(names::SEALING_KEY_AGE)
            .with_description("Age of the current sealing key")
            .with_unit("s")
            .with_callback(move |o| o.observe((now() - sealing_created_at()).max(0), &[]))
            .build(),
    }
}

/// Keeps the instruments alive (dropping them unregisters their callbacks).
pub struct QueueGauges {
    _pending: ObservableGauge<u64>,
    _claimed: ObservableGauge<u64>,
    _oldest: ObservableGauge<i64>,
}

/// Registers `idgate.review.queue.pending`, `.claimed` and `.oldest_pending_age` on `meter`.
pub fn register_queue_gauges(meter: &Meter, figures: Arc<QueueFigures>) -> QueueGauges {
    let (a, b, c) = (figures.clone(), figures.clone(), figures);
    QueueGauges {
        _pending: meter
            .u64_observable_gauge(names::REVIEW_QUEUE_PENDING)
            .with_description("Cases pending review that nobody holds")
            .with_callback(move |o| o.observe(a.snapshot().pending, &[]))
            .build(),
        _claimed: meter
            .u64_observable_gauge(names::REVIEW_QUEUE_CLAIMED)
            .with_description("Cases pending review under a live reviewer lease")
            .with_callback(move |o| o.observe(b.snapshot().claimed, &[]))
            .build(),
        _oldest: meter
            .i64_observable_gauge(names::REVIEW_QUEUE_OLDEST_PENDING_AGE)
            .with_description("Age of the oldest unclaimed case pending review")
            .with_unit("s")
            .with_callback(move |o| o.observe(c.snapshot().oldest_pending_age_seconds, &[]))
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    fn exported(exporter: &InMemoryMetricExporter) -> Vec<(String, i128)> {
        let mut out = Vec::new();
        for resource in exporter.get_finished_metrics().unwrap() {
            for scope in resource.scope_metrics() {
                for metric in scope.metrics() {
                    let value = match metric.data() {
                        AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                            g.data_points().last().map(|p| p.value() as i128)
                        }
                        AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                            g.data_points().last().map(|p| p.value() as i128)
                        }
                        _ => None,
                    };
                    if let Some(value) = value {
                        out.push((metric.name().to_owned(), value));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn queue_figures_are_exported_as_gauges() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let figures = Arc::new(QueueFigures::default());
        let _gauges = register_queue_gauges(&provider.meter("idgate"), figures.clone());
        figures.update(QueueStats {
            pending: 3,
            claimed: 2,
            oldest_pending_age_seconds: 61,
        });
        provider.force_flush().unwrap();
        let got = exported(&exporter);
        for (name, value) in [
            ("idgate.review.queue.pending", 3),
            ("idgate.review.queue.claimed", 2),
            ("idgate.review.queue.oldest_pending_age", 61),
        ] {
            assert!(
                got.contains(&(name.to_owned(), value)),
                "{name} = {value} missing from {got:?}"
            );
        }
    }
}
