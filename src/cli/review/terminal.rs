//! `idgate review`: the reference review console, for a human at a terminal (or a script).
//!
//! Decrypted images are written to a private temporary directory (0700, files 0600) for an image
//! viewer, and overwritten and removed after the decision, on Ctrl-C, SIGTERM or SIGHUP (the terminal
//! closed), on the end of stdin, or on any error; in each of those cases but a decision the case is
//! released to the queue at once. Nothing personal is logged. `--web` serves the same console to a
//! browser instead ([`super::web`]), with the material in memory only.
//!
//! It must never leave decrypted images behind when it ends by any of those ways, nor spin on a closed
//! stdin.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::args::{DecisionArg, ReviewArgs};
use super::session::{Interrupts, NO_FACE_NOTE, key_path, open_claim, own_caller, register, reviewer_key};
use crate::cli::CliError;
use crate::client::connect_named;
use crate::crypto::keyfile::{create_private_dir, write_private_file};
use crate::pb;
use crate::pb::review_service_client::ReviewServiceClient;

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

/// The console on the terminal: one case, claimed, shown, decided or released.
pub async fn run(args: ReviewArgs) -> Result<(), CliError> {
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
    register(&mut client, &key).await.context("RegisterReviewerKey")?;

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
            writeln!(out, "  {label:<18} {}", NO_FACE_NOTE)?;
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
