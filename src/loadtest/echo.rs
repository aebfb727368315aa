//! The baseline: a bare gRPC echo service on loopback, served by the gateway's own stack (the same
//! rustls TLS 1.3 configuration with required client certificates, the same accept loop and the same
//! tonic server settings) with no work behind it. What Verify's throughput is a ratio of.
//!
//! Serves only on the address it is given (the tool binds loopback); never part of the gateway.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;

use crate::transport::{server, tls};

/// Generated code of `proto/idgate/loadtest/v1/echo.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("idgate.loadtest.v1");
}

/// Answers with the first `reply_bytes` bytes of the payload.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

#[tonic::async_trait]
impl pb::echo_service_server::EchoService for Echo {
    async fn echo(
        &self,
        request: tonic::Request<pb::EchoRequest>,
    ) -> Result<tonic::Response<pb::EchoResponse>, tonic::Status> {
        let mut request = request.into_inner();
        request.payload.truncate(request.reply_bytes as usize);
        Ok(tonic::Response::new(pb::EchoResponse {
            payload: request.payload,
        }))
    }
}

/// A running echo server; stops when dropped or [`EchoServer::stop`]ped.
pub struct EchoServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts on `127.0.0.1:0` with the server certificate, key and CA of a `dev-certs` directory.
    pub async fn start(certs: &Path) -> anyhow::Result<Self> {
        let config = tls::server_config(
            &certs.join("server.pem"),
            &certs.join("server.key"),
            &certs.join("ca.pem"),
            crate::transport::revocation::Revocation::disabled(),
        )
        .context("--baseline serves the echo with server.pem / server.key / ca.pem of --certs")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the echo server on loopback")?;
        let addr = listener.local_addr().context("echo server address")?;
        let incoming = tls::incoming(listener, Arc::new(config), Duration::from_secs(5));
        let (stop, stopped) = oneshot::channel::<()>();
        let service =
            pb::echo_service_server::EchoServiceServer::new(Echo).max_decoding_message_size(server::MAX_MESSAGE_BYTES);
        let served = tokio::spawn(async move {
            let result = server::builder(&server::Limits::default())
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = result {
                eprintln!("echo server: {error}");
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            served: Some(served),
        })
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
