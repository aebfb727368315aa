//! Serving: the gRPC services, health and reflection on a TLS listener, until `shutdown` resolves.
//!
//! A library function so that tests start the real server on `127.0.0.1:0` with any shutdown trigger.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::readiness::Readiness;
use super::rpc_layer::RpcLayer;
use super::services::{App, AuditService, ReviewService, VerificationService};
use super::tls;
use crate::pb;

/// Largest request accepted: four 4 MiB images sealed, plus text and framing.
pub const MAX_MESSAGE_BYTES: usize = 18 * 1024 * 1024;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight calls finish.
/// `readiness` switches the idgate services' health entries while serving (see `readiness`).
pub async fn run(
    listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    handshake_timeout: Duration,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::verification_service_server::VerificationServiceServer<VerificationService>>()
        .await;
    health_reporter
        .set_serving::<pb::review_service_server::ReviewServiceServer<ReviewService>>()
        .await;
    health_reporter
        .set_serving::<pb::audit_service_server::AuditServiceServer<AuditService>>()
        .await;
    // Aborted when serving ends (the handle is dropped at the end of this function).
    let readiness_watch = AbortOnDrop(tokio::spawn(readiness.watch(health_reporter)));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| {
            tracing::error!(error = %e, "reflection set-up failed");
            e
        });

    let review = pb::review_service_server::ReviewServiceServer::new(ReviewService::new(app.clone()));
    let audit = pb::audit_service_server::AuditServiceServer::new(AuditService::new(app.clone()));
    let call_deadline = app.call_deadline;
    let rpc_layer = RpcLayer::new(app.instruments.clone());
    let verification = pb::verification_service_server::VerificationServiceServer::new(VerificationService::new(app))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);

    let incoming = tls::incoming(listener, tls_config, handshake_timeout);
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // A call that sets no deadline gets this one (and none gets a longer one).
        .timeout(call_deadline)
        // Outermost: a span and a duration for every call, deadline answers included.
        .layer(rpc_layer)
        .add_service(health_service)
        .add_service(verification)
        .add_service(review)
        .add_service(audit);
    if let Ok(reflection) = reflection {
        builder = builder.add_service(reflection);
    }
    let served = builder.serve_with_incoming_shutdown(incoming, shutdown).await;
    drop(readiness_watch);
    served
}

/// Stops a background task when its owner goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
