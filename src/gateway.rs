//! Assembling a gateway from configuration: keys, store, providers, the use cases, the TLS listener,
//! and the background retention sweep. `idgate serve` and the end-to-end tests both start here.
//!
//! This is where dev-mode defaults are filled in (API.md §6): `--dev` supplies only what the
//! configuration leaves out — a dev PKI, dev keys, the built-in provider simulator, the embedded store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, KeysConfig, ProviderConfig};
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::KekRing;
use crate::crypto::keyfile;
use crate::crypto::live::Live;
use crate::crypto::sealing::SealingKeyring;
use crate::metrics::{
    BreakerGauge, Instruments, KeyAgeGauge, QueueFigures, QueueGauges, register_breaker_gauge, register_key_age_gauge,
    register_queue_gauges,
};
use crate::pki::{self, DevPki};
use crate::providers::aliyun::{AliyunCloudAuth, AliyunConfig};
use crate::providers::router::{Route, Router};
use crate::providers::tencent::{SecretKey, TencentConfig, TencentFaceId};
use crate::providers::traced::Traced;
use crate::providers::{Provider, sim};
use crate::review::{ReviewDesk, ReviewSettings};
use crate::store::ReviewQueue;
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisOptions, RedisStore};
use crate::transport::readiness::{ProvidersCheck, Readiness, StoreCheck};
use crate::transport::revocation::{DenyListError, Revocation};
use crate::transport::services::App;
use crate::transport::{server, tls};
use crate::verify::{Limits, Verifier, VerifySettings};

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
    DenyList(#[from] DenyListError),
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
                keyfile::ensure_dev_keys(&dir, now_unix)?;
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

/// The gateway's keys, loaded together from `keys.dir` (and `keys.keks` / `keys.keks_file`).
struct LoadedKeys {
    sealing: SealingKeyring,
    keks: KekRing,
    indexer: BlindIndexer,
}

impl LoadedKeys {
    fn load(dir: &Path, keys: &KeysConfig) -> Result<Self, StartError> {
        let sealing = keyfile::load_sealing_keyring(dir, keys.sealing_grace_seconds)?;
        let extra_keks = match keys.kek_list()? {
            Some(list) => keyfile::parse_key_list(list.expose())?,
            None => Vec::new(),
        };
        let keks = keyfile::load_kek_ring(dir, extra_keks, keys.kek_min_version)?;
        let indexer = keyfile::load_blind_indexer(dir)?;
        Ok(Self { sealing, keks, indexer })
    }
}

/// The current key ids, for log lines (ids only, never key material).
fn describe(sealing: &SealingKeyring, keks: &KekRing, indexer: &BlindIndexer) -> String {
    format!(
        "sealing key {}, key-encryption key {}, blind-index key {}",
        sealing.current().id,
        keks.current_id(),
        indexer.current_id()
    )
}

/// Reloads the keys of a running gateway from where they were loaded at start.
#[derive(Clone)]
pub struct KeyReloader {
    dir: PathBuf,
    config: KeysConfig,
    sealing: Live<SealingKeyring>,
    keks: Live<KekRing>,
    indexer: Live<BlindIndexer>,
}

impl KeyReloader {
    /// Loads every key afresh and, only if all of them load, makes them current; calls already
    /// running keep the keys they started with. On error nothing changes. Returns the new key ids.
    pub fn reload(&self) -> Result<String, StartError> {
        let LoadedKeys { sealing, keks, indexer } = LoadedKeys::load(&self.dir, &self.config)?;
        let described = describe(&sealing, &keks, &indexer);
        self.sealing.replace(sealing);
        self.keks.replace(keks);
        self.indexer.replace(indexer);
        Ok(described)
    }
}

/// A gateway ready to serve.
pub struct Gateway {
    pub app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    /// In-flight, stream and message-size bounds of the gRPC server.
    limits: server::Limits,
    shutdown_grace: Duration,
    maintenance: Maintenance,
    /// What the idgate services' health entries follow (the store answers; later: providers usable).
    readiness: Readiness,
    /// Stops background tasks (simulator, sweeper) when the gateway stops.
    stop: watch::Sender<bool>,
    /// Reloads the keys in place (`idgate serve` calls it on SIGHUP).
    pub keys: KeyReloader,
    /// Human-readable facts for the start-up banner (no secrets).
    pub notes: Vec<String>,
    /// The review-queue figures as last measured (also exported as metrics).
    pub queue_figures: Arc<QueueFigures>,
    /// Keeps the metric callbacks registered while the gateway lives.
    _queue_gauges: QueueGauges,
    _key_age_gauge: KeyAgeGauge,
    /// Keeps the breaker-state gauge registered.
    _breaker_gauge: BreakerGauge,
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// An HTTP client for provider calls: rustls with ring, trusting the operating system's root
/// certificates (none are needed for the loopback simulator).
fn provider_http_client(timeout: Duration, with_system_roots: bool) -> Result<reqwest::Client, StartError> {
    let mut roots = rustls::RootCertStore::empty();
    if with_system_roots {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(StartError::Unsupported(
                "no trusted root certificates found on this system (install ca-certificates)".into(),
            ));
        }
    }
    crate::providers::tencent::http_client(timeout, roots)
        .map_err(|e| StartError::Unsupported(format!("provider HTTP client: {e}")))
}

impl Gateway {
    /// Builds every part from `plan`. Spawns the built-in simulator if the plan asks for it.
    pub async fn build(plan: Plan, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let config = &plan.config;
        let (stop, _) = watch::channel(false);
        let mut notes = Vec::new();

        let LoadedKeys { sealing, keks, indexer } = LoadedKeys::load(&plan.keys_dir, &config.keys)?;
        notes.push(format!(
            "keys: {} ({})",
            plan.keys_dir.display(),
            describe(&sealing, &keks, &indexer)
        ));
        let (sealing, keks, indexer) = (Live::new(sealing), Live::new(keks), Live::new(indexer));
        let keys = KeyReloader {
            dir: plan.keys_dir.clone(),
            config: config.keys.clone(),
            sealing: sealing.clone(),
            keks: keks.clone(),
            indexer: indexer.clone(),
        };
        let keks_for_age = keks.clone();

        // Every store holds the review queue too: one object, seen through both interfaces.
        let redis_options = RedisOptions {
            record_ttl: Duration::from_secs(config.retention.case_record_ttl_seconds),
            // Case records carry an integrity tag under the gateway's keys (never stored in Redis).
            record_keys: Some(indexer.clone()),
            ..RedisOptions::default()
        };
        let (store, review_queue): (Arc<dyn Store>, Arc<dyn ReviewQueue>) =
            if let (Some(_), Some(_)) = (&config.store.url, &config.store.cluster_nodes) {
                return Err(ConfigError::Invalid("set store.url or store.cluster_nodes, not both".into()).into());
            } else if let Some(url) = &config.store.url {
                let redis = RedisStore::standalone(url, redis_options)
                    .await
                    .map_err(|e| StartError::Unsupported(format!("store.url {}: {e}", redact_url(url))))?;
                notes.push(format!("store: Redis {}", redact_url(url)));
                let redis = Arc::new(redis);
                (redis.clone(), redis)
            } else if let Some(nodes) = &config.store.cluster_nodes {
                let redis = RedisStore::cluster(nodes, redis_options)
                    .await
                    .map_err(|e| StartError::Unsupported(format!("store.cluster_nodes: {e}")))?;
                let shown: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
                notes.push(format!("store: Redis Cluster {}", shown.join(", ")));
                let redis = Arc::new(redis);
                (redis.clone(), redis)
            } else {
                notes.push("store: embedded (in-process); it keeps NOTHING across restarts".into());
                let memory = Arc::new(MemoryStore::new());
                (memory.clone(), memory)
            };

        let longest = match &plan.providers {
            ProviderPlan::Configured(list) => list.iter().map(|p| p.timeout_ms).max().unwrap_or(1_500),
            ProviderPlan::BuiltInSimulator => 1_500,
        };
        let http = provider_http_client(
            Duration::from_millis(longest),
            matches!(plan.providers, ProviderPlan::Configured(_)),
        )?;
        // On the process-wide meter: `serve` installs an OTLP provider there when one is configured;
        // without one the instruments cost nothing.
        let meter = opentelemetry::global::meter("idgate");
        let instruments = Instruments::new(&meter);
        let mut routes = Vec::new();
        match &plan.providers {
            ProviderPlan::BuiltInSimulator => {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|source| StartError::Io {
                        what: "provider simulator listener",
                        source,
                    })?;
                let addr = listener.local_addr().map_err(|source| StartError::Io {
                    what: "simulator",
                    source,
                })?;
                let secret_id =
                    crate::crypto::random::id("AKIDdev").map_err(|_| StartError::Unsupported("randomness".into()))?;
                let secret_key = hex::encode(
                    crate::crypto::random::bytes::<24>().map_err(|_| StartError::Unsupported("randomness".into()))?,
                );
                let sim_config = sim::SimConfig::new(secret_id.clone(), SecretKey::new(secret_key.clone()));
                let sim_clock = clock.clone();
                let sim_stop = stopped(stop.subscribe());
                tokio::spawn(async move {
                    if let Err(error) = sim::serve(listener, sim_config, sim_clock, sim_stop).await {
                        tracing::error!(%error, "built-in provider simulator stopped");
                    }
                });
                let provider = TencentFaceId::new(
                    TencentConfig {
                        name: "simulator".into(),
                        endpoint: format!("http://{addr}"),
                        secret_id,
                        secret_key: SecretKey::new(secret_key),
                        region: None,
                        timeout: Duration::from_millis(1_500),
                    },
                    http.clone(),
                    clock.clone(),
                )
                .map_err(|e| StartError::Unsupported(format!("built-in simulator provider: {e}")))?;
                routes.push(Route::new(
                    Arc::new(Traced {
                        inner: Arc::new(provider),
                        instruments: instruments.clone(),
                    }),
                    Duration::from_millis(1_500),
                    256,
                ));
                notes.push(format!("providers: built-in Tencent FaceID simulator on http://{addr}"));
            }
            ProviderPlan::Configured(list) => {
                for p in list {
                    routes.push(
                        Route::new(
                            Arc::new(Traced {
                                inner: build_provider(p, &http, &clock)?,
                                instruments: instruments.clone(),
                            }),
                            Duration::from_millis(p.timeout_ms),
                            p.max_concurrency,
                        )
                        .with_breaker(p.breaker.clone())
                        .with_rate_limit_backoff(Duration::from_millis(p.rate_limit_backoff_ms)),
                    );
                }
                let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
                notes.push(format!("providers, in order: {}", names.join(", ")));
            }
        }

        let settings = VerifySettings {
            thresholds: config.decision,
            pending_review_ttl: Duration::from_secs(config.retention.pending_review_ttl_seconds),
            processing_lease: Duration::from_millis(
                config.server.verify_deadline_ms.max(config.server.call_deadline_ms),
            ) * 3,
            limits: Limits {
                per_account_per_hour: config.limits.verifications_per_account_per_hour,
                per_id_per_day: config.limits.verifications_per_id_per_day,
                max_anchor_accounts_per_id: config.limits.max_anchor_accounts_per_id,
                anchor_binding_ttl: Duration::from_secs(config.limits.anchor_binding_ttl_seconds),
            },
            audit_ttl: Duration::from_secs(config.retention.audit_ttl_seconds),
        };
        let review = {
            let review_settings = ReviewSettings {
                lease: Duration::from_secs(config.review.lease_seconds),
                approvals_required: config.review.approvals_required,
                anchor_needs_supplement: config.review.anchor_requires_supplement,
                audit_ttl: Duration::from_secs(config.retention.audit_ttl_seconds),
                anchor_limits: settings.limits,
            };
            Arc::new(ReviewDesk::new(
                review_queue,
                store.clone(),
                keks.clone(),
                indexer.clone(),
                clock.clone(),
                review_settings,
            ))
        };
        let store_check = StoreCheck {
            store: store.clone(),
            timeout: Duration::from_millis(config.server.health_probe_timeout_ms),
        };
        let verifier = Arc::new(Verifier::new(
            store,
            Router::new(routes).with_reserve(Duration::from_millis(config.server.decide_reserve_ms)),
            keks,
            indexer,
            clock.clone(),
            settings,
        ));
        // Ready while the store answers and at least one provider's breaker lets calls through.
        let readiness = Readiness {
            checks: vec![
                Arc::new(store_check),
                Arc::new(ProvidersCheck {
                    states: {
                        let verifier = verifier.clone();
                        Arc::new(move || verifier.breaker_states())
                    },
                }),
            ],
            every: Duration::from_millis(config.server.health_probe_interval_ms),
        };
        let app = Arc::new(App {
            verifier,
            review,
            sealing,
            clock,
            verify_deadline: Duration::from_millis(config.server.verify_deadline_ms),
            call_deadline: Duration::from_millis(config.server.call_deadline_ms),
            instruments,
            revocation: Revocation::load(
                config.server.client_deny_list.as_deref(),
                Duration::from_millis(config.server.client_deny_list_poll_ms),
            )?,
        });
        let queue_figures = Arc::new(QueueFigures::default());
        let queue_gauges = register_queue_gauges(&meter, queue_figures.clone());
        let key_age_gauge = {
            let (sealing, kek_ring, clock) = (app.sealing.clone(), keks_for_age.clone(), app.clock.clone());
            register_key_age_gauge(
                &meter,
                move || sealing.load().current().created_at_unix,
                move || kek_ring.load().current_created_at(),
                move || clock.now_unix(),
            )
        };
        let breaker_gauge = {
            let verifier = app.verifier.clone();
            register_breaker_gauge(&meter, move || verifier.breaker_states())
        };
        let revocation = app.revocation.clone();
        let tls = Arc::new(tls::server_config(
            &plan.tls_cert,
            &plan.tls_key,
            &plan.client_ca,
            revocation,
        )?);
        Ok(Self {
            app,
            tls,
            handshake_timeout: Duration::from_millis(config.server.handshake_timeout_ms),
            limits: config.server.limits(),
            shutdown_grace: Duration::from_millis(config.server.shutdown_grace_ms),
            maintenance: Maintenance {
                sweep_every: Duration::from_secs(config.retention.sweep_interval_seconds),
                record_ttl: Duration::from_secs(config.retention.case_record_ttl_seconds),
                rewrap_every: Duration::from_secs(config.keys.rewrap_interval_seconds),
                queue_figures: queue_figures.clone(),
            },
            readiness,
            keys,
            queue_figures,
            _queue_gauges: queue_gauges,
            _key_age_gauge: key_age_gauge,
            _breaker_gauge: breaker_gauge,
            stop,
            notes,
        })
    }

    /// Serves on `listener` until `shutdown` resolves; then stops accepting, lets in-flight calls finish
    /// (up to the configured grace), and stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let Gateway {
            app,
            tls,
            handshake_timeout,
            limits,
            shutdown_grace,
            maintenance,
            readiness,
            stop,
            ..
        } = self;
        let sweeper = tokio::spawn(maintenance.run(app.clone(), stop.subscribe()));
        tokio::spawn(app.revocation.clone().watch(stopped(stop.subscribe())));
        let (shutdown_started_tx, shutdown_started) = watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = shutdown_started_tx.send(true);
        };
        let served = server::run(listener, tls, app, handshake_timeout, limits, readiness, shutdown);
        tokio::pin!(served);
        // After shutdown starts, in-flight calls get `shutdown_grace` to finish.
        let result = tokio::select! {
            r = &mut served => r,
            _ = async {
                stopped(shutdown_started).await;
                tokio::time::sleep(shutdown_grace).await;
            } => {
                tracing::warn!("shutdown grace period over; abandoning calls still in flight");
                Ok(())
            }
        };
        let _ = stop.send(true);
        let _ = sweeper.await;
        result
    }
}

fn build_provider(
    p: &ProviderConfig,
    http: &reqwest::Client,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<dyn Provider>, StartError> {
    match p.kind.as_str() {
        "tencent-faceid" => {
            let secret = p.resolve_secret_key()?;
            Ok(Arc::new(
                TencentFaceId::new(
                    TencentConfig {
                        name: p.name.clone(),
                        endpoint: p.endpoint.clone(),
                        secret_id: p.secret_id.clone(),
                        secret_key: SecretKey::new(secret.expose().to_owned()),
                        region: p.region.clone(),
                        timeout: Duration::from_millis(p.timeout_ms),
                    },
                    http.clone(),
                    clock.clone(),
                )
                .map_err(|e| StartError::Unsupported(format!("provider {}: {e}", p.name)))?,
            ))
        }
        "aliyun-cloudauth" => {
            let secret = p.resolve_secret_key()?;
            Ok(Arc::new(
                AliyunCloudAuth::new(
                    AliyunConfig {
                        name: p.name.clone(),
                        endpoint: p.endpoint.clone(),
                        access_key_id: p.secret_id.clone(),
                        access_key_secret: SecretKey::new(secret.expose().to_owned()),
                        scene_id: p.scene_id.clone(),
                        timeout: Duration::from_millis(p.timeout_ms),
                    },
                    http.clone(),
                    clock.clone(),
                )
                .map_err(|e| StartError::Unsupported(format!("provider {}: {e}", p.name)))?,
            ))
        }
        other => Err(StartError::Unsupported(format!(
            "provider {}: kind {other:?} is not supported (supported: tencent-faceid, aliyun-cloudauth)",
            p.name
        ))),
    }
}

/// Background upkeep of every gateway (safe to run on all of them at once: each step is idempotent).
struct Maintenance {
    /// Retention: expire pending cases whose data is due, forget old records.
    sweep_every: Duration,
    record_ttl: Duration,
    /// Key rotation: move data keys still wrapped by an older KEK to the current one.
    rewrap_every: Duration,
    /// The review-queue figures the metrics report, refreshed with every sweep.
    queue_figures: Arc<QueueFigures>,
}

/// A Redis URL without its password, for log lines.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Data keys re-wrapped per pass at most (bounded work per tick).
const REWRAP_BATCH: usize = 500;

impl Maintenance {
    async fn run(self, app: Arc<App>, stop: watch::Receiver<bool>) {
        let stopping = stopped(stop);
        tokio::pin!(stopping);
        let mut sweep = tokio::time::interval(self.sweep_every);
        let mut rewrap = tokio::time::interval(self.rewrap_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rewrap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                                _ = sweep.tick() => {
                    match app.verifier.sweep(self.record_ttl).await {
                        Ok(0) => {}
                        Ok(expired) => {
                            app.instruments.retention_expired(expired);
                            tracing::info!(expired, "retention: pending cases expired and their data destroyed")
                        }
                        Err(error) => tracing::warn!(%error, "retention sweep failed"),
                    }
                    match app.review.stats().await {
                        Ok(stats) => self.queue_figures.update(stats),
                        Err(error) => tracing::warn!(%error, "review queue figures unavailable"),
                    }
                }
                _ = rewrap.tick() => match app.verifier.rewrap_pending(REWRAP_BATCH).await {
                    Ok(0) => {}
                    Ok(moved) => tracing::info!(moved, "data keys re-wrapped to the current KEK"),
                    Err(error) => tracing::warn!(%error, "re-wrap pass failed"),
                },
                                _ = &mut stopping => return,
            }
        }
    }
}
