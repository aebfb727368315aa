//! Connecting to a gateway as one of the dev PKI's identities, and sealing a `VerifyRequest` exactly as
//! API.md §2 says (used by `verify`, `loadtest`, and by tests).
//!
//! Never logs or formats the identity it seals.

use std::path::Path;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::crypto::sealing::{self, Context, SealError};
use crate::pb;

/// A TLS 1.3 channel to `target` (`HOST:PORT`) presenting `<certs>/<stem>.pem/.key`, trusting
/// `<certs>/ca.pem`.
pub async fn connect(target: &str, certs: &Path, stem: &str) -> anyhow::Result<Channel> {
    let read = |name: String| {
        let path = certs.join(&name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let ca = read("ca.pem".into())?;
    let cert = read(format!("{stem}.pem"))?;
    crate::crypto::keyfile::ensure_private(&certs.join(format!("{stem}.key")))?;
    let key = zeroize::Zeroizing::new(read(format!("{stem}.key"))?);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key.as_slice()))
        .domain_name("localhost");
    let endpoint = Channel::from_shared(format!("https://{target}"))
        .context("target must be HOST:PORT")?
        .tls_config(tls)
        .context("TLS configuration")?;
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))
}

/// A refused call as a command-line error: its code, message and reason (never input: answers carry
/// none).
pub fn refused(status: tonic::Status) -> super::CliError {
    let reason = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.reason);
    super::CliError::Other(anyhow::anyhow!(
        "{:?}: {} (reason {})",
        status.code(),
        status.message(),
        reason.as_deref().unwrap_or("-")
    ))
}

/// A `VerifyRequest` whose `plaintext` (an encoded `IdentityPayload`) is sealed to the gateway's `key`,
/// bound to `purpose`, `account_id` and `request_id` (API.md §2).
pub fn sealed_verify_request(
    key: &pb::GetSealingKeyResponse,
    purpose: pb::Purpose,
    account_id: String,
    request_id: String,
    consent: pb::Consent,
    plaintext: &[u8],
) -> Result<pb::VerifyRequest, SealError> {
    let context = Context::identity(purpose as i32, &account_id, &request_id);
    let sealed = sealing::seal(&key.public_key, &context, plaintext)?;
    Ok(pb::VerifyRequest {
        request_id,
        account_id,
        purpose: purpose as i32,
        consent: Some(consent),
        payload: Some(pb::SealedPayload {
            key_id: key.key_id.clone(),
            enc: sealed.enc,
            ciphertext: sealed.ciphertext.into(),
        }),
        document_review: false,
    })
}
