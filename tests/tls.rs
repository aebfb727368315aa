//! The transport's promises, checked below gRPC with a raw rustls client: TLS 1.3 only, a client
//! certificate required (the server itself refuses a client without one), and the standard services
//! (health, reflection) served to a client that has one. Revocation: a certificate put on the deny
//! list is refused at the handshake and on connections already open, and served again once removed;
//! a listed intermediate of the client CA file refuses its clients whether they present it or not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{GatewayProcess, TestGateway};
use idgate::pb;
use idgate::pb::review_service_client::ReviewServiceClient;
use idgate::pb::verification_service_client::VerificationServiceClient;
use idgate::transport::tls::{crypto_provider, load_certs, load_key};
use rustls::pki_types::ServerName;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A rustls client trusting the dev CA in `certs`, offering only `versions`, with the client identity
/// `stem` (or none).
fn client(certs: &Path, versions: &[&'static rustls::SupportedProtocolVersion], stem: Option<&str>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs("ca", &certs.join("ca.pem")).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match stem {
        Some(stem) => builder
            .with_client_auth_cert(
                load_certs("cert", &certs.join(format!("{stem}.pem"))).unwrap(),
                load_key("key", &certs.join(format!("{stem}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Connects, sends the HTTP/2 preface and reads once: `Ok` with bytes when the server talks to us,
/// the TLS error otherwise (a refused client certificate shows only on the first read in TLS 1.3).
async fn talk(addr: SocketAddr, connector: TlsConnector) -> Result<usize, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
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
    let tls13 = [&rustls::version::TLS13];
    let ok = talk(gw.addr, client(&gw.certs(), &tls13, Some("onboarding"))).await;
    assert!(ok.expect("served") > 0);

    // TLS 1.2, even with a valid certificate: the handshake fails on the version.
    let old = talk(
        gw.addr,
        client(&gw.certs(), &[&rustls::version::TLS12], Some("onboarding")),
    )
    .await
    .expect_err("TLS 1.2 refused");
    assert_eq!(alert(&old), Some(rustls::AlertDescription::ProtocolVersion), "{old}");

    // No certificate: the server itself says a certificate is required.
    let anonymous = talk(gw.addr, client(&gw.certs(), &tls13, None))
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

/// `certs/<stem>.pem`'s SHA-256 fingerprint (colon-separated, as `openssl x509 -fingerprint` prints
/// it) and its serial (hex).
fn fingerprint_and_serial(certs: &Path, stem: &str) -> (String, String) {
    use x509_parser::prelude::FromDer as _;
    let der = load_certs("cert", &certs.join(format!("{stem}.pem")))
        .unwrap()
        .remove(0);
    let digest = sha2::Sha256::digest(der.as_ref());
    let fingerprint: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(der.as_ref()).unwrap();
    (fingerprint.join(":"), hex::encode(parsed.raw_serial()))
}

/// Whether a new TLS connection with `stem`'s certificate is served (`Ok`) or refused as revoked.
async fn connects(addr: SocketAddr, certs: &Path, stem: &str) -> Result<(), ()> {
    match talk(addr, client(certs, &[&rustls::version::TLS13], Some(stem))).await {
        Ok(read) if read > 0 => Ok(()),
        Err(error) if alert(&error) == Some(rustls::AlertDescription::CertificateRevoked) => Err(()),
        other => panic!("neither served nor revoked: {other:?}"),
    }
}

/// Waits (bounded) until new connections with `stem` are `want` (`Ok` served, `Err` revoked).
async fn until_connects(addr: SocketAddr, certs: &Path, stem: &str, want: Result<(), ()>) {
    for _ in 0..200 {
        if connects(addr, certs, stem).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{stem}: new connections never became {want:?}");
}

#[tokio::test]
async fn a_certificate_on_the_deny_list_is_shut_out_at_once_and_let_in_again_when_removed() {
    let lists = tempfile::tempdir().unwrap();
    let deny = lists.path().join("deny.list");
    std::fs::write(&deny, "# nobody is revoked\n").unwrap();
    let mut config = TestGateway::config();
    config.server.client_deny_list = Some(deny.clone());
    config.server.client_deny_list_poll_ms = Duration::from_millis(20);
    let gw = TestGateway::start_with(config, None).await;
    let certs = gw.certs();

    // A reviewer's connection, open and working before the revocation.
    let mut open = ReviewServiceClient::new(gw.channel("reviewer-1").await);
    open.get_queue_stats(pb::GetQueueStatsRequest {}).await.expect("served");
    connects(gw.addr, &certs, "reviewer-1").await.expect("served");

    // Revoked by fingerprint: new handshakes fail with `certificate_revoked` ...
    let (fingerprint, _) = fingerprint_and_serial(&certs, "reviewer-1");
    std::fs::write(&deny, format!("# leaked laptop\nsha256:{fingerprint}\n")).unwrap();
    until_connects(gw.addr, &certs, "reviewer-1", Err(())).await;
    // ... and the connection already open gets no further call.
    let refused = open
        .get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .expect_err("revoked on the open connection");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(common::reason(&refused).as_deref(), Some("CERTIFICATE_REVOKED"));
    // Others are not touched.
    let mut other = ReviewServiceClient::new(gw.channel("reviewer-2").await);
    other
        .get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .expect("reviewer-2 served");

    // Removed from the list: served again, on the open connection and on new ones.
    std::fs::write(&deny, "# reviewer-1 has a new laptop\n").unwrap();
    until_connects(gw.addr, &certs, "reviewer-1", Ok(())).await;
    open.get_queue_stats(pb::GetQueueStatsRequest {})
        .await
        .expect("served again");
    gw.stop().await;
}

/// Waits (bounded) until the gateway process has logged `needle`.
async fn wait_for_log(gateway: &GatewayProcess, needle: &str) {
    for _ in 0..400 {
        if gateway.stderr().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {needle:?} in stderr:\n{}", gateway.stderr());
}

#[tokio::test]
async fn sighup_reloads_the_deny_list_and_a_malformed_list_is_refused_keeping_the_old_one() {
    const SIGHUP: i32 = 1;
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    let deny = dir.path().join("deny.list");
    std::fs::write(&deny, "").unwrap();
    let deny_path = deny.to_str().unwrap();
    // Polling as good as off: only SIGHUP reloads within this test.
    let gateway = GatewayProcess::start(
        &dev,
        &[
            ("IDGATE_SERVER__CLIENT_DENY_LIST", deny_path),
            ("IDGATE_SERVER__CLIENT_DENY_LIST_POLL_MS", "3600000"),
        ],
    )
    .await;
    connects(gateway.addr, &dev, "reviewer-1").await.expect("served");

    let (_, serial) = fingerprint_and_serial(&dev, "reviewer-1");
    std::fs::write(&deny, format!("serial:{serial}\n")).unwrap();
    gateway.signal(SIGHUP);
    wait_for_log(&gateway, "SIGHUP: deny list reloaded (1 serials, 0 fingerprints)").await;
    assert_eq!(connects(gateway.addr, &dev, "reviewer-1").await, Err(()));
    connects(gateway.addr, &dev, "reviewer-2").await.expect("others served");

    // A malformed list: one log line, and the list in force stays.
    std::fs::write(&deny, "serial:not-hex\n").unwrap();
    gateway.signal(SIGHUP);
    wait_for_log(&gateway, "SIGHUP: deny list refused").await;
    let stderr = gateway.stderr();
    assert_eq!(stderr.matches("SIGHUP: deny list refused").count(), 1, "{stderr}");
    assert!(stderr.contains("line 1"), "the bad line is named: {stderr}");
    assert_eq!(connects(gateway.addr, &dev, "reviewer-1").await, Err(()));
    assert!(!stderr.contains("reviewer-1"), "refusals name no subject: {stderr}");
}

/// A CA certificate named `name`, self-signed or issued by `parent` (an rcgen-built PKI beside the
/// dev one).
fn authority(
    name: &str,
    parent: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>,
) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().unwrap();
    match parent {
        None => rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        Some(parent) => rcgen::CertifiedIssuer::signed_by(params, key, parent).unwrap(),
    }
}

/// Writes `<stem>.pem` (the client certificate alone, no intermediate) and `<stem>.key` into `dir`:
/// an onboarding client issued by `issuer`.
fn issue_onboarding_client(dir: &Path, stem: &str, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "onboarding");
    params.distinguished_name.push(rcgen::DnType::CommonName, stem);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    idgate::crypto::keyfile::write_private_file(&dir.join(format!("{stem}.key")), key.serialize_pem().as_bytes())
        .unwrap();
}

/// Root → two intermediates → clients, with the root and both intermediates in `client_ca` (as an
/// operator's CA bundle holds them). Listing one intermediate refuses its clients although they
/// present only their own certificate (the verifier completes the chain from `client_ca`): new
/// handshakes and the calls of a connection already open. The other intermediate's clients stay.
#[tokio::test]
async fn a_listed_intermediate_in_the_client_ca_is_enforced_though_clients_do_not_present_it() {
    let pki = tempfile::tempdir().unwrap();
    let root = authority("idgate test root", None);
    let listed = authority("idgate test intermediate 1", Some(&root));
    let other = authority("idgate test intermediate 2", Some(&root));
    let bundle = pki.path().join("client-ca.pem");
    std::fs::write(&bundle, [&root, &listed, &other].map(|ca| ca.pem()).concat()).unwrap();
    let deny = pki.path().join("deny.list");
    std::fs::write(&deny, "# nobody is revoked\n").unwrap();
    let mut config = TestGateway::config();
    config.server.client_ca = Some(bundle);
    config.server.client_deny_list = Some(deny.clone());
    config.server.client_deny_list_poll_ms = Duration::from_millis(20);
    let gw = TestGateway::start_with(config, None).await;
    let certs = gw.certs();
    issue_onboarding_client(&certs, "under-listed", &listed);
    issue_onboarding_client(&certs, "under-other", &other);

    // Served while nothing is listed, with the client's own certificate alone.
    let mut open = VerificationServiceClient::new(gw.channel("under-listed").await);
    open.get_sealing_key(pb::GetSealingKeyRequest {}).await.expect("served");
    connects(gw.addr, &certs, "under-listed").await.expect("served");

    let fingerprint = hex::encode(sha2::Sha256::digest(listed.der().as_ref()));
    std::fs::write(&deny, format!("# compromised intermediate\nsha256:{fingerprint}\n")).unwrap();
    until_connects(gw.addr, &certs, "under-listed", Err(())).await;
    let refused = open
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect_err("revoked on the open connection");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(common::reason(&refused).as_deref(), Some("CERTIFICATE_REVOKED"));
    connects(gw.addr, &certs, "under-other")
        .await
        .expect("the other intermediate's clients stay");
    let mut other_client = VerificationServiceClient::new(gw.channel("under-other").await);
    other_client
        .get_sealing_key(pb::GetSealingKeyRequest {})
        .await
        .expect("served");
    gw.stop().await;
}
