//! `idgate privacy report`: the data map for the privacy office, from the configuration `serve` would
//! load (defaults, the file, the `IDGATE_<SECTION>__<KEY>` environment). Reads no secret and no key
//! file, prints no secret; exit code 64 for a configuration the gateway would refuse.

use std::path::PathBuf;

use super::CliError;
use crate::config::Config;
use crate::privacy_report::DataMap;

#[derive(Debug, clap::Args)]
pub struct PrivacyArgs {
    #[command(subcommand)]
    pub action: PrivacyAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum PrivacyAction {
    /// Print what the configuration does with each category of personal data: which providers and
    /// store receive it, how it is protected, how long it lives.
    Report {
        /// The TOML file `serve --config` would read (environment `IDGATE_<SECTION>__<KEY>` overrides it).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Report as `serve --dev` would run (the built-in simulator when no provider is configured).
        #[arg(long)]
        dev: bool,
        #[arg(long, value_enum, default_value = "markdown")]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

pub fn run(args: PrivacyArgs) -> Result<(), CliError> {
    match args.action {
        PrivacyAction::Report { config, dev, format } => {
            let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
            let config = Config::load(config.as_deref()).map_err(|e| usage(&e))?;
            let map = DataMap::new(&config, dev).map_err(|e| usage(&e))?;
            match format {
                Format::Markdown => print!("{}", map.to_markdown()),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&map).map_err(|e| CliError::Other(e.into()))?
                ),
            }
            Ok(())
        }
    }
}
