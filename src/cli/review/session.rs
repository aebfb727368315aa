//! What both review consoles share: the reviewer's X25519 key file (created on first use, mode 0600;
//! the key never leaves this machine: the gateway only ever sends case material sealed to it), our
//! own certificate's principal, opening a claimed case, and the signals that end a console.
//!
//! It must never use a key file other users can read, nor print the key or the material it opens.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tonic::transport::Channel;

use super::args::ReviewArgs;
use crate::crypto::SecretKey32;
use crate::crypto::keyfile::write_private_file;
use crate::crypto::sealing::{Context, OpeningKey};
use crate::pb;
use crate::pb::review_service_client::ReviewServiceClient;

/// What a console says where the face would be when the case holds none.
pub const NO_FACE_NOTE: &str = "(no face: document review; decide from the ID card and handheld photos)";

/// Loads the reviewer key, creating it (0600) on first use.
pub fn reviewer_key(path: &Path) -> anyhow::Result<OpeningKey> {
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

/// Tells the gateway the public half of the reviewer key (what it seals case material to).
pub async fn register(review: &mut ReviewServiceClient<Channel>, key: &OpeningKey) -> Result<(), tonic::Status> {
    review
        .register_reviewer_key(pb::RegisterReviewerKeyRequest {
            public_key: key.public_key().to_vec(),
        })
        .await
        .map(|_| ())
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed): each ends the console as Ctrl-C does. Listening
/// starts when this is made, so that a signal that comes before it is awaited is kept, not fatal.
pub struct Interrupts {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 3],
}

impl Interrupts {
    pub fn listen() -> anyhow::Result<Self> {
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
    pub async fn recv(&mut self) {
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
pub fn own_caller(cert: &Path) -> anyhow::Result<crate::transport::auth::Caller> {
    let certs = crate::transport::tls::load_certs("client certificate", cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| anyhow::anyhow!("no certificate in {}", cert.display()))?;
    let caller = crate::transport::auth::caller_from_certificate(leaf.as_ref())
        .ok_or_else(|| anyhow::anyhow!("{} names no role and principal", cert.display()))?;
    Ok(caller)
}

/// The reviewer key file: `--key-file`, or `<certs>/<as>.review-key`.
pub fn key_path(args: &ReviewArgs) -> PathBuf {
    args.key_file
        .clone()
        .unwrap_or_else(|| args.certs.join(format!("{}.review-key", args.identity)))
}

/// Opens a claimed case's material with the reviewer's key: sealed to `principal` and bound to the
/// case id (docs/api.md §2). The plaintext buffer is wiped; the fields wipe themselves when dropped.
pub fn open_claim(
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
