//! Load shedding for `Verify`: at most a fixed number of calls in flight across all connections. A call
//! past the limit is answered at once with `RESOURCE_EXHAUSTED` (reason `OVERLOADED`, with a
//! `RetryInfo`) instead of queueing, so an overloaded gateway keeps its latency and memory bounded and
//! clients back off.
//!
//! A tower wrapper around the generated service: it looks only at the request path, never at the body.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_types::{ErrorDetails, StatusExt};

use super::errors::ERROR_DOMAIN;
use super::reasons::ErrorReason;

/// The path of the method that is shed.
pub const VERIFY_PATH: &str = "/idgate.v1.VerificationService/Verify";

/// The answer to a call past the limit.
pub fn overloaded(retry_after: Duration) -> tonic::Status {
    let mut details = ErrorDetails::with_error_info(
        ErrorReason::Overloaded.code(),
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    details.set_retry_info(Some(retry_after));
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "the gateway is at capacity; retry later",
        details,
    )
}

/// Wraps a service; sheds [`VERIFY_PATH`] calls past `limit` in flight. A limit of 0 sheds nothing.
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Option<Arc<Semaphore>>,
    retry_after: Duration,
    /// Counts shed calls (`idgate.load_shed`), when set.
    instruments: Option<crate::metrics::Instruments>,
}

impl<S> Shed<S> {
    pub fn new(inner: S, limit: usize, retry_after: Duration) -> Self {
        Self {
            inner,
            permits: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            retry_after,
            instruments: None,
        }
    }

    /// Counts every shed call on `instruments`.
    pub fn with_instruments(mut self, instruments: crate::metrics::Instruments) -> Self {
        self.instruments = Some(instruments);
        self
    }
}

impl<S: NamedService> NamedService for Shed<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send + 'static>>;

impl<S, B> tower_service::Service<http::Request<B>> for Shed<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let permit = match &self.permits {
            Some(permits) if request.uri().path() == VERIFY_PATH => match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    if let Some(instruments) = &self.instruments {
                        instruments.shed();
                    }
                    let response = overloaded(self.retry_after).into_http();
                    return Box::pin(async move { Ok(response) });
                }
            },
            _ => None,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            // Held until the handler has answered.
            drop(permit);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::sync::{mpsc, oneshot};
    use tower_service::Service as _;

    /// A service that answers OK when told to, so that calls can be held in flight.
    #[derive(Clone)]
    struct Held(mpsc::UnboundedSender<oneshot::Sender<()>>);

    impl tower_service::Service<http::Request<()>> for Held {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<http::Response<Body>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let (tx, rx) = oneshot::channel();
            let _ = self.0.send(tx);
            Box::pin(async move {
                let _ = rx.await;
                Ok(http::Response::new(Body::default()))
            })
        }
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap()
    }

    fn status_of(response: &http::Response<Body>) -> tonic::Status {
        tonic::Status::from_header_map(response.headers()).unwrap_or_else(|| tonic::Status::ok(""))
    }

    #[tokio::test]
    async fn verify_past_the_limit_is_shed_with_retry_info_and_admitted_again_once_a_call_ends() {
        let (tx, mut held) = mpsc::unbounded_channel();
        let mut shed = Shed::new(Held(tx), 1, Duration::from_millis(1500));
        let first = tokio::spawn(shed.call(request(VERIFY_PATH)));
        let release_first = held.recv().await.unwrap();

        let refused = shed.call(request(VERIFY_PATH)).await.unwrap();
        let status = status_of(&refused);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("OVERLOADED", "idgate"));
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_millis(1500))
        );
        assert!(held.try_recv().is_err(), "a shed call never reaches the service");

        // Other methods are not limited.
        let other = tokio::spawn(shed.call(request("/idgate.v1.VerificationService/GetVerification")));
        held.recv().await.unwrap().send(()).unwrap();
        assert_eq!(status_of(&other.await.unwrap().unwrap()).code(), tonic::Code::Ok);

        release_first.send(()).unwrap();
        assert_eq!(status_of(&first.await.unwrap().unwrap()).code(), tonic::Code::Ok);
        let again = tokio::spawn(shed.call(request(VERIFY_PATH)));
        held.recv().await.unwrap().send(()).unwrap();
        assert_eq!(status_of(&again.await.unwrap().unwrap()).code(), tonic::Code::Ok);
    }

    #[tokio::test]
    async fn every_shed_call_is_counted() {
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_periodic_exporter(exporter.clone())
            .build();
        let instruments = crate::metrics::Instruments::new(&provider.meter("test"));
        let (tx, mut held) = mpsc::unbounded_channel();
        let mut shed = Shed::new(Held(tx), 1, Duration::from_millis(10)).with_instruments(instruments);
        let first = tokio::spawn(shed.call(request(VERIFY_PATH)));
        let release = held.recv().await.unwrap();
        for _ in 0..3 {
            shed.call(request(VERIFY_PATH)).await.unwrap();
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        provider.force_flush().unwrap();
        let exported = exporter.get_finished_metrics().unwrap();
        let shed_count: u64 = exported
            .last()
            .expect("an export")
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .filter(|m| m.name() == crate::metrics::names::LOAD_SHED)
            .map(|m| match m.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => sum.data_points().map(|p| p.value()).sum(),
                _ => 0,
            })
            .sum();
        assert_eq!(shed_count, 3);
    }

    #[tokio::test]
    async fn a_zero_limit_sheds_nothing() {
        let (tx, mut held) = mpsc::unbounded_channel();
        let mut shed = Shed::new(Held(tx), 0, Duration::from_secs(1));
        let a = tokio::spawn(shed.call(request(VERIFY_PATH)));
        let b = tokio::spawn(shed.call(request(VERIFY_PATH)));
        held.recv().await.unwrap().send(()).unwrap();
        held.recv().await.unwrap().send(()).unwrap();
        assert_eq!(status_of(&a.await.unwrap().unwrap()).code(), tonic::Code::Ok);
        assert_eq!(status_of(&b.await.unwrap().unwrap()).code(), tonic::Code::Ok);
    }
}
