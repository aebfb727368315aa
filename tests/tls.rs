//! The transport's promises, checked below gRPC with a raw rustls client: TLS 1.3 only, a client
//! certificate required (the server itself refuses a client without one), and the standard services
//! (health, reflection) served to a client that has one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;

use common::TestGateway;
use idgate::transport::tls::{crypto_provider, load_certs, load_key};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A rustls client trusting the dev CA, offering only `versions`, with the client identity `stem`
/// (or none).
fn client(
    gw: &TestGateway,
    versions: &[&'static rustls::SupportedProtocolVersion],
    stem: Option<&str>,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs("ca", &gw.certs().join("ca.pem")).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match stem {
        Some(stem) => builder
            .with_client_auth_cert(
                load_certs("cert", &gw.certs().join(format!("{stem}.pem"))).unwrap(),
                load_key("key", &gw.certs().join(format!("{stem}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Connects, sends the HTTP/2 preface and reads once: `Ok` with bytes when the server talks to us,
/// the TLS error otherwise (a refused client certificate shows only on the first read in TLS 1.3).
async fn talk(gw: &TestGateway, connector: TlsConnector) -> Result<usize, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(gw.addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await?;
    let mut buf = [0u8; 64];
    tls.read(&mut buf).await
}

fn alert(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

#[tokio::test]
async fn only_tls_13_with_a_client_certificate_is_served() {
    let gw = TestGateway::start().await;
    // The control: TLS 1.3 with a certificate gets an HTTP/2 answer.
    let ok = talk(&gw, client(&gw, &[&rustls::version::TLS13], Some("onboarding"))).await;
    assert!(ok.expect("served") > 0);

    // TLS 1.2, even with a valid certificate: the handshake fails on the version.
    let old = talk(&gw, client(&gw, &[&rustls::version::TLS12], Some("onboarding")))
        .await
        .expect_err("TLS 1.2 refused");
    assert_eq!(alert(&old), Some(rustls::AlertDescription::ProtocolVersion), "{old}");

    // No certificate: the server itself says a certificate is required.
    let anonymous = talk(&gw, client(&gw, &[&rustls::version::TLS13], None))
        .await
        .expect_err("no certificate refused");
    assert_eq!(
        alert(&anonymous),
        Some(rustls::AlertDescription::CertificateRequired),
        "{anonymous}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_idgate_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let gw = TestGateway::start().await;
    let mut reflection = ServerReflectionClient::new(gw.channel("admin").await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.expect("stream").expect("an answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list, got {:?}", answer.message_response);
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "idgate.v1.VerificationService",
        "idgate.v1.ReviewService",
        "idgate.v1.AuditService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    drop(answers);
    gw.stop().await;
}
