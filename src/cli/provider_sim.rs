//! `idgate provider-sim`: the Tencent FaceID protocol simulator as its own process (API.md §5).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::CliError;
use crate::clock::SystemClock;
use crate::providers::sim;
use crate::providers::tencent::SecretKey;

#[derive(Debug, clap::Args)]
pub struct ProviderSimArgs {
    /// Address to listen on (plain HTTP; put it on loopback).
    #[arg(long, default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,
    /// The SecretId clients must sign with.
    #[arg(long, default_value = "AKIDsimulator")]
    pub secret_id: String,
    /// File holding the SecretKey clients must sign with (or env IDGATE_SIM_SECRET_KEY).
    #[arg(long)]
    pub secret_key_file: Option<PathBuf>,
    /// Added latency per answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests (0–1) answered with an internal error, whatever the test data says.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
}

pub async fn run(args: ProviderSimArgs) -> Result<(), CliError> {
    let _telemetry = crate::telemetry::init(false, None).map_err(CliError::Usage)?;
    let secret = match (&args.secret_key_file, std::env::var("IDGATE_SIM_SECRET_KEY")) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim_end()
            .to_owned(),
        (None, Ok(value)) => value,
        (None, Err(_)) => {
            return Err(CliError::Usage(
                "a secret key is required: --secret-key-file or IDGATE_SIM_SECRET_KEY".into(),
            ));
        }
    };
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(CliError::Usage("--fault-rate must be between 0 and 1".into()));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let config = sim::SimConfig {
        secret_id: args.secret_id.clone(),
        secret_key: SecretKey::new(secret),
        latency: Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        max_skew_seconds: 300,
        seed: 0,
    };
    println!("provider simulator (Tencent FaceID protocol) on http://{}", args.listen);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    sim::serve(listener, config, Arc::new(SystemClock), shutdown)
        .await
        .context("simulator")?;
    Ok(())
}
