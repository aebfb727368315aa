//! Assembling a gateway from configuration, one named step per room: keys (`keys`), store
//! (`crate::store::setup`), providers (`crate::providers::setup`, or the simulator `--dev` starts in
//! `crate::providers::sim::dev`), use cases (`use_cases`), what operators watch (`observe`),
//! background upkeep (`maintenance`) and the TLS server. `idgate serve` and the end-to-end tests
//! both start here; `plan` fills in the dev-mode defaults (docs/api.md §6).
//!
//! It must never hold a business rule, nor start with a setting it had to guess outside `--dev`.

mod keys;
mod maintenance;
mod observe;
mod plan;
mod use_cases;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use keys::KeyReloader;
use maintenance::Maintenance;
use observe::Gauges;
pub use plan::{DEV_LISTEN, Plan, ProviderPlan, StartError};

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::metrics::{Instruments, QueueFigures};
use crate::transport::readiness::Readiness;
use crate::transport::revocation::Revocation;
use crate::transport::services::App;
use crate::transport::{server, tls};

/// A gateway ready to serve.
pub struct Gateway {
    pub app: Arc<App>,
    serving: Serving,
    maintenance: Maintenance,
    /// Stops background tasks (simulator, maintenance) when the gateway stops.
    stop: watch::Sender<bool>,
    /// Reloads the keys in place (`idgate serve` calls it on SIGHUP).
    pub keys: KeyReloader,
    /// Human-readable facts for the start-up banner (no secrets).
    pub notes: Vec<String>,
    /// The review-queue figures as last measured (also exported as metrics).
    pub queue_figures: Arc<QueueFigures>,
    /// Keeps the metric callbacks registered while the gateway lives.
    _gauges: Gauges,
}

/// How the gRPC server runs.
struct Serving {
    tls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    /// In-flight, stream and message-size bounds of the gRPC server.
    limits: server::Limits,
    shutdown_grace: Duration,
    /// What the idgate services' health entries follow.
    readiness: Readiness,
}

impl Serving {
    /// The server step: TLS 1.3 with client certificates, and the server's bounds, from `plan`.
    /// Client certificates on `revocation`'s deny list are refused at the handshake.
    fn new(plan: &Plan, readiness: Readiness, revocation: Revocation) -> Result<Self, StartError> {
        let server = &plan.config.server;
        Ok(Self {
            tls: Arc::new(tls::server_config(
                &plan.tls_cert,
                &plan.tls_key,
                &plan.client_ca,
                revocation,
            )?),
            handshake_timeout: server.handshake_timeout_ms,
            limits: server_limits(server),
            shutdown_grace: server.shutdown_grace_ms,
            readiness,
        })
    }
}

/// The transport's bounds from the `[server]` settings.
pub fn server_limits(server: &ServerConfig) -> server::Limits {
    server::Limits {
        max_in_flight_verify: server.max_in_flight_verify,
        max_in_flight_supplement: server.max_in_flight_supplement,
        shed_retry_after: server.shed_retry_after_ms,
        shed_retry_after_max: server.shed_retry_after_max_ms,
        max_concurrent_streams: server.max_concurrent_streams,
        http2_stream_window_bytes: server.http2_stream_window_bytes,
        http2_connection_window_bytes: server.http2_connection_window_bytes,
        max_verification_message_bytes: server.max_verification_message_bytes,
        max_review_message_bytes: server.max_review_message_bytes,
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Gateway {
    /// Builds every part from `plan`. Spawns the built-in simulator if the plan asks for it.
    pub async fn build(plan: Plan, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let config = &plan.config;
        let (stop, _) = watch::channel(false);
        let mut notes = Vec::new();
        let keys = keys::load(&plan.keys_dir, config, &clock, &mut notes)?;
        let record_ttl = config.retention.case_record_ttl_seconds;
        let stores = crate::store::setup::connect(&config.store, record_ttl, &keys.indexer, &mut notes).await?;
        // On the process-wide meter: `serve` installs an OTLP provider there when one is configured;
        // without one the instruments cost nothing.
        let meter = opentelemetry::global::meter("idgate");
        let instruments = Instruments::new(&meter);
        let until_stopped = stopped(stop.subscribe());
        let routes = plan
            .providers
            .start(&clock, &instruments, until_stopped, &mut notes)
            .await?;
        let use_cases = use_cases::assemble(config, &keys, &stores, routes, &clock);
        let queue_figures = Arc::new(QueueFigures::default());
        let gauges = Gauges::register(&meter, &queue_figures, &keys, &use_cases.verifier, &clock);
        let readiness = observe::readiness(&config.server, &stores.store, &use_cases.verifier);
        let revocation = Revocation::load(
            config.server.client_deny_list.as_deref(),
            config.server.client_deny_list_poll_ms,
        )?;
        let serving = Serving::new(&plan, readiness, revocation.clone())?;
        Ok(Self {
            app: Arc::new(use_cases.app(config, &keys, &clock, &instruments, revocation)),
            serving,
            maintenance: Maintenance::new(config, &use_cases, &queue_figures, &instruments),
            stop,
            keys: keys.reloader,
            notes,
            queue_figures,
            _gauges: gauges,
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
            serving:
                Serving {
                    tls,
                    handshake_timeout,
                    limits,
                    shutdown_grace,
                    readiness,
                },
            maintenance,
            stop,
            ..
        } = self;
        let sweeper = tokio::spawn(maintenance.run(stop.subscribe()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Configuration writes the transport's and the router's defaults out as plain settings: they
    /// must stay the same values.
    #[test]
    fn the_configured_server_defaults_are_the_transports_and_routers_own() {
        let settings = ServerConfig::default();
        assert_eq!(server_limits(&settings), server::Limits::default());
        assert_eq!(
            settings.min_provider_budget_ms,
            crate::providers::router::DEFAULT_MIN_PROVIDER_BUDGET
        );
    }
}
