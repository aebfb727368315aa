//! Routing over several providers: in order, each behind a timeout that fits the caller's deadline and
//! a concurrency limit; failover to the next on an error; "all failed" when none answered.
//!
//! The router never retries the same provider (calls are billed) and never decides anything: it
//! returns the first outcome and who gave it.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{Outcome, Provider, ProviderError, ProviderRequest};

/// One provider with its limits.
pub struct Route {
    provider: Arc<dyn Provider>,
    /// Longest a single call may take, whatever the caller's deadline.
    timeout: Duration,
    /// Calls in flight to this provider at most (a provider's quota, and a bulkhead when it is slow).
    in_flight: Arc<Semaphore>,
}

impl Route {
    pub fn new(provider: Arc<dyn Provider>, timeout: Duration, max_concurrency: usize) -> Self {
        Self {
            provider,
            timeout,
            in_flight: Arc::new(Semaphore::new(max_concurrency.max(1))),
        }
    }
}

/// What routing produced.
#[derive(Debug)]
pub enum Routed {
    /// A provider answered.
    Answered { provider: String, outcome: Outcome },
    /// No provider answered; each attempt's error, in order (names and error kinds only).
    AllFailed { attempts: Vec<(String, ProviderError)> },
}

/// Providers in the order they are tried.
pub struct Router {
    routes: Vec<Route>,
}

/// Below this much time left, another provider call is not started.
const MIN_CALL_BUDGET: Duration = Duration::from_millis(20);

impl Router {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Asks providers in order until one answers or `deadline` leaves no time.
    pub async fn check(&self, request: &ProviderRequest<'_>, deadline: Instant) -> Routed {
        let mut attempts = Vec::new();
        for route in &self.routes {
            let name = route.provider.name().to_owned();
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_CALL_BUDGET {
                attempts.push((name, ProviderError::Timeout));
                break;
            }
            let budget = left.min(route.timeout);
            let started = Instant::now();
            let call = async {
                // A full provider is skipped at once rather than queued: the next one may be free.
                let _permit = route
                    .in_flight
                    .try_acquire()
                    .map_err(|_| ProviderError::Unavailable("busy"))?;
                route.provider.check(request).await
            };
            let result = match tokio::time::timeout(budget, call).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::Timeout),
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(outcome) => {
                    tracing::debug!(provider = %name, elapsed_ms, ?outcome, "provider answered");
                    return Routed::Answered {
                        provider: name,
                        outcome,
                    };
                }
                Err(error) => {
                    tracing::warn!(provider = %name, elapsed_ms, %error, "provider failed; trying the next");
                    attempts.push((name, error));
                }
            }
        }
        Routed::AllFailed { attempts }
    }
}
