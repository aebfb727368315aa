//! A span around every provider attempt: `provider.attempt` with the provider's name and the kind of
//! outcome (`match`, `face_compared`, …) or of error (`timeout`, `unavailable`, …).
//!
//! Also records `idgate.provider.call.duration` and `idgate.provider.errors`.
//! A decorator, so the router and the adapters stay as they are. Must never record the request, a
//! score, or an error's text (a provider's message may echo what it was sent).

use std::sync::Arc;

use tracing::Instrument as _;

use super::{CheckFuture, Provider, ProviderError, ProviderRequest};
use crate::metrics::Instruments;

/// A provider, with a span and measurements per call.
pub struct Traced {
    pub inner: Arc<dyn Provider>,
    pub instruments: Instruments,
}

/// The kind of a provider error, without its text.
pub fn error_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Timeout => "timeout",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::Refused(_) => "refused",
        ProviderError::Protocol(_) => "protocol",
        ProviderError::RateLimited { .. } => "rate_limited",
        ProviderError::NotConfigured(_) => "not_configured",
    }
}

impl Provider for Traced {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
        let span = tracing::info_span!(
            "provider.attempt",
            provider = self.inner.name(),
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let call = self.inner.check(request);
        let started = tokio::time::Instant::now();
        Box::pin(
            async move {
                let result = call.await;
                let seconds = started.elapsed().as_secs_f64();
                let current = tracing::Span::current();
                let (field, kind) = match &result {
                    Ok(outcome) => ("outcome", outcome.kind()),
                    Err(error) => ("error", error_kind(error)),
                };
                current.record(field, kind);
                self.instruments
                    .provider_attempt(self.inner.name(), kind, result.is_err(), seconds);
                result
            }
            .instrument(span),
        )
    }
}
