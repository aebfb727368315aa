//! `idgate consent withdraw`: withdraws an applicant's consent for the pending cases the onboarding
//! client created for an account (`WithdrawConsent`), all of it or only the biometric part.
//!
//! A tool for operators and scripts acting for the app's onboarding backend; it sends an account id
//! only and prints how many cases changed.

use std::path::PathBuf;

use super::CliError;
use super::refused;
use crate::client::connect_named;
use crate::pb;
use crate::pb::verification_service_client::VerificationServiceClient;

#[derive(Debug, clap::Args)]
pub struct ConsentArgs {
    #[command(subcommand)]
    pub action: ConsentAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConsentAction {
    /// Withdraw consent: erase the account's pending cases, or with `--biometric-only` destroy only
    /// their faces (the cases go on to document review).
    Withdraw {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:50051")]
        target: String,
        #[command(flatten)]
        tls: super::TlsNameArg,
        /// A directory laid out like `dev-certs` output; the onboarding certificate is used.
        #[arg(long, default_value = "certs/dev")]
        certs: PathBuf,
        /// The account whose consent is withdrawn.
        #[arg(long)]
        account: String,
        /// Withdraw only the consent to face processing.
        #[arg(long)]
        biometric_only: bool,
    },
}

pub async fn run(args: ConsentArgs) -> Result<(), CliError> {
    let ConsentAction::Withdraw {
        target,
        tls,
        certs,
        account,
        biometric_only,
    } = args.action;
    let channel = connect_named(&target, tls.tls_name.as_deref(), &certs, "onboarding").await?;
    let scope = if biometric_only {
        pb::ConsentScope::BiometricOnly
    } else {
        pb::ConsentScope::All
    };
    let answer = VerificationServiceClient::new(channel)
        .withdraw_consent(pb::WithdrawConsentRequest {
            account_id: account,
            scope: scope as i32,
        })
        .await
        .map_err(refused)?
        .into_inner();
    println!("scope={} cases_changed={}", scope.as_str_name(), answer.cases_changed);
    Ok(())
}
