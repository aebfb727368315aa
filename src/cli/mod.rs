//! The `idgate` command line: one file per subcommand. Each parses its flags and calls the library
//! (the client tools connect through [`crate::client`]).
//!
//! Nothing outside this folder and `main.rs` imports it. The tools beside the gateway (`review`,
//! `loadtest`, `provider-sim`, `dev-certs`) are built with the `tools` feature (on by default).

pub mod config_cmd;
pub mod consent;
#[cfg(feature = "tools")]
pub mod dev_certs;
pub mod keys;
#[cfg(feature = "tools")]
pub mod loadtest;
pub mod privacy;
#[cfg(feature = "tools")]
pub mod provider_sim;
#[cfg(feature = "tools")]
pub mod review;
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

// One value per process: its size does not matter (and which variant is largest depends on `tools`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (`--dev`: embedded store, built-in provider simulator, dev certificates and keys).
    Serve(serve::ServeArgs),
    /// Write a development PKI: CA, server and role client certificates.
    #[cfg(feature = "tools")]
    DevCerts(dev_certs::DevCertsArgs),
    /// Generate and rotate sealing keys and key-encryption keys.
    Keys(keys::KeysArgs),
    /// Seal and send one verification (a client for trying the gateway out).
    Verify(verify::VerifyArgs),
    /// The review console: claim the next case, see it (decrypted with your own key), decide.
    #[cfg(feature = "tools")]
    Review(review::ReviewArgs),
    /// Run the provider simulator: the Tencent FaceID or the Alibaba Cloud ID Verification protocol
    /// (`--protocol`), with fault injection.
    #[cfg(feature = "tools")]
    ProviderSim(provider_sim::ProviderSimArgs),
    /// Check a configuration file without starting, or print a commented example.
    Config(config_cmd::ConfigArgs),
    /// Drive Verify at a rate or concurrency with sealed synthetic payloads; optionally against a bare
    /// echo baseline in the same run.
    #[cfg(feature = "tools")]
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

/// `--tls-name`, shared by every client tool.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsNameArg {
    /// The name the gateway's certificate must carry. Default: the host of --target (a name, or an IP
    /// address, which the certificate must then list as an IP address).
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,
}

/// A refused call as a command-line error: its code, message and reason (never input: answers carry
/// none).
pub fn refused(status: tonic::Status) -> CliError {
    let reason = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.reason);
    CliError::Other(anyhow::anyhow!(
        "{:?}: {} (reason {})",
        status.code(),
        status.message(),
        reason.as_deref().unwrap_or("-")
    ))
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        #[cfg(feature = "tools")]
        Command::DevCerts(args) => dev_certs::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Verify(args) => verify::run(args).await,
        #[cfg(feature = "tools")]
        Command::ProviderSim(args) => provider_sim::run(args).await,
        #[cfg(feature = "tools")]
        Command::Review(args) => review::run(args).await,
        Command::Config(args) => config_cmd::run(args),
        #[cfg(feature = "tools")]
        Command::Loadtest(args) => loadtest::run(args).await,
        Command::Privacy(args) => privacy::run(args),
        Command::Consent(args) => consent::run(args).await,
    }
}
