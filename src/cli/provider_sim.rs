//! `idgate provider-sim`: the provider simulator (Tencent FaceID or Alibaba Cloud ID Verification
//! protocol, docs/api.md §5) as its own process, with fault injection. Faults can also be changed while
//! it runs: `POST /_sim/faults` with a JSON body of the same names (loopback only), and
//! `GET /_sim/stats` counts requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::CliError;
use crate::clock::SystemClock;
use crate::providers::credentials::SecretKey;
use crate::providers::sim;

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
    /// Which vendor protocol to speak: tencent or aliyun.
    #[arg(long, value_enum, default_value_t = sim::Protocol::Tencent)]
    pub protocol: sim::Protocol,
    /// Added latency per answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Plus a uniformly drawn 0..=N milliseconds per answer.
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Share of requests (0–1) answered with the vendor's internal error, whatever the test data says.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Share of requests (0–1) that never get an answer.
    #[arg(long, default_value_t = 0.0)]
    pub hang_rate: f64,
    /// Share of requests (0–1) answered HTTP 503 with an HTML body.
    #[arg(long, default_value_t = 0.0)]
    pub http_5xx_rate: f64,
    /// Share of requests (0–1) answered with a truncated JSON body.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Share of requests (0–1) refused as badly signed.
    #[arg(long, default_value_t = 0.0)]
    pub bad_signature_rate: f64,
    /// Share of requests (0–1) answered with the vendor's rate-limit code.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Business answers per day before the vendor's quota code.
    #[arg(long)]
    pub daily_cap: Option<u64>,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
    let faults = sim::Faults {
        latency_ms: args.latency_ms,
        latency_jitter_ms: args.latency_jitter_ms,
        hang_rate: args.hang_rate,
        http_5xx_rate: args.http_5xx_rate,
        malformed_rate: args.malformed_rate,
        bad_signature_rate: args.bad_signature_rate,
        rate_limit_rate: args.rate_limit_rate,
        error_rate: args.fault_rate,
        daily_cap: args.daily_cap,
    };
    let control = sim::SimControl::new(faults).map_err(|e| CliError::Usage(format!("faults: {e}")))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let secret = SecretKey::new(secret);
    let (config, vendor) = if args.protocol == sim::Protocol::Aliyun {
        (
            sim::SimConfig::aliyun(args.secret_id.clone(), secret),
            "Alibaba Cloud ID Verification",
        )
    } else {
        (sim::SimConfig::new(args.secret_id.clone(), secret), "Tencent FaceID")
    };
    let config = sim::SimConfig {
        seed: args.seed,
        control,
        ..config
    };
    // The bound address, so that `--listen 127.0.0.1:0` tells its caller which port it got.
    let bound = listener.local_addr().unwrap_or(args.listen);
    println!("provider simulator ({vendor} protocol) on http://{bound}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    sim::serve(listener, config, Arc::new(SystemClock), shutdown)
        .await
        .context("simulator")?;
    Ok(())
}
