//! Metrics: the figures operators watch, as OpenTelemetry instruments (exported over OTLP when
//! `telemetry.otlp_endpoint` is set; see `telemetry`).
//!
//! The review queue's figures are refreshed by the gateway's maintenance loop and read by observable
//! gauges, so an export never waits on the store. Labels carry no ids and never personal data.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use opentelemetry::metrics::{Meter, ObservableGauge};

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
            .u64_observable_gauge("idgate.review.queue.pending")
            .with_description("Cases pending review that nobody holds")
            .with_callback(move |o| o.observe(a.snapshot().pending, &[]))
            .build(),
        _claimed: meter
            .u64_observable_gauge("idgate.review.queue.claimed")
            .with_description("Cases pending review under a live reviewer lease")
            .with_callback(move |o| o.observe(b.snapshot().claimed, &[]))
            .build(),
        _oldest: meter
            .i64_observable_gauge("idgate.review.queue.oldest_pending_age")
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
