//! Serving: the gRPC services, health and reflection on a TLS listener, until `shutdown` resolves.
//!
//! A library function so that tests start the real server on `127.0.0.1:0` with any shutdown trigger.
//! In-flight work is bounded here ([`Limits`]): `Verify` past its limit is shed (see
//! [`super::shedding`]), HTTP/2 streams per connection and request sizes per service are capped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::auth::RevocationLayer;
use super::readiness::Readiness;
use super::rpc_layer::RpcLayer;
use super::services::{App, AuditService, ReviewService, VerificationService};
use super::shedding::Shed;
use super::tls;
use crate::pb;

/// Largest request accepted: four 4 MiB images sealed, plus text and framing.
pub const MAX_MESSAGE_BYTES: usize = 18 * 1024 * 1024;

/// hyper's default stream window. A 64 KiB window (HTTP/2's own default) was measured under overload
/// and gave no gain in admitted throughput on loopback, while on a WAN it would cap a stream at one
/// window per round trip (a 17 MiB supplement over a 50 ms link: 13 s), so it stays a setting.
pub const DEFAULT_STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// hyper's default connection window.
pub const DEFAULT_CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

/// Bounds on the work the server takes in (`[server]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `Verify` calls in flight at once across all connections; past it, calls are shed with
    /// `RESOURCE_EXHAUSTED` / `OVERLOADED` (0: no limit).
    pub max_in_flight_verify: usize,
    /// The delay a shed call's `RetryInfo` suggests when shedding starts.
    pub shed_retry_after: Duration,
    /// The longest delay it is raised to while shedding lasts (`shedding::Pushback`).
    pub shed_retry_after_max: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// HTTP/2 initial flow-control window of each stream: how much of a request body a client may
    /// send before the server has read any of it (a smaller one bounds what a `Verify` shed on its
    /// headers has already pulled over TLS; see the README's performance section).
    pub http2_stream_window_bytes: u32,
    /// HTTP/2 flow-control window of a whole connection: request body bytes in flight over all its
    /// streams.
    pub http2_connection_window_bytes: u32,
    /// Largest request of the verification service (it carries sealed images).
    pub max_verification_message_bytes: usize,
    /// Largest request of the review and audit services (ids and keys only).
    pub max_review_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Measured (README, performance): on 2 cores 32 admits as much as 128 under overload,
            // with a quarter of the queueing and no call past its deadline.
            max_in_flight_verify: 32,
            shed_retry_after: Duration::from_secs(1),
            shed_retry_after_max: Duration::from_secs(30),
            max_concurrent_streams: 256,
            http2_stream_window_bytes: DEFAULT_STREAM_WINDOW_BYTES,
            http2_connection_window_bytes: DEFAULT_CONNECTION_WINDOW_BYTES,
            max_verification_message_bytes: MAX_MESSAGE_BYTES,
            max_review_message_bytes: 1024 * 1024,
        }
    }
}

/// The tonic server settings every idgate gRPC server shares (the gateway, and the load tool's echo
/// baseline, which must run the same stack).
pub fn builder(limits: &Limits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .initial_stream_window_size(Some(limits.http2_stream_window_bytes))
        .initial_connection_window_size(Some(limits.http2_connection_window_bytes))
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight calls finish.
/// `readiness` switches the idgate services' health entries while serving (see `readiness`).
pub async fn run(
    listener: TcpListener,
    tls_config: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    handshake_timeout: Duration,
    limits: Limits,
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

    let review = pb::review_service_server::ReviewServiceServer::new(ReviewService::new(app.clone()))
        .max_decoding_message_size(limits.max_review_message_bytes);
    let audit = pb::audit_service_server::AuditServiceServer::new(AuditService::new(app.clone()))
        .max_decoding_message_size(limits.max_review_message_bytes);
    let call_deadline = app.call_deadline;
    let rpc_layer = RpcLayer::new(app.instruments.clone());
    let revocation_layer = RevocationLayer::new(app.revocation.clone());
    let instruments = app.instruments.clone();
    let verification = Shed::new(
        pb::verification_service_server::VerificationServiceServer::new(VerificationService::new(app))
            .max_decoding_message_size(limits.max_verification_message_bytes),
        limits.max_in_flight_verify,
        limits.shed_retry_after,
        limits.shed_retry_after_max,
    )
    .with_instruments(instruments);

    let incoming = tls::incoming(listener, tls_config, handshake_timeout);
    let mut builder = builder(&limits)
        // A call that sets no deadline gets this one (and none gets a longer one).
        .timeout(call_deadline)
        // Outermost: a span and a duration for every call, deadline answers included.
        .layer(rpc_layer)
        // Then: a connection whose certificate was revoked after it opened gets no further call.
        .layer(revocation_layer)
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
