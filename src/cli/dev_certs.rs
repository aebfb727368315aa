//! `idgate dev-certs`: writes the development PKI of docs/api.md §3.

use std::path::PathBuf;

use super::CliError;
use crate::pki;

#[derive(Debug, clap::Args)]
pub struct DevCertsArgs {
    /// Directory to write into.
    #[arg(long, default_value = "certs/dev")]
    pub out: PathBuf,
    /// Replace an existing development PKI.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: DevCertsArgs) -> Result<(), CliError> {
    let pki = pki::generate_dev_pki(&args.out, args.force).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("development PKI written to {}", pki.dir.display());
    println!("  ca.pem                 CA certificate (clients and server trust it)");
    println!("  server.pem/.key        server, SAN localhost and 127.0.0.1");
    for (stem, role, principal) in pki::DEV_CLIENTS {
        println!(
            "  {:<22} client, role (OU) {role}, principal (CN) {principal}",
            format!("{stem}.pem/.key")
        );
    }
    println!("Private keys are readable by you only. Never commit them.");
    Ok(())
}
