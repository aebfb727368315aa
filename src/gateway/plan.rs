//! What a gateway is started from: the configuration with dev-mode defaults filled in (docs/api.md §6),
//! and the one error type of assembly. `--dev` supplies only what the configuration leaves out — a
//! dev PKI, dev keys, the built-in provider simulator, the embedded store.
//!
//! It must never fill in a production default: without `--dev` every missing setting is named.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{self, Config, ConfigError, ProviderConfig};
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
        Self {
            config,
            listen,
            tls_cert,
            tls_key,
            client_ca,
            keys_dir,
            providers,
            dev_pki: None,
        }
        .private_files_checked()
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
        Self {
            listen,
            tls_cert: server.tls_cert.unwrap_or_else(|| dev_pki.server_cert()),
            tls_key: server.tls_key.unwrap_or_else(|| dev_pki.server_key()),
            client_ca: server.client_ca.unwrap_or_else(|| dev_pki.ca()),
            keys_dir,
            providers,
            dev_pki: needs_pki.then_some(dev_pki),
            config,
        }
        .private_files_checked()
    }

    /// The plan, once every key and secret file it names — the TLS server key (the dev one too),
    /// the Redis client key, `_file` secrets — is readable by its owner only; else the error names
    /// the first that is not, by setting and path. (Key files in `keys.dir` are checked as they load.)
    fn private_files_checked(self) -> Result<Self, StartError> {
        config::ensure_private("server.tls_key", &self.tls_key)?;
        for (what, path) in self.config.private_files() {
            config::ensure_private(what, path)?;
        }
        Ok(self)
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

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Every file under `dir`, recursively.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    /// `serve --dev` on a fresh machine: the dev PKI and keys it writes are its owner's only, so
    /// the check that refuses open key files lets it start — and restart from them.
    #[test]
    fn dev_mode_on_a_fresh_directory_writes_private_files_and_starts() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("certs").join("dev");
        let plan = Plan::dev(Config::default(), None, &dev, 1_000).expect("a fresh dev start");
        let written = files(&dev);
        assert!(written.iter().any(|p| p.ends_with("server.key")), "{written:?}");
        assert!(written.iter().any(|p| p.ends_with("onboarding.key")), "{written:?}");
        for path in &written {
            assert_eq!(mode(path) & 0o077, 0, "{} is {:o}", path.display(), mode(path));
        }
        assert_eq!(mode(&dev) & 0o077, 0);
        assert_eq!(plan.tls_key, dev.join("server.key"));
        Plan::dev(Config::default(), None, &dev, 1_001).expect("a restart reuses them");

        // Opened up by hand, the dev server key is refused by name and rule.
        std::fs::set_permissions(&plan.tls_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = Plan::dev(Config::default(), None, &dev, 1_002)
            .expect_err("refused")
            .to_string();
        assert!(
            refused.contains("server.tls_key") && refused.contains("chmod 600"),
            "{refused}"
        );
    }

    /// Without `--dev`: the TLS server key, the Redis client key and `_file` secrets that group or
    /// others may read are refused before anything starts, each by its setting and path.
    #[test]
    fn production_refuses_key_and_secret_files_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let private = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "not shown").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        let secret = private("tencent");
        let mut config = Config::from_toml(&format!(
            "[[providers]]\nname = \"p\"\nkind = \"tencent-faceid\"\nendpoint = \"https://x\"\nsecret_id = \"a\"\nsecret_key_file = {:?}\n",
            secret.display().to_string()
        ))
        .unwrap();
        config.server.listen = Some("127.0.0.1:0".parse().unwrap());
        config.server.tls_cert = Some(private("server.pem"));
        config.server.tls_key = Some(private("server.key"));
        config.server.client_ca = Some(private("ca.pem"));
        config.store.tls_cert_file = Some(private("redis.pem"));
        config.store.tls_key_file = Some(private("redis.key"));
        config.store.password_file = Some(private("redis.password"));
        config.keys.keks_file = Some(private("keks"));
        config.keys.dir = Some(dir.path().to_path_buf());
        Plan::production(config.clone(), None).expect("all private: starts");
        for (setting, name) in [
            ("server.tls_key", "server.key"),
            ("store.tls_key_file", "redis.key"),
            ("store.password_file", "redis.password"),
            ("keys.keks_file", "keks"),
            ("provider secret_key_file", "tencent"),
        ] {
            let path = dir.path().join(name);
            for open in [0o640, 0o604] {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
                let refused = Plan::production(config.clone(), None).expect_err("refused").to_string();
                assert!(
                    refused.contains(setting) && refused.contains(&path.display().to_string()),
                    "{refused}"
                );
                assert!(
                    refused.contains("chmod 600") && !refused.contains("not shown"),
                    "{refused}"
                );
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}
