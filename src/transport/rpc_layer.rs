//! One span and one duration measurement per gRPC call, as a tower layer around every service.
//!
//! The span is named `{package.Service}/{Method}` (`otel.name`) and carries the RPC semantic
//! convention attributes; `rpc.server.call.duration` is recorded with the status code's name.
//! Duration is measured to the response headers: for unary calls the handler has finished by then;
//! for the server-streaming `WatchVerification` it is the time to the first response.
//!
//! Must never record anything from the request but its path, and the path only when it names a
//! served method (anything else is `_OTHER`, so a caller cannot grow the metric's label set).

use super::errors::code_name;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::Code;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::Instruments;

/// Services whose methods are reported by name.
const KNOWN_SERVICES: [&str; 5] = [
    "idgate.v1.VerificationService",
    "idgate.v1.ReviewService",
    "idgate.v1.AuditService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
];

/// `package.Service/Method` for a request path of a served service, else `_OTHER`.
pub fn rpc_method(path: &str) -> &str {
    let Some(full) = path.strip_prefix('/') else {
        return "_OTHER";
    };
    let Some((service, method)) = full.split_once('/') else {
        return "_OTHER";
    };
    let plausible = (1..=64).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_alphanumeric());
    if plausible && KNOWN_SERVICES.contains(&service) {
        full
    } else {
        "_OTHER"
    }
}

/// The status of a response from its headers: errors travel there ("trailers-only"); a response
/// without `grpc-status` in its headers is a handler's success (its OK follows in the trailers).
fn response_code<B>(response: &http::Response<B>) -> Code {
    match response.headers().get("grpc-status") {
        None => Code::Ok,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .map(Code::from_i32)
            .unwrap_or(Code::Unknown),
    }
}

/// W3C `traceparent` / `tracestate` from the request's metadata (HTTP/2 headers).
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Wraps every service in [`RpcService`].
#[derive(Clone)]
pub struct RpcLayer {
    instruments: Instruments,
}

impl RpcLayer {
    pub fn new(instruments: Instruments) -> Self {
        Self { instruments }
    }
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    instruments: Instruments,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for RpcService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = rpc_method(request.uri().path()).to_owned();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system.name = "grpc",
            rpc.method = %method,
            rpc.response.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // A caller's trace continues here; a malformed `traceparent` is ignored (a new trace starts).
        let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
        // For log lines: JSON logs carry the call span's fields.
        let ids = span.context().span().span_context().clone();
        if ids.is_valid() {
            span.record("trace_id", ids.trace_id().to_string());
            span.record("span_id", ids.span_id().to_string());
        }
        let started = tokio::time::Instant::now();
        let call = self.inner.call(request).instrument(span.clone());
        let instruments = self.instruments.clone();
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => response_code(response),
                Err(_) => Code::Internal,
            };
            span.record("rpc.response.status_code", code_name(code));
            // An unknown method is reported as `_OTHER` whatever its path said.
            let method = if code == Code::Unimplemented {
                "_OTHER"
            } else {
                method.as_str()
            };
            instruments.rpc_call(method, code_name(code), started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_are_named() {
        assert_eq!(
            rpc_method("/idgate.v1.VerificationService/Verify"),
            "idgate.v1.VerificationService/Verify"
        );
        assert_eq!(
            rpc_method("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        for odd in [
            "/",
            "",
            "/idgate.v1.VerificationService/",
            "/idgate.v1.Other/Verify",
            "/idgate.v1.VerificationService/Verify/x",
            "/idgate.v1.VerificationService/张三",
            "/x/y",
        ] {
            assert_eq!(rpc_method(odd), "_OTHER", "{odd:?}");
        }
    }

    #[test]
    fn status_codes_are_named_as_the_conventions_say() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::from_i32(4)), "DEADLINE_EXCEEDED");
    }
}
