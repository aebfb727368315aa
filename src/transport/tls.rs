//! TLS 1.3 with required client certificates (rustls), and the accept loop feeding tonic.
//!
//! Only TLS 1.3 is offered; a client must present a certificate chaining to the configured client CA
//! and not on the deny list ([`super::revocation`]), which also applies to the certificates of the
//! client CA file the chain leads to (a listed intermediate there is enforced whether or not the
//! client presents it). Each handshake runs in its own task with a
//! timeout, so a client that stalls cannot hold up others.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::revocation::Revocation;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {path} holds no usable PEM item")]
    Pem { what: &'static str, path: String },
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// The process-wide crypto provider: ring, and only ring.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

pub fn load_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(what, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsSetupError::Pem {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = zeroize::Zeroizing::new(read(what, path)?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsSetupError::Pem {
        what,
        path: path.display().to_string(),
    })
}

/// The WebPKI client verifier, then the deny list: a certificate the CA vouches for but the deny list
/// names is refused with the `certificate_revoked` alert.
#[derive(Debug)]
struct DenyListVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    revocation: Revocation,
}

impl ClientCertVerifier for DenyListVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.chain.verify_client_cert(end_entity, intermediates, now)?;
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        if let Err(denied) = self.revocation.check(&chain) {
            tracing::warn!(
                serial = %denied.serial,
                fingerprint = %denied.fingerprint,
                "TLS handshake refused: the client certificate is on the deny list"
            );
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// A TLS 1.3-only server configuration that requires a client certificate from `client_ca` that
/// `revocation` does not deny.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    revocation: Revocation,
) -> Result<rustls::ServerConfig, TlsSetupError> {
    let provider = crypto_provider();
    let mut roots = RootCertStore::empty();
    let authorities = load_certs("client CA", client_ca)?;
    for ca in &authorities {
        roots
            .add(ca.clone())
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    }
    // Every trust anchor can end a verified path: the deny list must see them all.
    revocation.trust(&authorities);
    let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let verifier = Arc::new(DenyListVerifier { chain, revocation });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs("server certificate", cert)?, load_key("server key", key)?)
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    // gRPC needs HTTP/2, negotiated by ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Accepts TCP connections on `listener`, runs each TLS handshake in its own task (bounded by
/// `handshake_timeout`), and yields established streams. Ends when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let acceptor = TlsAcceptor::from(config);
    let (tx, rx) = mpsc::channel(128);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
