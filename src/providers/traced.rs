//! A span around every provider attempt: `provider.attempt` with the provider's name and the kind of
//! outcome (`match`, `face_compared`, …) or of error (`timeout`, `unavailable`, …).
//!
//! A decorator, so the router and the adapters stay as they are. Must never record the request, a
//! score, or an error's text (a provider's message may echo what it was sent).

use std::sync::Arc;

use tracing::Instrument as _;

use super::{CheckFuture, Provider, ProviderError, ProviderRequest};

/// `inner`, with a span per call.
pub struct Traced(pub Arc<dyn Provider>);

/// The kind of a provider error, without its text.
pub fn error_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Timeout => "timeout",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::Refused(_) => "refused",
        ProviderError::Protocol(_) => "protocol",
    }
}

impl Provider for Traced {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
        let span = tracing::info_span!(
            "provider.attempt",
            provider = self.0.name(),
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let inner = self.0.check(request);
        Box::pin(
            async move {
                let result = inner.await;
                let current = tracing::Span::current();
                match &result {
                    Ok(outcome) => current.record("outcome", outcome.kind()),
                    Err(error) => current.record("error", error_kind(error)),
                };
                result
            }
            .instrument(span),
        )
    }
}
