//! Serving: the gRPC services, health and reflection on a TLS listener, until `shutdown` resolves.
//!
//! A library function so that tests start the real server on `127.0.0.1:0` with any shutdown trigger.
//! In-flight work is bounded here ([`Limits`]): `Verify` and `SubmitSupplement` past their limits are
//! shed (see [`super::shedding`]), HTTP/2 streams per connection are capped, and every method's
//! request size ([`Limits::max_request_bytes`], enforced by [`super::admission`] once the caller's
//! role allows the method, before the body is read).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::admission::AdmissionLayer;
use super::auth::Rpc;
use super::readiness::Readiness;
use super::rpc_layer::RpcLayer;
use super::services::{App, AuditService, ReviewService, VerificationService};
use super::shedding::{SUPPLEMENT_PATH, Shed};
use super::tls;
use crate::domain::MAX_IMAGE_BYTES;
use crate::pb;

/// Largest request accepted: four 4 MiB images sealed, plus text and framing.
pub const MAX_MESSAGE_BYTES: usize = 18 * 1024 * 1024;

/// Largest `SubmitSupplement` request: three sealed images (ID card front, back, handheld photo) of
/// at most [`MAX_IMAGE_BYTES`] each, plus ids, the encapsulated key, the seal's tag and framing.
pub const MAX_SUPPLEMENT_MESSAGE_BYTES: usize = 3 * MAX_IMAGE_BYTES + 64 * 1024;

/// Largest request of every method that carries no image: ids (at most 128 bytes), a reviewer's
/// 32-byte key, a reason code, a page token. Room to spare for fields a newer client adds, far below
/// what an image costs.
pub const MAX_SMALL_MESSAGE_BYTES: usize = 128 * 1024;

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
    /// The same for `SubmitSupplement` (each opens up to three 4 MiB images), with its own slots and
    /// retry delay.
    pub max_in_flight_supplement: usize,
    /// The delay a shed call's `RetryInfo` suggests when shedding starts.
    pub shed_retry_after: Duration,
    /// The longest delay it is raised to while shedding lasts (`shedding::Pushback`).
    pub shed_retry_after_max: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// HTTP/2 initial flow-control window of each stream: how much of a request body a client may
    /// send before the server has read any of it (a smaller one bounds what a `Verify` shed on its
    /// headers has already pulled over TLS; see docs/performance.md).
    pub http2_stream_window_bytes: u32,
    /// HTTP/2 flow-control window of a whole connection: request body bytes in flight over all its
    /// streams.
    pub http2_connection_window_bytes: u32,
    /// Largest request of the verification service (it carries sealed images): the limit of
    /// `Verify`, and a cap on the service's other methods.
    pub max_verification_message_bytes: usize,
    /// Largest request of the review and audit services (ids and keys only): a cap on their methods.
    pub max_review_message_bytes: usize,
}

impl Limits {
    /// The largest request `rpc` accepts: what its message needs ([`MAX_SUPPLEMENT_MESSAGE_BYTES`],
    /// [`MAX_SMALL_MESSAGE_BYTES`]; `Verify`'s is the setting), within its service's setting.
    pub fn max_request_bytes(&self, rpc: Rpc) -> usize {
        let fits = match rpc {
            Rpc::Verify => self.max_verification_message_bytes,
            Rpc::SubmitSupplement => MAX_SUPPLEMENT_MESSAGE_BYTES,
            _ => MAX_SMALL_MESSAGE_BYTES,
        };
        let service = match rpc {
            Rpc::GetSealingKey
            | Rpc::Verify
            | Rpc::GetVerification
            | Rpc::WatchVerification
            | Rpc::SubmitSupplement
            | Rpc::EraseSubject
            | Rpc::WithdrawConsent => self.max_verification_message_bytes,
            Rpc::RegisterReviewerKey
            | Rpc::ClaimNext
            | Rpc::SubmitDecision
            | Rpc::ReleaseCase
            | Rpc::GetQueueStats
            | Rpc::ListAuditEvents => self.max_review_message_bytes,
        };
        fits.min(service)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Measured (docs/performance.md): on 2 cores 32 admits as much as 128 under overload,
            // with a quarter of the queueing and no call past its deadline.
            max_in_flight_verify: 32,
            // A supplement holds several copies of up to 12 MiB while it is decoded, opened and
            // checked: 8 bound that to a few hundred MiB; supplements are rare.
            max_in_flight_supplement: 8,
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
    let admission_layer = AdmissionLayer::new(app.revocation.clone(), limits);
    let instruments = app.instruments.clone();
    let verification = Shed::new(
        pb::verification_service_server::VerificationServiceServer::new(VerificationService::new(app))
            .max_decoding_message_size(limits.max_verification_message_bytes),
        limits.max_in_flight_verify,
        limits.shed_retry_after,
        limits.shed_retry_after_max,
    )
    .limit(SUPPLEMENT_PATH, limits.max_in_flight_supplement)
    .with_instruments(instruments);

    let incoming = tls::incoming(listener, tls_config, handshake_timeout);
    let mut builder = builder(&limits)
        // A call that sets no deadline gets this one (and none gets a longer one).
        .timeout(call_deadline)
        // Outermost: a span and a duration for every call, deadline answers included.
        .layer(rpc_layer)
        // Then, before any body is read: a connection whose certificate was revoked after it opened
        // gets no further call, a certificate whose role may not call the method gets no body read,
        // and each method's body is held to its size.
        .layer(admission_layer)
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
