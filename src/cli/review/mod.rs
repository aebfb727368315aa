//! `idgate review`: the review console, for a human at a terminal ([`terminal`]) or in a browser
//! ([`web`], `--web`), and what both share ([`session`]: the reviewer's key file, claiming and opening
//! a case, the signals that end a console). The arrows point one way: each console uses the session,
//! neither the other.
//!
//! Both consoles must never leave decrypted case material behind when they end, nor log it.

pub mod session;
pub mod terminal;
pub mod web;

use std::path::PathBuf;

use super::CliError;

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
    pub tls: super::TlsNameArg,
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
    pub web_args: web::WebArgs,
}

/// What a console says where the face would be when the case holds none.
pub const NO_FACE_NOTE: &str = "(no face: document review; decide from the ID card and handheld photos)";

/// Runs the console `args` asks for: in the browser with `--web`, else on the terminal.
pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
    if args.web_args.web {
        web::run(args).await
    } else {
        terminal::run(args).await
    }
}
