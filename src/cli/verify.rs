//! `idgate verify`: seals one identity to the gateway's current key and sends it.
//!
//! A tool for trying the gateway out and for scripts. Flags on a command line can end up in shell
//! history: use test identities, not real ones.

use std::path::PathBuf;

use anyhow::Context as _;

use super::CliError;
use super::refused;
use crate::client::{connect_named, sealed_verify_request};
use crate::domain::IdentityFields;
use crate::material;
use crate::pb;
use crate::pb::verification_service_client::VerificationServiceClient;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PurposeArg {
    ShortVideo,
    Radio,
    Anchor,
}

impl PurposeArg {
    pub fn to_pb(self) -> pb::Purpose {
        match self {
            PurposeArg::ShortVideo => pb::Purpose::ShortVideo,
            PurposeArg::Radio => pb::Purpose::Radio,
            PurposeArg::Anchor => pb::Purpose::Anchor,
        }
    }
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
    #[command(flatten)]
    pub tls: super::TlsNameArg,
    /// A directory laid out like `dev-certs` output; the onboarding certificate is used.
    #[arg(long, default_value = "certs/dev")]
    pub certs: PathBuf,
    #[arg(long, value_enum, default_value = "short-video")]
    pub purpose: PurposeArg,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub id_number: String,
    #[arg(long, default_value = "")]
    pub phone: String,
    /// Face photo (JPEG or PNG); required for anchor.
    #[arg(long)]
    pub face: Option<PathBuf>,
    #[arg(long)]
    pub id_card_front: Option<PathBuf>,
    #[arg(long)]
    pub id_card_back: Option<PathBuf>,
    #[arg(long)]
    pub handheld_id_photo: Option<PathBuf>,
    #[arg(long, default_value = "demo-account")]
    pub account_id: String,
    /// Idempotency key; a fresh one by default.
    #[arg(long)]
    pub request_id: Option<String>,
    /// The privacy policy version the user consented to.
    #[arg(long, default_value = "2026-01")]
    pub policy_version: String,
    /// The policy version of the user's separate consent to face processing (anchor face
    /// recognition needs it); empty: none given.
    #[arg(long, default_value = "2026-01")]
    pub biometric_policy_version: String,
    /// Anchor only: ask for document review (ID card front, back, handheld photo) instead of face
    /// recognition; no face is sent to any provider.
    #[arg(long)]
    pub document_review: bool,
    /// Keep watching a pending case until it reaches a final status.
    #[arg(long)]
    pub watch: bool,
}

// Hand-written so that `--name` and `--id-number` never reach a log through `Debug`.
impl std::fmt::Debug for VerifyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyArgs")
            .field("target", &self.target)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

fn read_image(path: &Option<PathBuf>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())),
        None => Ok(Vec::new()),
    }
}

pub async fn run(args: VerifyArgs) -> Result<(), CliError> {
    let channel = connect_named(&args.target, args.tls.tls_name.as_deref(), &args.certs, "onboarding").await?;
    let mut client = VerificationServiceClient::new(channel).max_decoding_message_size(1 << 20);
    let key = client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .context("GetSealingKey")?
        .into_inner();

    let mut fields = IdentityFields::default();
    fields.name = args.name.clone();
    fields.id_number = args.id_number.clone();
    fields.phone = args.phone.clone();
    fields.face_image = read_image(&args.face)?;
    fields.id_card_front = read_image(&args.id_card_front)?;
    fields.id_card_back = read_image(&args.id_card_back)?;
    fields.handheld_id_photo = read_image(&args.handheld_id_photo)?;
    let plaintext = material::encode_fields(&fields);
    drop(fields);

    let request_id = match &args.request_id {
        Some(id) => id.clone(),
        None => crate::crypto::random::id("req-").context("randomness")?,
    };
    let now = crate::clock::Clock::now_unix(&crate::clock::SystemClock);
    let consent = pb::Consent {
        policy_version: args.policy_version.clone(),
        granted_at_unix: now,
        biometric: (!args.biometric_policy_version.is_empty()).then(|| pb::BiometricConsent {
            policy_version: args.biometric_policy_version.clone(),
            granted_at_unix: now,
        }),
    };
    let mut request = sealed_verify_request(
        &key,
        args.purpose.to_pb(),
        args.account_id.clone(),
        request_id,
        consent,
        &plaintext,
    )
    .context("sealing to the gateway key")?;
    request.document_review = args.document_review;
    let answer = client.verify(request).await.map_err(refused)?.into_inner();
    print_answer(&answer);
    if args.watch && answer.status == pb::Status::PendingReview as i32 {
        let mut stream = client
            .watch_verification(pb::GetVerificationRequest {
                verification_id: answer.verification_id.clone(),
            })
            .await
            .context("WatchVerification")?
            .into_inner();
        while let Some(update) = stream.message().await.context("WatchVerification")? {
            print_answer(&update);
        }
    }
    Ok(())
}

fn print_answer(answer: &pb::VerifyResponse) {
    let status = pb::Status::try_from(answer.status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    println!(
        "verification_id={} status={status} verified={}",
        answer.verification_id, answer.verified
    );
}
