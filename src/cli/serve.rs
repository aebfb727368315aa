//! `idgate serve`: the gateway. Graceful shutdown on SIGTERM / Ctrl-C; SIGHUP reloads the keys and
//! the client-certificate deny list.
//!
//! It must never be ended by a SIGHUP: the handler is installed before anything else (start-up —
//! keys, Redis, providers — can take a while, and SIGHUP's default action ends the process); a
//! hang-up during start-up reloads once the gateway is up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::CliError;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat};
use crate::gateway::{Gateway, Plan, StartError};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Quickstart: embedded store, built-in provider simulator, dev PKI and keys created in --dev-dir
    /// if missing. Fills in only what the configuration leaves out.
    #[arg(long)]
    pub dev: bool,
    /// TOML configuration file (environment `IDGATE_<SECTION>__<KEY>` overrides it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default with --dev: 127.0.0.1:50051).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where --dev keeps its certificates and keys.
    #[arg(long, default_value = "certs/dev")]
    pub dev_dir: PathBuf,
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let hangups = Hangups::listen();
    let config = Config::load(args.config.as_deref()).map_err(usage)?;
    let telemetry = crate::telemetry::init(
        config.telemetry.log_format == Some(LogFormat::Json),
        config.telemetry.otlp_endpoint.as_deref(),
    )
    .map_err(CliError::Usage)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plan = if args.dev {
        Plan::dev(config, args.listen, &args.dev_dir, clock.now_unix())
    } else {
        Plan::production(config, args.listen)
    }
    .map_err(usage)?;
    let listen = plan.listen;
    let dev_pki = plan.dev_pki.clone();
    let gateway = Gateway::build(plan, clock).await.map_err(|e| match e {
        StartError::Io { .. } => CliError::Other(e.into()),
        other => usage(other),
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| CliError::Other(e.into()))?;

    for note in &gateway.notes {
        tracing::info!("{note}");
    }
    tracing::info!(%bound, "idgate listening (TLS 1.3, client certificates required)");
    if let Some(pki) = dev_pki {
        let dir = pki.dir.display();
        println!("idgate (dev mode) listening on {bound}");
        println!(
            "  dev certificates: {dir}  (ca.pem, server.pem, onboarding.pem, reviewer-1.pem, reviewer-2.pem, admin.pem)"
        );
        println!("  the embedded store keeps NOTHING across restarts");
        println!("Try it (another terminal):");
        println!(
            "  cargo run -- verify --target {bound} --certs {dir} --purpose short-video --name 张三 --id-number 11010519491231002X"
        );
    }
    let reload = tokio::spawn(reload_on_hangup(
        hangups,
        gateway.keys.clone(),
        gateway.app.revocation.clone(),
    ));
    let served = gateway.serve(listener, shutdown_signal()).await;
    reload.abort();
    // Sends the last spans and figures; a collector that is gone or hung must not keep us from
    // exiting. A plain thread, not `spawn_blocking`: the runtime waits for its blocking tasks when it
    // shuts down, and would wait for a hung export too.
    let (flushed_tx, flushed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        telemetry.shutdown();
        let _ = flushed_tx.send(());
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), flushed).await;
    served.map_err(|e| CliError::Other(e.into()))?;
    tracing::info!("idgate stopped");
    Ok(())
}

/// SIGHUPs, caught from the first line of `serve` on (instead of their default action, which ends
/// the process); those that arrive during start-up wait for [`reload_on_hangup`].
struct Hangups {
    #[cfg(unix)]
    signal: std::io::Result<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn listen() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()),
        }
    }
}

/// On every SIGHUP (one that came during start-up included): reloads sealing keys, KEKs and
/// blind-index keys, then the deny list. A set that does not load (a malformed or too-open key
/// file, a missing kind, a bad deny-list line) is refused with one log line; what is in use stays.
/// Keys and deny list are independent of each other.
async fn reload_on_hangup(
    hangups: Hangups,
    keys: crate::gateway::KeyReloader,
    revocation: crate::transport::revocation::Revocation,
) {
    #[cfg(unix)]
    {
        let mut hangups = match hangups.signal {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP: keys reload only on restart");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match keys.reload() {
                Ok(current) => tracing::info!("SIGHUP: keys reloaded ({current})"),
                Err(error) => tracing::error!(%error, "SIGHUP: key reload refused; the keys in use stay"),
            }
            match revocation.reload() {
                Ok(None) => {}
                Ok(Some(current)) => tracing::info!("SIGHUP: deny list reloaded ({current})"),
                Err(error) => tracing::error!(%error, "SIGHUP: deny list refused; the list in use stays"),
            }
        }
    }
    #[cfg(not(unix))]
    drop((hangups, keys, revocation));
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: no new connections; finishing calls in flight");
}
