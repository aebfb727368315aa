//! The client side of the gateway, for the tools: connecting as one of the dev PKI's identities, and
//! sealing a `VerifyRequest` exactly as docs/api.md §2 says (used by the CLI's `verify`, `review` and
//! `consent`, by the load tool, and by tests). A library module, not part of the CLI: the load tool
//! and the CLI both lean on it, neither on the other.
//!
//! The gateway's certificate must name the host of `--target` (a DNS name, or an IP address in an IP
//! SAN), or the name `--tls-name` gives: never a fixed name whatever the target says.
//!
//! Never logs or formats the identity it seals.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tonic::transport::{Channel, ClientTlsConfig, Identity};

use crate::crypto::sealing::{self, Context, SealError};
use crate::pb;

/// The name the gateway's certificate is checked against: `tls_name` if given, else the host of
/// `target` (`HOST:PORT`, `[IPv6]:PORT`).
pub fn server_name(target: &str, tls_name: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = tls_name {
        ServerName::try_from(name)
            .map_err(|_| anyhow::anyhow!("--tls-name {name:?} is not a DNS name or IP address"))?;
        return Ok(name.to_owned());
    }
    let uri: http::Uri = format!("https://{target}")
        .parse()
        .map_err(|_| anyhow::anyhow!("--target {target:?} must be HOST:PORT"))?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("--target {target:?} must be HOST:PORT"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok(host.to_owned())
}

/// A TLS 1.3 channel to `target` (`HOST:PORT`) presenting `<certs>/<stem>.pem/.key`, trusting
/// `<certs>/ca.pem`, checking the gateway's certificate against the host of `target`.
pub async fn connect(target: &str, certs: &Path, stem: &str) -> anyhow::Result<Channel> {
    connect_named(target, None, certs, stem).await
}

/// [`connect`], checking the gateway's certificate against `tls_name` when given.
pub async fn connect_named(target: &str, tls_name: Option<&str>, certs: &Path, stem: &str) -> anyhow::Result<Channel> {
    Ok(connect_inspected(target, tls_name, certs, stem).await?.0)
}

/// [`connect_named`], also returning the certificate the gateway presented (DER), as verified.
pub async fn connect_inspected(
    target: &str,
    tls_name: Option<&str>,
    certs: &Path,
    stem: &str,
) -> anyhow::Result<(Channel, Vec<u8>)> {
    let name = server_name(target, tls_name)?;
    let read = |name: String| {
        let path = certs.join(&name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let ca = read("ca.pem".into())?;
    let cert = read(format!("{stem}.pem"))?;
    crate::crypto::keyfile::ensure_private(&certs.join(format!("{stem}.key")))?;
    let key = zeroize::Zeroizing::new(read(format!("{stem}.key"))?);
    let verifier = Arc::new(Recording::new(&ca)?);
    // The verifier holds the trust anchors (`ca.pem`): tonic takes either, not both.
    let tls = ClientTlsConfig::new()
        .identity(Identity::from_pem(cert, key.as_slice()))
        .domain_name(name.clone());
    let endpoint = Channel::from_shared(format!("https://{target}"))
        .context("target must be HOST:PORT")?
        .tls_config_with_verifier(tls, verifier.clone())
        .context("TLS configuration")?;
    let channel = endpoint.connect().await.with_context(|| {
        format!("connecting to {target} (the gateway's certificate must name {name}; --tls-name sets another name)")
    })?;
    let presented = verifier
        .seen
        .lock()
        .map_err(|_| anyhow::anyhow!("TLS verifier poisoned"))?
        .take()
        .ok_or_else(|| anyhow::anyhow!("connecting to {target}: no server certificate was verified"))?;
    Ok((channel, presented))
}

/// The usual WebPKI verification against `ca.pem`, keeping the end-entity certificate it accepted
/// (what `loadtest` reads the issuer of).
#[derive(Debug)]
struct Recording {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl Recording {
    fn new(ca_pem: &[u8]) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem) {
            let cert: CertificateDer<'static> = cert.context("ca.pem")?;
            roots.add(cert).context("ca.pem")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("ca.pem")?;
        Ok(Self {
            inner,
            seen: Mutex::new(None),
        })
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A `VerifyRequest` whose `plaintext` (an encoded `IdentityPayload`) is sealed to the gateway's `key`,
/// bound to `purpose`, `account_id` and `request_id` (docs/api.md §2).
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

#[cfg(test)]
mod tests {
    use super::server_name;

    #[test]
    fn the_tls_name_is_the_host_of_the_target_unless_given() {
        let name = |target, flag| server_name(target, flag).ok();
        assert_eq!(name("gw.example.cn:443", None).as_deref(), Some("gw.example.cn"));
        assert_eq!(name("127.0.0.1:50051", None).as_deref(), Some("127.0.0.1"));
        assert_eq!(name("[::1]:50051", None).as_deref(), Some("::1"));
        assert_eq!(
            name("10.0.0.7:50051", Some("idgate.internal")).as_deref(),
            Some("idgate.internal")
        );
        assert_eq!(name("10.0.0.7:50051", Some("not a name")), None);
        assert_eq!(name("", None), None);
    }
}
