//! Readiness: whether the idgate services can do useful work right now, reported through
//! `grpc.health.v1`.
//!
//! Two different questions are answered by the health service (see docs/operations.md, "Health"):
//! - **liveness** — the overall `""` entry: `SERVING` while the process answers at all. It never
//!   follows the store, so an orchestrator does not restart a healthy gateway because Redis is down.
//! - **readiness** — the entries of the idgate services: `SERVING` only while every
//!   [`ReadinessCheck`] passes, probed in the background every `server.health_probe_interval_ms`.
//!
//! A check is anything that can answer "usable?" cheaply: the store (a bounded read) today; "at least
//! one provider can be used" (breakers) is meant to be another [`ReadinessCheck`].
//!
//! Must never put personal data in a check's reason (reasons are logged), and never block a call:
//! probes run beside the server, and health answers from the last probe.

use std::sync::Arc;
use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::services::{AuditService, ReviewService, VerificationService};
use crate::pb;
use crate::store::Store;

/// One input to readiness.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// A short fixed name for log lines, e.g. `store`.
    fn name(&self) -> &'static str;
    /// `Ok` when usable; otherwise why not, in words without personal data.
    async fn check(&self) -> Result<(), String>;
}

/// The store is reachable: one cheap read of a key that never exists, bounded by `timeout`.
pub struct StoreCheck {
    pub store: Arc<dyn Store>,
    pub timeout: Duration,
}

/// The case id the store probe reads. Never issued (case ids are random `vf_` + hex).
pub const PROBE_CASE_ID: &str = "vf_probe";

#[async_trait::async_trait]
impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.store.get(PROBE_CASE_ID)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

/// Some provider can be used: not every circuit breaker is open (a gateway without providers, or
/// whose breakers are closed or probing, is ready).
pub struct ProvidersCheck {
    /// Each provider's breaker state (the verifier's router).
    pub states: Arc<dyn Fn() -> Vec<(String, crate::providers::breaker::BreakerState)> + Send + Sync>,
}

#[async_trait::async_trait]
impl ReadinessCheck for ProvidersCheck {
    fn name(&self) -> &'static str {
        "providers"
    }

    async fn check(&self) -> Result<(), String> {
        let states = (self.states)();
        let all_open = !states.is_empty()
            && states
                .iter()
                .all(|(_, state)| *state == crate::providers::breaker::BreakerState::Open);
        if all_open {
            Err("every provider's circuit breaker is open".to_owned())
        } else {
            Ok(())
        }
    }
}

/// The checks that decide readiness, and how often they run.
#[derive(Clone)]
pub struct Readiness {
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    pub every: Duration,
}

/// The health-service names of the idgate services (what readiness switches).
pub fn service_names() -> [&'static str; 3] {
    [
        <pb::verification_service_server::VerificationServiceServer<VerificationService> as NamedService>::NAME,
        <pb::review_service_server::ReviewServiceServer<ReviewService> as NamedService>::NAME,
        <pb::audit_service_server::AuditServiceServer<AuditService> as NamedService>::NAME,
    ]
}

impl Readiness {
    /// Runs every check once; the first failure, as `(check name, reason)`.
    pub async fn probe(&self) -> Result<(), (&'static str, String)> {
        for check in &self.checks {
            check.check().await.map_err(|reason| (check.name(), reason))?;
        }
        Ok(())
    }

    /// Probes now and then every `every`, switching the idgate services between `SERVING` and
    /// `NOT_SERVING` on `reporter` (the overall `""` entry is left alone). Logs each change once.
    /// Runs until dropped.
    pub async fn watch(self, reporter: HealthReporter) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ready: Option<bool> = None;
        loop {
            tick.tick().await;
            let outcome = self.probe().await;
            let now_ready = outcome.is_ok();
            if ready == Some(now_ready) {
                continue;
            }
            match &outcome {
                Ok(()) if ready.is_some() => tracing::info!("ready again: idgate services SERVING"),
                Ok(()) => {}
                Err((check, reason)) => {
                    tracing::warn!(check, %reason, "not ready: idgate services NOT_SERVING")
                }
            }
            let status = if now_ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in service_names() {
                reporter.set_service_status(name, status).await;
            }
            ready = Some(now_ready);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Switch(Arc<AtomicBool>);

    #[async_trait::async_trait]
    impl ReadinessCheck for Switch {
        fn name(&self) -> &'static str {
            "switch"
        }
        async fn check(&self) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("switched off".into())
            }
        }
    }

    #[tokio::test]
    async fn no_usable_provider_means_not_ready() {
        use crate::providers::breaker::BreakerState::{Closed, HalfOpen, Open};
        let check = |states: Vec<(String, crate::providers::breaker::BreakerState)>| ProvidersCheck {
            states: Arc::new(move || states.clone()),
        };
        assert!(
            check(vec![("a".into(), Open), ("b".into(), Open)])
                .check()
                .await
                .is_err()
        );
        assert!(
            check(vec![("a".into(), Open), ("b".into(), HalfOpen)])
                .check()
                .await
                .is_ok()
        );
        assert!(check(vec![("a".into(), Closed)]).check().await.is_ok());
        assert!(
            check(Vec::new()).check().await.is_ok(),
            "no providers configured: nothing to wait for"
        );
    }

    #[tokio::test]
    async fn any_failing_check_makes_the_services_not_serving_and_the_process_stays_live() {
        let on = Arc::new(AtomicBool::new(true));
        let readiness = Readiness {
            checks: vec![
                Arc::new(StoreCheck {
                    store: Arc::new(crate::store::memory::MemoryStore::new()),
                    timeout: Duration::from_millis(500),
                }),
                Arc::new(Switch(on.clone())),
            ],
            every: Duration::from_millis(10),
        };
        let reporter = HealthReporter::new();
        let service = Arc::new(tonic_health::server::HealthService::from_health_reporter(
            reporter.clone(),
        ));
        let watcher = tokio::spawn(readiness.watch(reporter));
        let status_of = |name: &'static str| {
            let service = service.clone();
            async move {
                use tonic_health::pb::health_server::Health as _;
                let request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: name.into() });
                service.check(request).await.map(|r| r.into_inner().status)
            }
        };
        let wait_for = |want: i32| async move {
            for _ in 0..500 {
                let mut all = true;
                for name in service_names() {
                    all &= status_of(name).await.ok() == Some(want);
                }
                if all {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("services never reached status {want}");
        };
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
        wait_for(serving).await;
        on.store(false, Ordering::SeqCst);
        wait_for(not_serving).await;
        assert_eq!(status_of("").await.ok(), Some(serving), "liveness follows no check");
        on.store(true, Ordering::SeqCst);
        wait_for(serving).await;
        watcher.abort();
    }
}
