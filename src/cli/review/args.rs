//! The flags of `idgate review` (terminal and `--web`): what both consoles and their session read.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DecisionArg {
    Approve,
    Reject,
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
    #[command(flatten)]
    pub tls: crate::cli::TlsNameArg,
    /// A directory laid out like `dev-certs` output.
    #[arg(long, default_value = "certs/dev")]
    pub certs: PathBuf,
    /// Which certificate in --certs to use (its CN is your principal).
    #[arg(long = "as", default_value = "reviewer-1")]
    pub identity: String,
    /// The reviewer's X25519 key file (created on first use, mode 0600). Default: <certs>/<as>.review-key
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Decide without asking (for scripts).
    #[arg(long, value_enum, requires = "reason")]
    pub decide: Option<DecisionArg>,
    /// Reason code for --decide (A-Z, 0-9, _).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only print the queue figures.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub web_args: WebArgs,
}

/// Flags of `idgate review --web`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebArgs {
    /// Serve the review console to a browser instead of the terminal.
    #[arg(long)]
    pub web: bool,
    /// Where the web console listens. Default: a free port on 127.0.0.1.
    #[arg(long, requires = "web")]
    pub listen: Option<SocketAddr>,
    /// Allow --listen on a non-loopback address (case material then crosses the network in the clear).
    #[arg(long, requires = "web")]
    pub allow_remote: bool,
}
