//! `idgate review`: the reference review console, for a human at a terminal (or a script).
//!
//! The reviewer's X25519 key lives in a file created on first use (mode 0600) and never leaves this
//! machine; the gateway only ever sends case material sealed to it. Decrypted images are written to
//! a private temporary directory (0700, files 0600) for an image viewer, and overwritten and removed
//! after the decision, on Ctrl-C, SIGTERM or SIGHUP (the terminal closed), on the end of stdin, or on
//! any error; in each of those cases but a decision the case is released to the queue at once. Nothing
//! personal is logged. `--web` serves the same console to a browser instead (`review_web`), with the
//! material in memory only.
//!
//! It must never leave decrypted images behind when it ends by any of those ways, nor spin on a closed
//! stdin.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::CliError;
use crate::client::connect_named;
use crate::crypto::SecretKey32;
use crate::crypto::keyfile::{create_private_dir, write_private_file};
use crate::crypto::sealing::{Context, OpeningKey};
use crate::pb;
use crate::pb::review_service_client::ReviewServiceClient;

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
    pub web_args: super::review_web::WebArgs,
}

/// Loads the reviewer key, creating it (0600) on first use.
pub(super) fn reviewer_key(path: &Path) -> anyhow::Result<OpeningKey> {
    if !path.exists() {
        let secret = SecretKey32::random().context("randomness")?;
        let text = zeroize::Zeroizing::new(hex::encode(secret.expose()));
        write_private_file(path, text.as_bytes()).context("creating the reviewer key file")?;
        eprintln!("created reviewer key {}", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} can be read by other users; chmod 600 it",
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).context("reading the reviewer key")?);
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| anyhow::anyhow!("malformed reviewer key file"))?;
    Ok(OpeningKey::from_secret(&SecretKey32::from_bytes(*bytes)))
}

/// A private directory whose files are overwritten and removed (with it) when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> anyhow::Result<Self> {
        let name = crate::crypto::random::id("idgate-review-").context("randomness")?;
        let path = std::env::temp_dir().join(name);
        create_private_dir(&path).context("creating a private directory")?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Zeros over each image before it is unlinked: a file an image viewer still holds open, or a
        // block the file system reuses later, then holds no picture.
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(&path)
                    && let Ok(meta) = file.metadata()
                {
                    let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
                    let _ = file.write_all(&zeros).and_then(|()| file.sync_data());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed): each ends the console as Ctrl-C does. Listening
/// starts when this is made, so that a signal that comes before it is awaited is kept, not fatal.
pub(super) struct Interrupts {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 3],
}

impl Interrupts {
    pub(super) fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| signal(kind).context("listening for signals");
            Ok(Self {
                signals: [
                    listen(SignalKind::interrupt())?,
                    listen(SignalKind::terminate())?,
                    listen(SignalKind::hangup())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next of them.
    pub(super) async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let [int, term, hup] = &mut self.signals;
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The role and principal (CN) of our own client certificate.
pub(super) fn own_caller(cert: &Path) -> anyhow::Result<crate::transport::auth::Caller> {
    let certs = crate::transport::tls::load_certs("client certificate", cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| anyhow::anyhow!("no certificate in {}", cert.display()))?;
    let caller = crate::transport::auth::caller_from_certificate(leaf.as_ref())
        .ok_or_else(|| anyhow::anyhow!("{} names no role and principal", cert.display()))?;
    Ok(caller)
}

/// The reviewer key file: `--key-file`, or `<certs>/<as>.review-key`.
pub(super) fn key_path(args: &ReviewArgs) -> PathBuf {
    args.key_file
        .clone()
        .unwrap_or_else(|| args.certs.join(format!("{}.review-key", args.identity)))
}

/// Opens a claimed case's material with the reviewer's key: sealed to `principal` and bound to the
/// case id (API.md §2). The plaintext buffer is wiped; the fields wipe themselves when dropped.
pub(super) fn open_claim(
    key: &OpeningKey,
    principal: &str,
    claim: &pb::ClaimNextResponse,
) -> anyhow::Result<crate::domain::IdentityFields> {
    let plaintext = key
        .open(
            &Context::review(&claim.case_id, principal),
            &claim.enc,
            &claim.ciphertext,
        )
        .map_err(|_| anyhow::anyhow!("the case material does not open with this reviewer key"))?;
    crate::material::decode(&plaintext).ok_or_else(|| anyhow::anyhow!("malformed case material"))
}

fn extension(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") { "png" } else { "jpg" }
}

/// The reviewer's answer to `prompt`, trimmed; `None` once stdin has ended.
async fn ask(prompt: &str) -> anyhow::Result<Option<String>> {
    let mut out = std::io::stdout();
    write!(out, "{prompt}")
        .and_then(|()| out.flush())
        .context("writing to the terminal")?;
    // A detached thread, not the runtime's blocking pool: a read still waiting when the console ends
    // (Ctrl-C) must not keep the process alive.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|n| (n > 0).then_some(line)));
    });
    let line = rx.await.context("reading the terminal")??;
    Ok(line.map(|l| l.trim().to_owned()))
}

/// How the wait for the reviewer ended.
enum Outcome {
    Decide(pb::Decision, String),
    /// Released on purpose, by a signal, or because stdin ended: the words say which.
    Release(&'static str),
    /// Showing the case or reading the answer failed: released, then reported.
    Failed(anyhow::Error),
}

pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
    if args.web_args.web {
        return super::review_web::run(args).await;
    }
    let mut interrupts = Interrupts::listen()?;
    let channel = connect_named(&args.target, args.tls.tls_name.as_deref(), &args.certs, &args.identity).await?;
    let mut client = ReviewServiceClient::new(channel).max_decoding_message_size(32 << 20);
    if args.stats {
        let s = client
            .get_queue_stats(pb::GetQueueStatsRequest {})
            .await
            .context("GetQueueStats")?
            .into_inner();
        println!(
            "pending={} claimed={} oldest_pending_age_seconds={}",
            s.pending, s.claimed, s.oldest_pending_age_seconds
        );
        return Ok(());
    }
    let key = reviewer_key(&key_path(&args))?;
    client
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: key.public_key().to_vec(),
        })
        .await
        .context("RegisterReviewerKey")?;

    let claim = client
        .claim_next(pb::ClaimNextRequest {})
        .await
        .context("ClaimNext")?
        .into_inner();
    if claim.case_id.is_empty() {
        println!("the review queue is empty");
        return Ok(());
    }
    let case_id = claim.case_id.clone();
    // The gateway binds the material to this certificate's CN.
    let principal = own_caller(&args.certs.join(format!("{}.pem", args.identity)))?.principal;
    let fields = open_claim(&key, &principal, &claim)?;

    let dir = PrivateDir::create()?;
    let outcome = match show(&dir, &case_id, &claim, fields) {
        Err(error) => Outcome::Failed(error),
        Ok(()) => tokio::select! {
            outcome = decided(&args) => outcome,
            () = interrupts.recv() => Outcome::Release("interrupted"),
        },
    };
    let (decision, reason_code) = match outcome {
        Outcome::Decide(decision, reason_code) => (decision, reason_code),
        Outcome::Release(why) => {
            drop(dir);
            release(&mut client, &case_id).await?;
            say(format_args!("case {case_id} released ({why})"));
            return Ok(());
        }
        Outcome::Failed(error) => {
            drop(dir);
            let _ = release(&mut client, &case_id).await;
            return Err(error.into());
        }
    };
    let request = pb::SubmitDecisionRequest {
        case_id: case_id.clone(),
        decision: decision as i32,
        reason_code,
    };
    let answer = client.submit_decision(request).await;
    drop(dir);
    let status = answer.context("SubmitDecision")?.into_inner().status;
    let status = pb::Status::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    say(format_args!("case {case_id}: {status}"));
    Ok(())
}

/// Prints the case and writes its images into `dir` for a viewer.
fn show(
    dir: &PrivateDir,
    case_id: &str,
    claim: &pb::ClaimNextResponse,
    fields: crate::domain::IdentityFields,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    let purpose = pb::Purpose::try_from(claim.purpose)
        .map(|p| p.as_str_name())
        .unwrap_or("UNKNOWN");
    writeln!(
        out,
        "case {case_id}  purpose {purpose}  lease until {} (unix)",
        claim.lease_expires_unix
    )?;
    writeln!(out, "  name       {}", fields.name)?;
    writeln!(out, "  ID number  {}", fields.id_number)?;
    if !fields.phone.is_empty() {
        writeln!(out, "  phone      {}", fields.phone)?;
    }
    for (label, bytes) in [
        ("face", &fields.face_image),
        ("id_card_front", &fields.id_card_front),
        ("id_card_back", &fields.id_card_back),
        ("handheld_id_photo", &fields.handheld_id_photo),
    ] {
        if bytes.is_empty() && label == "face" {
            writeln!(out, "  {label:<18} {}", crate::cli::review_web::NO_FACE_NOTE)?;
        }
        if !bytes.is_empty() {
            let path = dir.0.join(format!("{label}.{}", extension(bytes)));
            write_private_file(&path, bytes).context("writing an image")?;
            writeln!(out, "  {label:<18} {}", path.display())?;
        }
    }
    Ok(())
}

/// The decision: from `--decide`, or asked on the terminal.
async fn decided(args: &ReviewArgs) -> Outcome {
    let (decision, reason) = match (args.decide, &args.reason) {
        (Some(d), Some(r)) => (d, r.clone()),
        _ => loop {
            let answer = match ask("approve / reject / release? ").await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Outcome::Release("stdin ended"),
                Err(error) => return Outcome::Failed(error),
            };
            let decision = match answer.as_str() {
                "approve" | "a" => DecisionArg::Approve,
                "reject" | "r" => DecisionArg::Reject,
                "release" => return Outcome::Release("as asked"),
                _ => continue,
            };
            match ask("reason code (e.g. DOCS_MATCH, FACE_MISMATCH): ").await {
                Ok(Some(reason)) => break (decision, reason),
                Ok(None) => return Outcome::Release("stdin ended"),
                Err(error) => return Outcome::Failed(error),
            }
        },
    };
    let decision = match decision {
        DecisionArg::Approve => pb::Decision::Approve,
        DecisionArg::Reject => pb::Decision::Reject,
    };
    Outcome::Decide(decision, reason)
}

async fn release(client: &mut ReviewServiceClient<tonic::transport::Channel>, case_id: &str) -> anyhow::Result<()> {
    client
        .release_case(pb::ReleaseCaseRequest {
            case_id: case_id.to_owned(),
        })
        .await
        .context("ReleaseCase")?;
    Ok(())
}

/// A line on stdout that may find no terminal any more (after SIGHUP): not worth a panic.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout(), "{line}");
}
