//! The provider chain a gateway calls, built from configuration: one adapter per `[[providers]]`
//! entry (Tencent FaceID or Alibaba Cloud ID Verification), in order, each traced and routed with its
//! timeout, concurrency bound, circuit breaker and rate-limit back-off, all sharing one HTTP client.
//!
//! It must never print a secret key (errors name the provider, never its credentials). A provider
//! kind it does not know never gets here: the configuration refuses it at load.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{BreakerSettings, ConfigError, ProviderConfig, ProviderKind};
use crate::metrics::Instruments;
use crate::providers::Provider;
use crate::providers::aliyun::{AliyunCloudAuth, AliyunConfig};
use crate::providers::breaker::BreakerConfig;
use crate::providers::credentials::SecretKey;
use crate::providers::router::Route;
use crate::providers::tencent::{TencentConfig, TencentFaceId};
use crate::providers::traced::Traced;

/// Why the provider chain could not be built. The gateway reports each kind as it reports its own.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A provider's secret could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Unsupported(String),
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
}

/// The routes to call, in order, and one line for the start-up banner (names only).
pub struct Chain {
    pub routes: Vec<Route>,
    pub note: String,
}

/// An HTTP client for provider calls: rustls with ring, trusting the operating system's root
/// certificates when `with_system_roots` (none are needed for the loopback simulator).
pub fn http_client(timeout: Duration, with_system_roots: bool) -> Result<reqwest::Client, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    if with_system_roots {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(SetupError::Unsupported(
                "no trusted root certificates found on this system (install ca-certificates)".into(),
            ));
        }
    }
    crate::providers::http::http_client(timeout, roots)
        .map_err(|e| SetupError::Unsupported(format!("provider HTTP client: {e}")))
}

/// `provider` with a span and measurements around every call.
pub fn traced(provider: Arc<dyn Provider>, instruments: &Instruments) -> Arc<dyn Provider> {
    Arc::new(Traced {
        inner: provider,
        instruments: instruments.clone(),
    })
}

/// The configured providers, in order.
pub fn configured(
    list: &[ProviderConfig],
    clock: &Arc<dyn Clock>,
    instruments: &Instruments,
) -> Result<Chain, SetupError> {
    let longest = list
        .iter()
        .map(|p| p.timeout_ms)
        .max()
        .unwrap_or(Duration::from_millis(1_500));
    let http = http_client(longest, true)?;
    let mut routes = Vec::new();
    for p in list {
        routes.push(
            Route::new(
                traced(build_provider(p, &http, clock)?, instruments),
                p.timeout_ms,
                p.max_concurrency,
            )
            .with_breaker(breaker_config(&p.breaker))
            .with_rate_limit_backoff(p.rate_limit_backoff_ms),
        );
    }
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    Ok(Chain {
        routes,
        note: format!("providers, in order: {}", names.join(", ")),
    })
}

/// A breaker's thresholds from its `[providers.breaker]` settings.
fn breaker_config(settings: &BreakerSettings) -> BreakerConfig {
    let BreakerSettings {
        window,
        min_calls,
        failure_rate,
        consecutive_failures,
        slow_call_ms,
        slow_call_rate,
        open_ms,
        half_open_probes,
    } = *settings;
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    BreakerConfig {
        window,
        min_calls,
        failure_rate,
        consecutive_failures,
        slow_call_ms: millis(slow_call_ms),
        slow_call_rate,
        open_ms: millis(open_ms),
        half_open_probes,
    }
}

fn build_provider(
    p: &ProviderConfig,
    http: &reqwest::Client,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<dyn Provider>, SetupError> {
    match p.kind {
        ProviderKind::TencentFaceId => {
            let secret = p.resolve_secret_key()?;
            Ok(Arc::new(
                TencentFaceId::new(
                    TencentConfig {
                        name: p.name.clone(),
                        endpoint: p.endpoint.clone(),
                        secret_id: p.secret_id.clone(),
                        secret_key: SecretKey::new(secret.expose().to_owned()),
                        region: p.region.clone(),
                        timeout: p.timeout_ms,
                    },
                    http.clone(),
                    clock.clone(),
                )
                .map_err(|e| SetupError::Unsupported(format!("provider {}: {e}", p.name)))?,
            ))
        }
        ProviderKind::AliyunCloudAuth => {
            let secret = p.resolve_secret_key()?;
            Ok(Arc::new(
                AliyunCloudAuth::new(
                    AliyunConfig {
                        name: p.name.clone(),
                        endpoint: p.endpoint.clone(),
                        access_key_id: p.secret_id.clone(),
                        access_key_secret: SecretKey::new(secret.expose().to_owned()),
                        scene_id: p.scene_id.clone(),
                        timeout: p.timeout_ms,
                    },
                    http.clone(),
                    clock.clone(),
                )
                .map_err(|e| SetupError::Unsupported(format!("provider {}: {e}", p.name)))?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_breaker_defaults_are_the_breakers_own() {
        assert_eq!(breaker_config(&BreakerSettings::default()), BreakerConfig::default());
    }
}
