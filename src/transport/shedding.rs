//! Load shedding for `Verify` and `SubmitSupplement`: at most a fixed number of calls of each in flight
//! across all connections. A call past its method's limit is answered at once with
//! `RESOURCE_EXHAUSTED` (reason `OVERLOADED`, with a `RetryInfo`) instead of queueing, so an
//! overloaded gateway keeps its latency and memory bounded and clients back off. Each method has its
//! own slots and its own [`Pushback`]: a burst of supplements does not crowd out verifications.
//!
//! The delay a shed call is told adapts to the overload ([`Pushback`]): while calls are being shed,
//! it is raised once a second until about one call is shed for every two admitted, and it falls
//! back towards `server.shed_retry_after_ms` (halving each second) once nothing is shed. A fixed
//! delay lets 2 000 callers return 2 000 times a second, each sending its 200 KB body for nothing;
//! on a 2-core machine that took half the CPU the admitted calls needed (docs/performance.md).
//!
//! A tower wrapper around the generated service: it looks only at the request path, never at the body.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_types::{ErrorDetails, StatusExt};

use super::errors::ERROR_DOMAIN;
use super::reasons::ErrorReason;

/// The path of `Verify`, shed past `server.max_in_flight_verify`.
pub const VERIFY_PATH: &str = super::auth::Rpc::Verify.path();
/// The path of `SubmitSupplement`, shed past `server.max_in_flight_supplement`.
pub const SUPPLEMENT_PATH: &str = super::auth::Rpc::SubmitSupplement.path();

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

/// How often [`Pushback`] revises its delay.
const WINDOW: Duration = Duration::from_secs(1);
/// The shed calls per admitted call [`Pushback`] steers to.
const SHED_PER_ADMITTED: f64 = 0.5;

/// The retry delay shed calls are told. Once per [`WINDOW`], the delay is multiplied by the square
/// root of (shed calls per admitted call in that window ÷ [`SHED_PER_ADMITTED`]) (damped, so that it
/// settles rather than swings), but never less than halved, within `[base, max]`: callers who honour
/// it then come back at a pace that keeps the gateway's in-flight slots full without paying for
/// thousands of refused 200 KB bodies a second. Windows without shedding halve it; a whole window
/// without any call brings it back to `base`.
#[derive(Debug)]
pub struct Pushback {
    base: Duration,
    max: Duration,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    admitted: u64,
    shed: u64,
    delay: Duration,
}

impl Pushback {
    /// Starts at `base`; a `max` below `base` is taken as `base` (configuration refuses it).
    pub fn new(base: Duration, max: Duration, now: Instant) -> Self {
        Self {
            base,
            max: max.max(base),
            window: Mutex::new(Window {
                started: now,
                admitted: 0,
                shed: 0,
                delay: base,
            }),
        }
    }

    /// Notes a call admitted at `now`.
    pub fn admitted(&self, now: Instant) {
        self.with_window(now, |w| w.admitted += 1);
    }

    /// Notes a call shed at `now`; returns the delay to tell it.
    pub fn shed(&self, now: Instant) -> Duration {
        self.with_window(now, |w| {
            w.shed += 1;
            w.delay
        })
    }

    fn with_window<T>(&self, now: Instant, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= WINDOW {
            let factor = if elapsed >= 2 * WINDOW {
                // A whole window passed without a call: whatever overload there was is over.
                0.0
            } else {
                // At most halved per window: callers told a long delay are still away, and a window
                // without them says little about their coming back.
                let per_admitted = w.shed as f64 / w.admitted.max(1) as f64;
                (per_admitted / SHED_PER_ADMITTED).sqrt().max(0.5)
            };
            // No overflow panic for any configured maximum: a product too large is the maximum.
            w.delay = Duration::try_from_secs_f64(w.delay.as_secs_f64() * factor)
                .unwrap_or(self.max)
                .clamp(self.base, self.max);
            w.started = now;
            w.admitted = 0;
            w.shed = 0;
        }
        f(&mut w)
    }
}

/// Wraps a service; sheds [`VERIFY_PATH`] calls past `limit` in flight, and the calls of each path
/// given to [`Shed::limit`] past theirs. A limit of 0 sheds nothing.
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    gates: Vec<Gate>,
    retry_after: Duration,
    retry_after_max: Duration,
    /// Counts shed calls (`idgate.load_shed`), when set.
    instruments: Option<crate::metrics::Instruments>,
}

/// The in-flight slots of one method, and the retry delay its shed calls are told.
#[derive(Clone)]
struct Gate {
    path: &'static str,
    permits: Arc<Semaphore>,
    pushback: Arc<Pushback>,
}

impl<S> Shed<S> {
    /// Sheds `Verify` past `limit`, telling shed calls to retry after `retry_after`, raised up to
    /// `retry_after_max` while shedding lasts ([`Pushback`]).
    pub fn new(inner: S, limit: usize, retry_after: Duration, retry_after_max: Duration) -> Self {
        Self {
            inner,
            gates: Vec::new(),
            retry_after,
            retry_after_max,
            instruments: None,
        }
        .limit(VERIFY_PATH, limit)
    }

    /// Also sheds the calls of `path` past `limit` in flight (0: no limit), with slots and a retry
    /// delay of their own.
    pub fn limit(mut self, path: &'static str, limit: usize) -> Self {
        if limit > 0 {
            self.gates.push(Gate {
                path,
                permits: Arc::new(Semaphore::new(limit)),
                pushback: Arc::new(Pushback::new(self.retry_after, self.retry_after_max, Instant::now())),
            });
        }
        self
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
        let gate = self.gates.iter().find(|gate| gate.path == request.uri().path());
        let permit = match gate {
            Some(gate) => match gate.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    gate.pushback.admitted(Instant::now());
                    Some(permit)
                }
                Err(_) => {
                    if let Some(instruments) = &self.instruments {
                        instruments.shed(&gate.path[1..]);
                    }
                    let response = overloaded(gate.pushback.shed(Instant::now())).into_http();
                    return Box::pin(async move { Ok(response) });
                }
            },
            None => None,
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
        let mut shed = Shed::new(Held(tx), 1, Duration::from_millis(1500), Duration::from_secs(30));
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
        let mut shed =
            Shed::new(Held(tx), 1, Duration::from_millis(10), Duration::from_secs(1)).with_instruments(instruments);
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

    /// Sustained shedding raises the delay until shed callers return at the steered rate; the delay
    /// holds there, falls when fewer calls are shed, never leaves `[base, max]`, and is back to
    /// `base` once nothing is shed.
    #[test]
    fn the_retry_delay_follows_the_overload_and_returns_to_the_base() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let start = Instant::now();
        let pushback = Pushback::new(base, max, start);
        let at = |s: f64| start + Duration::from_secs_f64(s);
        // One second of calls, `shed_every` of each `of` shed; returns the delays told.
        let second = |from: f64, shed_every: usize, of: usize, calls: usize| -> Vec<Duration> {
            let mut told = Vec::new();
            for i in 0..calls {
                let now = at(from + i as f64 / calls as f64);
                if i % of < shed_every {
                    told.push(pushback.shed(now));
                } else {
                    pushback.admitted(now);
                }
            }
            told
        };
        let close = |a: Duration, b: Duration| (a.as_secs_f64() - b.as_secs_f64()).abs() < 1e-6;

        // 16 shed per admitted call: the first window is told the base, then √(16 ÷ 0.5) ≈ 5.66 ×
        // the base, then the cap.
        let first = second(0.0, 16, 17, 1700);
        assert!(first.iter().all(|d| *d == base));
        let raised = second(1.0, 16, 17, 1700);
        assert!(
            raised.iter().all(|d| close(*d, base.mul_f64(32f64.sqrt()))),
            "{:?}",
            raised[0]
        );
        let capped = second(2.0, 16, 17, 1700);
        assert!(capped.iter().all(|d| *d == max));
        // At the steered rate (one shed per two admitted) it holds; at a sixteenth of it, it still
        // only halves.
        let steady = second(3.0, 1, 3, 300);
        assert!(steady.iter().all(|d| *d == max));
        let _ = second(4.0, 1, 33, 3300);
        assert_eq!(pushback.shed(at(5.0)), max / 2);
        // Windows where few calls are shed (one per twenty admitted) halve it each time, down to the
        // base.
        let twenty_admitted = |s: f64| (0..20).for_each(|i| pushback.admitted(at(s + i as f64 / 40.0)));
        twenty_admitted(5.1);
        let mut told = Vec::new();
        for s in 6..12 {
            twenty_admitted(s as f64);
            told.push(pushback.shed(at(s as f64 + 0.9)));
        }
        assert_eq!(told[0], max / 4, "{told:?}");
        assert_eq!(told[1], max / 8, "{told:?}");
        assert_eq!(told.last(), Some(&base), "{told:?}");
        // A whole window without a call starts again from the base.
        let _ = second(12.0, 16, 17, 1700);
        assert!(pushback.shed(at(13.0)) > base);
        assert_eq!(pushback.shed(at(15.1)), base, "no call in the window after it");
        // A maximum too large to multiply is not a panic.
        let huge = Pushback::new(base, Duration::MAX, start);
        for i in 0..400 {
            let _ = huge.shed(at(i as f64 + 0.1));
            let _ = huge.shed(at(i as f64 + 0.2));
            huge.admitted(at(i as f64 + 0.3));
        }
        assert!(huge.shed(at(400.5)) > base);
    }

    #[tokio::test]
    async fn each_limited_method_has_slots_of_its_own() {
        let (tx, mut held) = mpsc::unbounded_channel();
        let mut shed =
            Shed::new(Held(tx), 1, Duration::from_secs(1), Duration::from_secs(30)).limit(SUPPLEMENT_PATH, 1);
        let verify = tokio::spawn(shed.call(request(VERIFY_PATH)));
        let release_verify = held.recv().await.unwrap();
        // Verify's slot is taken; a supplement still gets its own.
        let supplement = tokio::spawn(shed.call(request(SUPPLEMENT_PATH)));
        let release_supplement = held.recv().await.unwrap();
        let refused = shed.call(request(SUPPLEMENT_PATH)).await.unwrap();
        assert_eq!(status_of(&refused).code(), tonic::Code::ResourceExhausted);
        assert!(held.try_recv().is_err(), "a shed call never reaches the service");
        release_supplement.send(()).unwrap();
        assert_eq!(status_of(&supplement.await.unwrap().unwrap()).code(), tonic::Code::Ok);
        let again = tokio::spawn(shed.call(request(SUPPLEMENT_PATH)));
        held.recv().await.unwrap().send(()).unwrap();
        assert_eq!(status_of(&again.await.unwrap().unwrap()).code(), tonic::Code::Ok);
        release_verify.send(()).unwrap();
        assert_eq!(status_of(&verify.await.unwrap().unwrap()).code(), tonic::Code::Ok);
    }

    #[tokio::test]
    async fn a_zero_limit_sheds_nothing() {
        let (tx, mut held) = mpsc::unbounded_channel();
        let mut shed = Shed::new(Held(tx), 0, Duration::from_secs(1), Duration::from_secs(30));
        let a = tokio::spawn(shed.call(request(VERIFY_PATH)));
        let b = tokio::spawn(shed.call(request(VERIFY_PATH)));
        held.recv().await.unwrap().send(()).unwrap();
        held.recv().await.unwrap().send(()).unwrap();
        assert_eq!(status_of(&a.await.unwrap().unwrap()).code(), tonic::Code::Ok);
        assert_eq!(status_of(&b.await.unwrap().unwrap()).code(), tonic::Code::Ok);
    }
}
