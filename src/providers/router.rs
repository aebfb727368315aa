//! Routing over several providers: in order, each behind a circuit breaker, a rate-limit back-off, a
//! concurrency limit and a timeout cut from the caller's deadline; failover to the next on an error;
//! "all failed" when none answered (the caller sends the case to manual review).
//!
//! The deadline is the budget: an attempt gets what is left of the deadline it is given minus a reserve
//! for deciding and storing the answer (never more than the provider's own timeout), and no attempt
//! is started with less than [`MIN_CALL_BUDGET`] of that left. An attempt cut off by that budget
//! before the provider's own timeout is *abandoned*, not failed: whoever set the deadline gave up,
//! and the provider's breaker does not count it against the provider
//! ([`CallResult::Abandoned`]). [`Router::leaves_time_for_a_call`] tells a caller beforehand whether a
//! deadline leaves providers the minimum budget worth starting a verification for.
//!
//! The router never calls the same provider twice for one request (a call that may have reached the
//! provider may be billed, and a repeat may bill twice), and never decides anything: it returns the
//! first outcome and who gave it. It logs provider names, error kinds and timings, never the request.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::breaker::{Breaker, BreakerConfig, BreakerState, CallResult};
use super::{Outcome, Provider, ProviderError, ProviderRequest};
use crate::clock::{Monotonic, TokioClock};

/// How long a provider that answered "rate limited" without saying for how long is left alone.
pub const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(1);

/// Time kept back from the caller's deadline to judge and store the answer.
pub const DEFAULT_DECIDE_RESERVE: Duration = Duration::from_millis(100);

/// The least time (after the reserve) a deadline must leave providers for a verification to start
/// (`server.min_provider_budget_ms`): an identity check over HTTPS takes a cloud provider a few
/// hundred milliseconds, so a caller leaving less than this would only pay for a call it cannot wait
/// for.
pub const DEFAULT_MIN_PROVIDER_BUDGET: Duration = Duration::from_millis(200);

/// One provider with its limits.
pub struct Route {
    provider: Arc<dyn Provider>,
    /// Longest a single call may take, whatever the caller's deadline.
    timeout: Duration,
    /// Calls in flight to this provider at most (a provider's quota, and a bulkhead when it is slow).
    in_flight: Arc<Semaphore>,
    /// Stops paying a provider that keeps failing.
    breaker: Arc<Breaker>,
    /// Used when a rate-limit answer names no retry time.
    rate_limit_backoff: Duration,
    /// After a rate-limit answer: not called again before this instant.
    backoff_until: Mutex<Option<Instant>>,
    /// Time for the breaker and the back-off.
    clock: Arc<dyn Monotonic>,
}

impl Route {
    /// A route with the default breaker and rate-limit back-off.
    pub fn new(provider: Arc<dyn Provider>, timeout: Duration, max_concurrency: usize) -> Self {
        let clock: Arc<dyn Monotonic> = Arc::new(TokioClock);
        let breaker = Breaker::new(provider.name(), BreakerConfig::default(), clock.clone());
        Self {
            provider,
            timeout,
            in_flight: Arc::new(Semaphore::new(max_concurrency.max(1))),
            breaker,
            rate_limit_backoff: DEFAULT_RATE_LIMIT_BACKOFF,
            backoff_until: Mutex::new(None),
            clock,
        }
    }

    /// Replaces the breaker with one of these thresholds (closed).
    pub fn with_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Breaker::new(self.provider.name(), config, self.clock.clone());
        self
    }

    /// Reads breaker and back-off time from `clock` (tests). The breaker restarts closed.
    pub fn with_clock(mut self, clock: Arc<dyn Monotonic>) -> Self {
        self.breaker = Breaker::new(self.provider.name(), self.breaker.config().clone(), clock.clone());
        self.clock = clock;
        self
    }

    /// How long to leave the provider alone after a rate-limit answer that names no time.
    pub fn with_rate_limit_backoff(mut self, backoff: Duration) -> Self {
        self.rate_limit_backoff = backoff;
        self
    }

    fn backing_off(&self, now: Instant) -> bool {
        let until = self.backoff_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|until| now < until)
    }

    fn back_off(&self, for_: Duration) {
        let until = self.clock.now() + for_;
        let mut slot = self.backoff_until.lock().unwrap_or_else(|p| p.into_inner());
        // Concurrent answers: keep the later end.
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }
}

/// What routing produced.
#[derive(Debug)]
pub enum Routed {
    /// A provider answered.
    Answered { provider: String, outcome: Outcome },
    /// No provider answered; each provider's error or reason for being skipped, in order (names and
    /// error kinds only).
    AllFailed { attempts: Vec<(String, ProviderError)> },
}

/// Providers in the order they are tried.
pub struct Router {
    routes: Vec<Route>,
    /// Kept back from the caller's deadline.
    reserve: Duration,
    /// What a deadline must leave (after the reserve) for a verification to be started at all.
    min_budget: Duration,
}

/// Below this much time left (after the reserve), another provider call is not started.
pub const MIN_CALL_BUDGET: Duration = Duration::from_millis(20);

/// How a call result counts for the provider's breaker. A vendor's "mismatch" or "no record" is an
/// answer, hence a success; a rate limit says nothing about the provider's health.
fn breaker_result(result: &Result<Outcome, ProviderError>) -> CallResult {
    match result {
        Ok(_) => CallResult::Success,
        // Nothing was sent: says nothing about the provider's health.
        Err(ProviderError::RateLimited { .. } | ProviderError::NotConfigured(_)) => CallResult::Ignored,
        // Refusals (credentials, signature, request shape) count too: the provider cannot answer us
        // until an operator acts, so calling it only costs time.
        Err(ProviderError::Timeout | ProviderError::Unavailable(_) | ProviderError::Refused(_))
        | Err(ProviderError::Protocol(_)) => CallResult::Failure,
    }
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Self {
        Self {
            routes,
            reserve: DEFAULT_DECIDE_RESERVE,
            min_budget: DEFAULT_MIN_PROVIDER_BUDGET,
        }
    }

    /// Sets the time kept back from every deadline to decide and store.
    pub fn with_reserve(mut self, reserve: Duration) -> Self {
        self.reserve = reserve;
        self
    }

    /// Sets what a deadline must leave providers for a verification to start
    /// ([`leaves_time_for_a_call`](Router::leaves_time_for_a_call)).
    pub fn with_min_budget(mut self, min_budget: Duration) -> Self {
        self.min_budget = min_budget;
        self
    }

    /// Whether `deadline`, less the reserve, still leaves providers the minimum budget: asked before a
    /// verification is started, so that a caller who cannot wait for any provider starts nothing.
    pub fn leaves_time_for_a_call(&self, deadline: Instant) -> bool {
        let decide_by = deadline.checked_sub(self.reserve).unwrap_or(deadline);
        decide_by.saturating_duration_since(Instant::now()) >= self.min_budget.max(MIN_CALL_BUDGET)
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Each provider's breaker state, in routing order (for metrics and health).
    pub fn breaker_states(&self) -> Vec<(String, BreakerState)> {
        self.routes
            .iter()
            .map(|r| (r.provider.name().to_owned(), r.breaker.state()))
            .collect()
    }

    /// Asks providers in order until one answers or `deadline` (minus the reserve) leaves no time.
    pub async fn check(&self, request: &ProviderRequest<'_>, deadline: Instant) -> Routed {
        let mut attempts = Vec::new();
        let decide_by = deadline.checked_sub(self.reserve).unwrap_or(deadline);
        for route in &self.routes {
            let name = route.provider.name().to_owned();
            let now = Instant::now();
            let left = decide_by.saturating_duration_since(now);
            if left < MIN_CALL_BUDGET {
                attempts.push((name, ProviderError::Timeout));
                break;
            }
            // Skips cost nothing: no call is made, so nothing is billed.
            if route.backing_off(route.clock.now()) {
                tracing::debug!(provider = %name, "provider rate-limited us recently; skipped");
                attempts.push((name, ProviderError::Unavailable("backing-off")));
                continue;
            }
            // A full provider is skipped at once rather than queued: the next one may be free.
            let Ok(_permit) = route.in_flight.try_acquire() else {
                attempts.push((name, ProviderError::Unavailable("busy")));
                continue;
            };
            let Some(ticket) = route.breaker.try_acquire() else {
                tracing::debug!(provider = %name, "circuit open; skipped");
                attempts.push((name, ProviderError::Unavailable("circuit-open")));
                continue;
            };
            let budget = left.min(route.timeout);
            let (result, abandoned) = match tokio::time::timeout(budget, route.provider.check(request)).await {
                Ok(result) => (result, false),
                // Cut off by the deadline before the provider's own timeout: the provider was not
                // given its time, so this is no failure of the provider's.
                Err(_) => (Err(ProviderError::Timeout), budget < route.timeout),
            };
            let elapsed_ms = u64::try_from(now.elapsed().as_millis()).unwrap_or(u64::MAX);
            ticket.record(if abandoned {
                CallResult::Abandoned
            } else {
                breaker_result(&result)
            });
            match result {
                Ok(outcome) => {
                    tracing::debug!(provider = %name, elapsed_ms, ?outcome, "provider answered");
                    return Routed::Answered {
                        provider: name,
                        outcome,
                    };
                }
                Err(error) => {
                    if let ProviderError::RateLimited { retry_after, .. } = &error {
                        route.back_off(retry_after.unwrap_or(route.rate_limit_backoff));
                    }
                    tracing::warn!(provider = %name, elapsed_ms, abandoned, %error, "provider failed; trying the next");
                    attempts.push((name, error));
                }
            }
        }
        Routed::AllFailed { attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualMonotonic;
    use crate::providers::CheckFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scripted provider: answers from a shared, switchable script and counts its calls.
    struct Scripted {
        name: &'static str,
        calls: AtomicUsize,
        answer: Mutex<Answer>,
    }

    #[derive(Clone)]
    enum Answer {
        Now(Result<Outcome, ProviderError>),
        After(Duration, Result<Outcome, ProviderError>),
        Hang,
    }

    impl Scripted {
        fn new(name: &'static str, answer: Answer) -> Arc<Self> {
            Arc::new(Self {
                name,
                calls: AtomicUsize::new(0),
                answer: Mutex::new(answer),
            })
        }
        fn set(&self, answer: Answer) {
            *self.answer.lock().unwrap() = answer;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Provider for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        fn check<'a>(&'a self, _: &'a ProviderRequest<'a>) -> CheckFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer.lock().unwrap().clone();
            Box::pin(async move {
                match answer {
                    Answer::Now(r) => r,
                    Answer::After(d, r) => {
                        tokio::time::sleep(d).await;
                        r
                    }
                    Answer::Hang => std::future::pending().await,
                }
            })
        }
    }

    fn request() -> ProviderRequest<'static> {
        ProviderRequest {
            name: "n",
            id_number: "11010519491231002X",
            face_image: None,
        }
    }

    fn breaker() -> BreakerConfig {
        BreakerConfig {
            window: 10,
            min_calls: 5,
            failure_rate: 0.5,
            consecutive_failures: 3,
            slow_call_ms: 0,
            slow_call_rate: 1.0,
            open_ms: 10_000,
            half_open_probes: 1,
        }
    }

    fn route(p: &Arc<Scripted>, clock: &Arc<ManualMonotonic>) -> Route {
        Route::new(p.clone() as Arc<dyn Provider>, Duration::from_secs(2), 8)
            .with_breaker(breaker())
            .with_clock(clock.clone())
    }

    fn down() -> Answer {
        Answer::Now(Err(ProviderError::Unavailable("http-5xx")))
    }

    async fn ask(router: &Router) -> Routed {
        router.check(&request(), Instant::now() + Duration::from_secs(5)).await
    }

    fn answered_by(routed: &Routed) -> Option<&str> {
        match routed {
            Routed::Answered { provider, .. } => Some(provider),
            Routed::AllFailed { .. } => None,
        }
    }

    #[tokio::test]
    async fn breaker_skips_a_failing_provider_until_the_probe_then_closes() {
        let a = Scripted::new("a", down());
        let b = Scripted::new("b", Answer::Now(Ok(Outcome::Match)));
        let clock = ManualMonotonic::new();
        let router = Router::new(vec![route(&a, &clock), route(&b, &clock)]);
        for _ in 0..10 {
            assert_eq!(answered_by(&ask(&router).await), Some("b"));
        }
        // Three consecutive failures opened it; the other seven requests cost A nothing.
        assert_eq!(a.calls(), 3);
        assert_eq!(router.breaker_states()[0], ("a".to_owned(), BreakerState::Open));
        a.set(Answer::Now(Ok(Outcome::Mismatch)));
        clock.advance(Duration::from_millis(10_000));
        // The probe goes to A; its "mismatch" is an answer, so the breaker closes.
        assert_eq!(answered_by(&ask(&router).await), Some("a"));
        assert_eq!(a.calls(), 4);
        assert_eq!(router.breaker_states()[0].1, BreakerState::Closed);
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_the_breaker() {
        let a = Scripted::new("a", down());
        let b = Scripted::new("b", Answer::Now(Ok(Outcome::Match)));
        let clock = ManualMonotonic::new();
        let router = Router::new(vec![route(&a, &clock), route(&b, &clock)]);
        for _ in 0..3 {
            ask(&router).await;
        }
        clock.advance(Duration::from_millis(10_000));
        ask(&router).await;
        assert_eq!(a.calls(), 4);
        assert_eq!(router.breaker_states()[0].1, BreakerState::Open);
        ask(&router).await;
        assert_eq!(a.calls(), 4);
    }

    #[tokio::test]
    async fn a_rate_limited_provider_is_left_alone_for_the_time_it_asks() {
        let limited = |retry_after| {
            Answer::Now(Err(ProviderError::RateLimited {
                code: "RequestLimitExceeded".into(),
                retry_after,
            }))
        };
        let a = Scripted::new("a", limited(None));
        let b = Scripted::new("b", Answer::Now(Ok(Outcome::Match)));
        let clock = ManualMonotonic::new();
        let router = Router::new(vec![
            route(&a, &clock).with_rate_limit_backoff(Duration::from_millis(500)),
            route(&b, &clock),
        ]);
        assert_eq!(answered_by(&ask(&router).await), Some("b"));
        assert_eq!(answered_by(&ask(&router).await), Some("b"));
        assert_eq!(a.calls(), 1, "backing off");
        clock.advance(Duration::from_millis(500));
        a.set(limited(Some(Duration::from_secs(3))));
        ask(&router).await;
        assert_eq!(a.calls(), 2);
        clock.advance(Duration::from_millis(2_999));
        ask(&router).await;
        assert_eq!(a.calls(), 2, "the provider's own retry time wins");
        clock.advance(Duration::from_millis(1));
        a.set(Answer::Now(Ok(Outcome::Match)));
        assert_eq!(answered_by(&ask(&router).await), Some("a"));
        // Rate limits are not failures: the breaker stayed closed throughout.
        assert_eq!(router.breaker_states()[0].1, BreakerState::Closed);
    }

    #[tokio::test]
    async fn each_attempt_gets_what_is_left_of_the_deadline_minus_the_reserve() {
        let a = Scripted::new("a", Answer::Hang);
        let b = Scripted::new("b", Answer::After(Duration::from_millis(20), Ok(Outcome::Match)));
        let router = Router::new(vec![
            Route::new(a.clone() as Arc<dyn Provider>, Duration::from_secs(30), 8),
            Route::new(b.clone() as Arc<dyn Provider>, Duration::from_secs(30), 8),
        ])
        .with_reserve(Duration::from_millis(100));
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        // A (30 s timeout) may use what is left before the reserve; then nothing is left for B.
        let routed = router.check(&request(), deadline).await;
        assert!(Instant::now() < deadline, "answered within the deadline");
        match routed {
            Routed::AllFailed { attempts } => {
                assert_eq!(
                    attempts,
                    vec![
                        ("a".into(), ProviderError::Timeout),
                        ("b".into(), ProviderError::Timeout)
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            (a.calls(), b.calls()),
            (1, 0),
            "B was not started without time to answer"
        );
    }

    #[tokio::test]
    async fn a_call_cut_short_by_the_deadline_is_abandoned_its_own_timeout_is_a_failure() {
        let a = Scripted::new("a", Answer::After(Duration::from_secs(5), Ok(Outcome::Match)));
        let clock = ManualMonotonic::new();
        // Three failures in a row would open it; the deadline, not the provider, ends each call.
        let router = Router::new(vec![route(&a, &clock)]).with_reserve(Duration::ZERO);
        for _ in 0..10 {
            let routed = router
                .check(&request(), Instant::now() + Duration::from_millis(40))
                .await;
            assert!(matches!(routed, Routed::AllFailed { .. }), "{routed:?}");
        }
        assert_eq!(a.calls(), 10, "never skipped");
        assert_eq!(router.breaker_states()[0].1, BreakerState::Closed);

        // With all the time it asks for, a provider that does not answer within its own timeout failed.
        let router = Router::new(vec![
            Route::new(a.clone() as Arc<dyn Provider>, Duration::from_millis(40), 8)
                .with_breaker(breaker())
                .with_clock(clock.clone()),
        ]);
        for _ in 0..3 {
            ask(&router).await;
        }
        assert_eq!(router.breaker_states()[0].1, BreakerState::Open);
    }

    #[test]
    fn a_deadline_leaves_time_for_a_call_only_past_the_reserve_and_the_minimum() {
        let router = Router::new(Vec::new())
            .with_reserve(Duration::from_millis(100))
            .with_min_budget(Duration::from_millis(200));
        let now = Instant::now();
        assert!(router.leaves_time_for_a_call(now + Duration::from_secs(5)));
        assert!(!router.leaves_time_for_a_call(now + Duration::from_millis(250)));
        assert!(!router.leaves_time_for_a_call(now));
        assert!(!router.leaves_time_for_a_call(now.checked_sub(Duration::from_secs(1)).unwrap_or(now)));
        // A minimum of zero still wants the smallest budget an attempt is ever started with.
        let router = Router::new(Vec::new())
            .with_reserve(Duration::ZERO)
            .with_min_budget(Duration::ZERO);
        assert!(!router.leaves_time_for_a_call(Instant::now()));
    }

    #[tokio::test]
    async fn a_provider_that_timed_out_is_not_asked_again_for_the_same_request() {
        let a = Scripted::new("a", Answer::Hang);
        let b = Scripted::new("b", Answer::After(Duration::from_millis(20), Ok(Outcome::Match)));
        let router = Router::new(vec![
            Route::new(a.clone() as Arc<dyn Provider>, Duration::from_millis(100), 8),
            Route::new(b.clone() as Arc<dyn Provider>, Duration::from_secs(30), 8),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let routed = router.check(&request(), deadline).await;
        assert_eq!(answered_by(&routed), Some("b"));
        assert_eq!((a.calls(), b.calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_busy_provider_is_skipped_not_queued() {
        let a = Scripted::new("a", Answer::Hang);
        let b = Scripted::new("b", Answer::Now(Ok(Outcome::Match)));
        let router = Arc::new(Router::new(vec![
            Route::new(a.clone() as Arc<dyn Provider>, Duration::from_millis(200), 1),
            Route::new(b.clone() as Arc<dyn Provider>, Duration::from_secs(2), 8),
        ]));
        let r = router.clone();
        let first = tokio::spawn(async move { ask(&r).await });
        while a.calls() == 0 {
            tokio::task::yield_now().await;
        }
        let second = ask(&router).await;
        assert_eq!(answered_by(&second), Some("b"));
        assert_eq!(a.calls(), 1, "the second request did not wait for A's only slot");
        assert_eq!(answered_by(&first.await.unwrap()), Some("b"));
    }

    #[test]
    fn what_counts_against_the_breaker() {
        use CallResult::*;
        assert_eq!(breaker_result(&Ok(Outcome::Mismatch)), Success);
        assert_eq!(breaker_result(&Ok(Outcome::CannotDecide)), Success);
        assert_eq!(breaker_result(&Err(ProviderError::Timeout)), Failure);
        assert_eq!(breaker_result(&Err(ProviderError::Unavailable("connect"))), Failure);
        assert_eq!(breaker_result(&Err(ProviderError::Protocol("x".into()))), Failure);
        assert_eq!(breaker_result(&Err(ProviderError::Refused("x".into()))), Failure);
        assert_eq!(breaker_result(&Err(ProviderError::NotConfigured("scene_id"))), Ignored);
        assert_eq!(
            breaker_result(&Err(ProviderError::RateLimited {
                code: "x".into(),
                retry_after: None
            })),
            Ignored
        );
    }
}
