//! What a gateway is started from: the configuration with dev-mode defaults filled in (API.md §6),
//! and the one error type of assembly. `--dev` supplies only what the configuration leaves out — a
//! dev PKI, dev keys, the built-in provider simulator, the embedded store.
//!
//! It must never fill in a production default: without `--dev` every missing setting is named.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, ProviderConfig};
use crate::crypto::keyfile;
use crate::metrics::Instruments;
use crate::pki::{self, DevPki};
use crate::providers::router::Route;
use crate::providers::setup::{self, Chain, SetupError};
use crate::providers::sim;
use crate::transport::tls;

/// The default address of `serve --dev`.
pub const DEV_LISTEN: &str = "127.0.0.1:50051";

/// Where providers come from.
#[derive(Debug, Clone)]
pub enum ProviderPlan {
    /// The configured providers, in order.
    Configured(Vec<ProviderConfig>),
    /// The built-in simulator on a loopback port, with fresh credentials (dev mode).
    BuiltInSimulator,
}

/// Everything needed to start, with dev defaults already filled in.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: Config,
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub client_ca: PathBuf,
    pub keys_dir: PathBuf,
    pub providers: ProviderPlan,
    /// The dev PKI directory when `--dev` made or used one.
    pub dev_pki: Option<DevPki>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keys(#[from] keyfile::KeyFileError),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error(transparent)]
    DenyList(#[from] crate::transport::revocation::DenyListError),
    #[error("{0}")]
    Unsupported(String),
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
}

impl Plan {
    /// Without `--dev`: everything must be configured; the error names what is missing.
    pub fn production(config: Config, listen: Option<SocketAddr>) -> Result<Self, StartError> {
        let server = &config.server;
        let listen = listen
            .or(server.listen)
            .ok_or(ConfigError::Missing("server.listen (or --listen)"))?;
        let tls_cert = server.tls_cert.clone().ok_or(ConfigError::Missing("server.tls_cert"))?;
        let tls_key = server.tls_key.clone().ok_or(ConfigError::Missing("server.tls_key"))?;
        let client_ca = server
            .client_ca
            .clone()
            .ok_or(ConfigError::Missing("server.client_ca"))?;
        let keys_dir = config.keys.dir.clone().ok_or(ConfigError::Missing("keys.dir"))?;
        if config.providers.is_empty() {
            return Err(ConfigError::Missing("[[providers]] (at least one)").into());
        }
        let providers = ProviderPlan::Configured(config.providers.clone());
        Ok(Self {
            config,
            listen,
            tls_cert,
            tls_key,
            client_ca,
            keys_dir,
            providers,
            dev_pki: None,
        })
    }

    /// With `--dev`: fills in what the configuration leaves out, creating the dev PKI and keys in
    /// `dev_dir` if missing (and reusing them on restart).
    pub fn dev(config: Config, listen: Option<SocketAddr>, dev_dir: &Path, now_unix: i64) -> Result<Self, StartError> {
        let server = config.server.clone();
        let dev_pki = DevPki::at(dev_dir);
        let needs_pki = server.tls_cert.is_none() || server.tls_key.is_none() || server.client_ca.is_none();
        if needs_pki && !dev_pki.is_complete() {
            pki::generate_dev_pki(dev_dir, true)?;
        }
        let keys_dir = match config.keys.dir.clone() {
            Some(dir) => dir,
            None => {
                let dir = dev_dir.join("keys");
                // Dev rotates its own KEK when the epoch is over (and destroys those past date).
                keyfile::ensure_dev_keys(&dir, now_unix, &config.kek_schedule())?;
                dir
            }
        };
        let listen = match listen.or(server.listen) {
            Some(addr) => addr,
            None => DEV_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("dev listen address".into()))?,
        };
        let providers = if config.providers.is_empty() {
            ProviderPlan::BuiltInSimulator
        } else {
            ProviderPlan::Configured(config.providers.clone())
        };
        Ok(Self {
            listen,
            tls_cert: server.tls_cert.unwrap_or_else(|| dev_pki.server_cert()),
            tls_key: server.tls_key.unwrap_or_else(|| dev_pki.server_key()),
            client_ca: server.client_ca.unwrap_or_else(|| dev_pki.ca()),
            keys_dir,
            providers,
            dev_pki: needs_pki.then_some(dev_pki),
            config,
        })
    }
}

impl ProviderPlan {
    /// The providers step: the routes to call, in order, and their banner line. The built-in
    /// simulator runs until `stop` resolves.
    pub(super) async fn start(
        &self,
        clock: &Arc<dyn Clock>,
        instruments: &Instruments,
        stop: impl Future<Output = ()> + Send + 'static,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Route>, StartError> {
        let Chain { routes, note } = match self {
            ProviderPlan::BuiltInSimulator => sim::dev::start(clock, instruments, stop).await?,
            ProviderPlan::Configured(list) => setup::configured(list, clock, instruments)?,
        };
        notes.push(note);
        Ok(routes)
    }
}

/// Provider set-up failures are reported like the gateway's own (an I/O failure is not a usage error).
impl From<crate::store::setup::SetupError> for StartError {
    fn from(e: crate::store::setup::SetupError) -> Self {
        match e {
            crate::store::setup::SetupError::Config(e) => StartError::Config(e),
            crate::store::setup::SetupError::Unreachable(what) => StartError::Unsupported(what),
        }
    }
}

impl From<SetupError> for StartError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Config(e) => StartError::Config(e),
            SetupError::Unsupported(what) => StartError::Unsupported(what),
            SetupError::Io { what, source } => StartError::Io { what, source },
        }
    }
}
