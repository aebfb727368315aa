//! Connecting to a gateway as one of the dev PKI's identities (used by `verify`, and by tests).

use std::path::Path;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A TLS 1.3 channel to `target` (`HOST:PORT`) presenting `<certs>/<stem>.pem/.key`, trusting
/// `<certs>/ca.pem`.
pub async fn connect(target: &str, certs: &Path, stem: &str) -> anyhow::Result<Channel> {
    let read = |name: String| {
        let path = certs.join(&name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let ca = read("ca.pem".into())?;
    let cert = read(format!("{stem}.pem"))?;
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
