//! `idgate loadtest`: parses the flags of docs/api.md §6 (and a few more) and runs [`crate::loadtest`].
//!
//! Prints the report to stdout, writes `--json` / `--html` if asked. Never prints a synthetic identity.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::CliError;
use crate::loadtest::payload::Mix;
use crate::loadtest::{self, Load, Options};
use crate::pb;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LoadPurpose {
    Anchor,
    ShortVideo,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("load").required(true).args(["rate", "concurrency"])))]
pub struct LoadtestArgs {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
    #[command(flatten)]
    pub tls: super::TlsNameArg,
    /// Run against a gateway whose certificate the idgate development CA did not issue (by default the
    /// tool refuses: its synthetic identities would reach real providers and the review queue).
    #[arg(long)]
    pub production_i_know: bool,
    /// A directory laid out like `dev-certs` output; the onboarding certificate is used (and, with
    /// --baseline, server.pem / server.key serve the echo).
    #[arg(long, default_value = "certs/dev")]
    pub certs: PathBuf,
    #[arg(long, value_enum, default_value = "anchor")]
    pub purpose: LoadPurpose,
    /// Size of the face JPEG in KiB (0: none). Default: 200 for anchor, 0 for short-video.
    #[arg(long)]
    pub image_kb: Option<usize>,
    /// Open loop: requests per second, sent on schedule; latency counts from the intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: this many callers, each sending when its previous call is answered.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Also measure, first, a bare echo of the same message size on the same TLS and server stack,
    /// started on loopback; report `throughput_ratio`.
    #[arg(long)]
    pub baseline: bool,
    /// HTTP/2 connections to spread the calls over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Per-call gRPC deadline, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Simulator outcomes by weight: verified:not_verified:review.
    #[arg(long, default_value = "90:5:5")]
    pub mix: Mix,
    /// Share of calls (0–1) that are GetVerification of an earlier answer.
    #[arg(long, default_value_t = 0.0)]
    pub get_ratio: f64,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report (latency distribution, throughput and p99 over time).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// MiB of prepared requests the tool may hold.
    #[arg(long, default_value_t = 256)]
    pub pool_mb: usize,
    /// Threads sealing requests into the pool (one ran dry at about 2 500 small requests/s on a shared
    /// 2-core machine).
    #[arg(long, default_value_t = 2)]
    pub pool_threads: usize,
    /// Open loop: most calls in flight at once.
    #[arg(long, default_value_t = 2000)]
    pub max_in_flight: usize,
    /// Closed loop: resend a shed call at once instead of waiting the delay the gateway's RetryInfo
    /// suggests (what a client that ignores the hint does).
    #[arg(long, conflicts_with = "rate")]
    pub ignore_retry_info: bool,
}

fn seconds(flag: &str, s: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s).map_err(|_| CliError::Usage(format!("--{flag} must be a number of seconds ≥ 0")))
}

impl LoadtestArgs {
    pub fn options(&self) -> Result<Options, CliError> {
        let load = match (self.rate, self.concurrency) {
            (Some(r), None) => Load::Rate(r),
            (None, Some(c)) => Load::Concurrency(c),
            _ => return Err(CliError::Usage("give one of --rate or --concurrency".into())),
        };
        let (purpose, default_kb) = match self.purpose {
            LoadPurpose::Anchor => (pb::Purpose::Anchor, 200),
            LoadPurpose::ShortVideo => (pb::Purpose::ShortVideo, 0),
        };
        Ok(Options {
            target: self.target.clone(),
            tls_name: self.tls.tls_name.clone(),
            production_i_know: self.production_i_know,
            certs: self.certs.clone(),
            purpose,
            image_bytes: self.image_kb.unwrap_or(default_kb) * 1024,
            load,
            duration: seconds("duration", self.duration)?,
            warmup: seconds("warmup", self.warmup)?,
            connections: self.connections,
            timeout: seconds("timeout", self.timeout)?,
            mix: self.mix,
            get_ratio: self.get_ratio,
            baseline: self.baseline,
            progress: std::io::stderr().is_terminal(),
            pool_bytes: self.pool_mb.saturating_mul(1024 * 1024),
            pool_threads: self.pool_threads,
            max_in_flight: self.max_in_flight,
            honour_retry_info: !self.ignore_retry_info,
        })
    }
}

pub async fn run(args: LoadtestArgs) -> Result<(), CliError> {
    let options = args.options()?;
    let report = loadtest::run(&options)
        .await
        .map_err(|e| match e.downcast::<loadtest::NotDevelopment>() {
            Ok(refusal) => CliError::Usage(refusal.to_string()),
            Err(e) => CliError::Other(e),
        })?;
    print!("{}", report.text());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("encoding the JSON report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, loadtest::report::html(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
