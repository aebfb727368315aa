//! What operators watch: readiness (the store answers and at least one provider's breaker lets
//! calls through) and the gauges (review-queue figures, key ages, breaker states).
//!
//! It must never put personal data or key material into a check's message or a metric.

use std::sync::Arc;

use opentelemetry::metrics::Meter;

use super::keys::Keys;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::metrics::{
    BreakerGauge, KeyAgeGauge, QueueFigures, QueueGauges, register_breaker_gauge, register_key_age_gauge,
    register_queue_gauges,
};
use crate::store::Store;
use crate::transport::readiness::{ProvidersCheck, Readiness, StoreCheck};
use crate::verify::Verifier;

/// Ready while the store answers and at least one provider's breaker lets calls through.
pub(super) fn readiness(server: &ServerConfig, store: &Arc<dyn Store>, verifier: &Arc<Verifier>) -> Readiness {
    let verifier = verifier.clone();
    Readiness {
        checks: vec![
            Arc::new(StoreCheck {
                store: store.clone(),
                timeout: server.health_probe_timeout_ms,
            }),
            Arc::new(ProvidersCheck {
                states: Arc::new(move || verifier.breaker_states()),
            }),
        ],
        every: server.health_probe_interval_ms,
    }
}

/// Keeps the metric callbacks registered while the gateway lives.
pub(super) struct Gauges {
    _queue: QueueGauges,
    _key_age: KeyAgeGauge,
    _breaker: BreakerGauge,
}

impl Gauges {
    /// Registers the gauges on `meter`; the queue figures are those the maintenance task refreshes.
    pub(super) fn register(
        meter: &Meter,
        queue_figures: &Arc<QueueFigures>,
        keys: &Keys,
        verifier: &Arc<Verifier>,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        let (sealing, keks, clock) = (keys.sealing.clone(), keys.keks.clone(), clock.clone());
        let wrapping = keys.keks.clone();
        let verifier = verifier.clone();
        Self {
            _queue: register_queue_gauges(meter, queue_figures.clone()),
            _key_age: register_key_age_gauge(
                meter,
                move || sealing.load().current().created_at_unix,
                move || keks.load().current_created_at(),
                move || wrapping.load().current_wraps_for(),
                move || clock.now_unix(),
            ),
            _breaker: register_breaker_gauge(meter, move || verifier.breaker_states()),
        }
    }
}
