//! What a call must pass before its body is read, as one tower layer around every service.
//!
//! In order: the connection's client certificate is not on the deny list now (every call, health and
//! reflection included: a connection opened before the certificate was listed stays open; see
//! [`super::revocation`]); for a method of the idgate services, the certificate names a caller whose
//! role may call it ([`super::auth`]); and the request body is held to the method's size
//! ([`Limits::max_request_bytes`]), checked on each gRPC message header as the body arrives, so an
//! oversized message is refused `OUT_OF_RANGE` after its first five bytes and before it reaches the
//! decoder or the handler.
//!
//! Must never read a body before the caller is known to be allowed the method, or log anything of a
//! request but the serial and fingerprint of a revoked certificate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use rustls_pki_types::CertificateDer;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::auth::{Rpc, authorize_certificates};
use super::errors;
use super::revocation::Revocation;
use super::server::Limits;

/// Wraps every service in [`Admission`].
#[derive(Clone)]
pub struct AdmissionLayer {
    revocation: Revocation,
    limits: Limits,
}

impl AdmissionLayer {
    pub fn new(revocation: Revocation, limits: Limits) -> Self {
        Self { revocation, limits }
    }
}

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            revocation: self.revocation.clone(),
            limits: self.limits,
        }
    }
}

/// The checks of the module doc, then the wrapped service with the body held to its method's size.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    revocation: Revocation,
    limits: Limits,
}

/// The client certificate chain of the request's connection (end entity first), if any.
fn peer_certs<B>(request: &http::Request<B>) -> Option<Arc<Vec<CertificateDer<'static>>>> {
    request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs())
}

impl<S> Admission<S> {
    /// The refusal of the module doc's first two checks, if any; `rpc` is the method the request's
    /// path names.
    fn refusal(&self, request: &http::Request<Body>, rpc: Option<Rpc>) -> Option<Status> {
        let certs = peer_certs(request);
        if let Some(certs) = &certs
            && let Err(denied) = self.revocation.check(certs)
        {
            tracing::warn!(
                serial = %denied.serial,
                fingerprint = %denied.fingerprint,
                "call refused: the connection's client certificate is on the deny list"
            );
            return Some(errors::certificate_revoked());
        }
        authorize_certificates(certs.as_deref().map(Vec::as_slice), rpc?).err()
    }
}

impl<S, ResBody> tower_service::Service<http::Request<Body>> for Admission<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let rpc = Rpc::from_path(request.uri().path());
        if let Some(status) = self.refusal(&request, rpc) {
            let response = status.into_http();
            return Box::pin(async move { Ok(response) });
        }
        let request = match rpc {
            Some(rpc) => {
                let limit = self.limits.max_request_bytes(rpc);
                request.map(|body| Body::new(SizeLimited::new(body, rpc, limit)))
            }
            None => request,
        };
        Box::pin(self.inner.call(request))
    }
}

/// The length prefix of a gRPC message: a compression flag and a big-endian `u32`.
const MESSAGE_HEADER_BYTES: usize = 5;

/// A request body whose gRPC messages may be at most `limit` bytes each: the first message header
/// that declares more ends the body with `OUT_OF_RANGE`, before the message itself is read.
struct SizeLimited {
    inner: Body,
    rpc: Rpc,
    limit: usize,
    /// The part of a message header read so far.
    header: [u8; MESSAGE_HEADER_BYTES],
    header_read: usize,
    /// Bytes of the current message still to come (0: a header is next).
    message_left: usize,
}

impl SizeLimited {
    fn new(inner: Body, rpc: Rpc, limit: usize) -> Self {
        Self {
            inner,
            rpc,
            limit,
            header: [0; MESSAGE_HEADER_BYTES],
            header_read: 0,
            message_left: 0,
        }
    }

    /// Follows the message framing through `data`; the refusal when a header declares too much.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.message_left > 0 {
                let skipped = self.message_left.min(data.len());
                self.message_left -= skipped;
                data = &data[skipped..];
                continue;
            }
            let taken = (MESSAGE_HEADER_BYTES - self.header_read).min(data.len());
            self.header[self.header_read..self.header_read + taken].copy_from_slice(&data[..taken]);
            self.header_read += taken;
            data = &data[taken..];
            if self.header_read == MESSAGE_HEADER_BYTES {
                self.header_read = 0;
                let [_, a, b, c, d] = self.header;
                let length = u32::from_be_bytes([a, b, c, d]) as usize;
                if length > self.limit {
                    return Err(Status::out_of_range(format!(
                        "the request is larger than {:?} accepts ({} bytes)",
                        self.rpc, self.limit
                    )));
                }
                self.message_left = length;
            }
        }
        Ok(())
    }
}

impl HttpBody for SizeLimited {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(status) = self.scan(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A gRPC message frame declaring `length` bytes, with `length` bytes (or `body` of them).
    fn framed(length: u32, body: usize) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&length.to_be_bytes());
        out.resize(MESSAGE_HEADER_BYTES + body, 7);
        out
    }

    #[test]
    fn headers_are_followed_across_chunks_and_the_first_one_too_large_refuses() {
        let mut body = SizeLimited::new(Body::empty(), Rpc::ClaimNext, 10);
        let mut bytes = framed(10, 10);
        bytes.extend(framed(0, 0));
        bytes.extend(framed(3, 3));
        // Fed one byte at a time and in odd pieces, the same messages pass.
        for piece in bytes.chunks(1) {
            body.scan(piece).unwrap();
        }
        for piece in bytes.chunks(4) {
            body.scan(piece).unwrap();
        }
        assert_eq!((body.header_read, body.message_left), (0, 0));
        // A header split over two chunks that declares 11 bytes: refused at its last byte, unread.
        let big = framed(11, 0);
        body.scan(&big[..2]).unwrap();
        let refused = body.scan(&big[2..]).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::OutOfRange);
        assert_eq!(
            refused.message(),
            "the request is larger than ClaimNext accepts (10 bytes)"
        );
        // After a good message, a second one too large.
        let mut body = SizeLimited::new(Body::empty(), Rpc::ClaimNext, 10);
        let mut two = framed(2, 2);
        two.extend(framed(u32::MAX, 1));
        assert!(body.scan(&two).is_err());
    }
}
