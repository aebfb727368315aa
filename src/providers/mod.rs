//! Identity providers: who can answer "is this the person". One trait; what it answers is the
//! decision policy's [`Outcome`] type.
//!
//! Adapters ([`tencent`], [`aliyun`]) speak a vendor's wire protocol and map every documented answer to an
//! [`Outcome`] or a [`ProviderError`]. They never decide what the gateway answers (that is
//! `crate::decision`), never retry a billed call that may have reached the provider, and never put
//! any part of a request (name, ID number, images) into an error, a log line or `Debug` output.

use std::future::Future;
use std::pin::Pin;

/// What a provider is asked. Borrowed plaintext that lives only as long as the request.
///
/// Deliberately not `Debug`: it holds personal data.
pub struct ProviderRequest<'a> {
    /// Full name as on the ID card.
    pub name: &'a str,
    /// 18-character resident ID number, already checked locally (check digit upper-case).
    pub id_number: &'a str,
    /// Face photo (JPEG or PNG bytes) for a live-account (anchor) check; `None` for a two-factor
    /// name + ID check.
    pub face_image: Option<&'a [u8]>,
}

/// What a provider found: the decision policy's type ([`crate::decision::Outcome`]), which adapters
/// produce and the policy judges.
pub use crate::decision::Outcome;

/// Why a provider gave no outcome. Any of these makes the router try the next provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer in time. The call may have reached the provider (and may be billed).
    #[error("provider timed out")]
    Timeout,
    /// The provider answered that it failed internally, or could not be reached.
    #[error("provider unavailable: {0}")]
    Unavailable(&'static str),
    /// The provider refused our request itself: credentials, signature, quota, configuration.
    /// Operators must act; retrying will not help.
    #[error("provider refused the request: {0}")]
    Refused(String),
    /// The provider refused because we call too often (rate limit, quota, daily cap). The router
    /// fails over and leaves this provider alone for `retry_after` (when the provider said) or
    /// its configured back-off.
    #[error("provider rate-limited the request: {code}")]
    RateLimited {
        code: String,
        retry_after: Option<std::time::Duration>,
    },
    /// This provider is not set up for this kind of check (e.g. no face-check scene configured);
    /// nothing was sent. Says nothing about the provider's health.
    #[error("provider not configured for this check: {0}")]
    NotConfigured(&'static str),
    /// The answer did not follow the protocol.
    #[error("provider answered outside its protocol: {0}")]
    Protocol(String),
}

/// The boxed future a [`Provider`] returns (object-safe async).
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ProviderError>> + Send + 'a>>;

/// Anything that can check an identity.
pub trait Provider: Send + Sync + 'static {
    /// A short stable name for case records and metrics (from configuration, e.g. `tencent-primary`).
    fn name(&self) -> &str;

    /// Asks the provider once. Never retries on its own.
    fn check<'a>(&'a self, request: &'a ProviderRequest<'a>) -> CheckFuture<'a>;
}

pub mod aliyun;
pub mod breaker;
pub mod credentials;
pub mod http;
pub mod image_base64;
pub mod router;
pub mod sanitize;
pub mod setup;
pub mod sim;
pub mod tencent;
pub mod traced;
