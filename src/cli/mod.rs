//! The `idgate` command line: one file per subcommand. Each parses its flags and calls the library.

pub mod client;
pub mod config_cmd;
pub mod consent;
pub mod dev_certs;
pub mod keys;
pub mod loadtest;
pub mod privacy;
pub mod provider_sim;
pub mod review;
pub mod review_web;
pub mod serve;
pub mod verify;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "idgate",
    version,
    about = "Real-name identity verification gateway: sealed PII in, a verified flag out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (`--dev`: embedded store, built-in provider simulator, dev certificates and keys).
    Serve(serve::ServeArgs),
    /// Write a development PKI: CA, server and role client certificates.
    DevCerts(dev_certs::DevCertsArgs),
    /// Generate and rotate sealing keys and key-encryption keys.
    Keys(keys::KeysArgs),
    /// Seal and send one verification (a client for trying the gateway out).
    Verify(verify::VerifyArgs),
    /// The review console: claim the next case, see it (decrypted with your own key), decide.
    Review(review::ReviewArgs),
    /// Run the Tencent FaceID protocol simulator.
    ProviderSim(provider_sim::ProviderSimArgs),
    /// Check a configuration file without starting, or print a commented example.
    Config(config_cmd::ConfigArgs),
    /// Drive Verify at a rate or concurrency with sealed synthetic payloads; optionally against a bare
    /// echo baseline in the same run.
    Loadtest(loadtest::LoadtestArgs),
    /// The data map for the privacy office: what the configuration does with personal data.
    Privacy(privacy::PrivacyArgs),
    /// An applicant's consent withdrawal, sent as the onboarding client (`consent withdraw`).
    Consent(consent::ConsentArgs),
}

/// How a subcommand failed: bad usage or configuration (exit 64), or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 64,
            CliError::Other(_) => 1,
        }
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::DevCerts(args) => dev_certs::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Verify(args) => verify::run(args).await,
        Command::ProviderSim(args) => provider_sim::run(args).await,
        Command::Review(args) => review::run(args).await,
        Command::Config(args) => config_cmd::run(args),
        Command::Loadtest(args) => loadtest::run(args).await,
        Command::Privacy(args) => privacy::run(args),
        Command::Consent(args) => consent::run(args).await,
    }
}
