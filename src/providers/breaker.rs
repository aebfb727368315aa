//! A circuit breaker per provider: stop paying a provider that is failing, find out cheaply when it
//! has recovered.
//!
//! States, as in resilience4j / Envoy outlier detection:
//! - **Closed**: calls go through; each finished call is recorded in a count-based sliding window.
//!   The breaker opens when, with at least `min_calls` in the window, the failure rate or the slow-call
//!   rate reaches its threshold, or after `consecutive_failures` failures in a row.
//! - **Open**: calls are refused at once (the router moves on to the next provider without a call,
//!   so nothing is billed). After `open_for` it turns half-open on the next request.
//! - **Half-open**: at most `half_open_probes` calls are let through; if all of them succeed the
//!   breaker closes (with an empty window), the first failure (or slow call) re-opens it.
//!
//! What counts as a failure is the caller's business ([`CallResult`]): the router counts timeouts,
//! unreachable or failing providers, protocol violations and refusals, never a vendor's "mismatch"
//! or "no record" answer, which are successful calls. A call cut short by the time its caller had
//! left, before the provider's own timeout, is *abandoned*: no failure (the provider was not given its
//! time), only a slow call when it had already run `slow_call_ms`.
//!
//! Time comes in through [`Monotonic`](crate::clock::Monotonic) (normally tokio's clock, so
//! `tokio::time::pause()` drives it too), so that tests can move it by hand.
//!
//! This module must never see a request: it knows a provider name and call results, nothing else,
//! and it logs only state changes (provider name, from, to, reason).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Monotonic;

/// Thresholds of one breaker. Defaults suit a provider with a 1.5 s timeout and a few calls a second.
/// (Configuration's `[providers.breaker]` is `config::BreakerSettings`, checked at load and converted
/// by `providers::setup`.)
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Calls remembered in the sliding window (count-based).
    pub window: usize,
    /// Rates are only judged once the window holds this many calls.
    pub min_calls: usize,
    /// Opens when failed calls / calls in the window reach this (0 < rate <= 1).
    pub failure_rate: f64,
    /// Opens after this many failures in a row, whatever the window says (0 = off).
    pub consecutive_failures: u32,
    /// A successful call that took at least this long is "slow" (0 = off).
    pub slow_call_ms: u64,
    /// Opens when slow calls / calls in the window reach this (0 < rate <= 1).
    pub slow_call_rate: f64,
    /// How long it stays open before letting probes through.
    pub open_ms: u64,
    /// Probe calls let through while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate: 0.5,
            consecutive_failures: 5,
            slow_call_ms: 1_000,
            slow_call_rate: 0.8,
            open_ms: 30_000,
            half_open_probes: 2,
        }
    }
}

/// Where a breaker stands; what a metrics exporter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// How a call went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// The provider gave an answer (any outcome).
    Success,
    /// The provider failed (timeout, unreachable, 5xx, protocol, refusal).
    Failure,
    /// Neither: the result says nothing about the provider's health (rate limit, local refusal).
    Ignored,
    /// Given up by the caller before the provider's own timeout (its budget ran out first): never a
    /// failure, so that callers with short deadlines cannot open the breaker of a healthy provider.
    /// Counted as a slow call when it had run at least `slow_call_ms` (the provider was slow whoever
    /// gave up); otherwise it counts for nothing, like [`CallResult::Ignored`].
    Abandoned,
}

#[derive(Debug, Clone, Copy)]
struct Recorded {
    failed: bool,
    slow: bool,
}

struct Inner {
    state: BreakerState,
    /// Bumped on every transition, so that results of calls admitted under an earlier state are
    /// not held against the current one.
    generation: u64,
    window: VecDeque<Recorded>,
    consecutive: u32,
    /// Open until then.
    open_until: Instant,
    probes_started: u32,
    probes_ok: u32,
    transitions: u64,
}

/// One provider's breaker.
pub struct Breaker {
    provider: String,
    clock: Arc<dyn Monotonic>,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Leave to make one call. Give it back with [`Ticket::record`]; dropped without a record (the
/// caller gave up) it frees its half-open probe slot and counts for nothing.
#[must_use]
pub struct Ticket {
    breaker: Arc<Breaker>,
    generation: u64,
    probe: bool,
    started: Instant,
    recorded: bool,
}

impl Ticket {
    /// Records how the call made under this ticket went.
    pub fn record(mut self, result: CallResult) {
        self.recorded = true;
        let breaker = Arc::clone(&self.breaker);
        breaker.record(&self, result);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            let mut inner = self.breaker.lock();
            if inner.generation == self.generation && inner.state == BreakerState::HalfOpen {
                inner.probes_started = inner.probes_started.saturating_sub(1);
            }
        }
    }
}

impl Breaker {
    /// A closed breaker. `config` should come from settings that passed
    /// `config::BreakerSettings::validate`; out-of-range values are clamped rather than trusted.
    pub fn new(provider: impl Into<String>, config: BreakerConfig, clock: Arc<dyn Monotonic>) -> Arc<Self> {
        let mut config = config;
        let opened_at = clock.now();
        config.window = config.window.max(1);
        config.min_calls = config.min_calls.clamp(1, config.window);
        config.half_open_probes = config.half_open_probes.max(1);
        Arc::new(Self {
            provider: provider.into(),
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                window: VecDeque::with_capacity(config.window),
                consecutive: 0,
                open_until: opened_at,
                probes_started: 0,
                probes_ok: 0,
                transitions: 0,
            }),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves counters, not invariants that matter for safety.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state now (an open breaker whose wait is over reads as half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        if inner.state == BreakerState::Open && self.clock.now() >= inner.open_until {
            BreakerState::HalfOpen
        } else {
            inner.state
        }
    }

    /// The thresholds it runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// How many state changes so far (for metrics).
    pub fn transitions(&self) -> u64 {
        self.lock().transitions
    }

    /// Leave to call the provider, or `None` when the breaker refuses (open, or every half-open
    /// probe slot taken).
    pub fn try_acquire(self: &Arc<Self>) -> Option<Ticket> {
        let mut inner = self.lock();
        let now = self.clock.now();
        if inner.state == BreakerState::Open {
            if now < inner.open_until {
                return None;
            }
            self.transition(&mut inner, BreakerState::HalfOpen, "wait over");
        }
        let probe = inner.state == BreakerState::HalfOpen;
        if probe {
            if inner.probes_started >= self.config.half_open_probes {
                return None;
            }
            inner.probes_started += 1;
        }
        Some(Ticket {
            breaker: Arc::clone(self),
            generation: inner.generation,
            probe,
            started: now,
            recorded: false,
        })
    }

    fn record(&self, ticket: &Ticket, result: CallResult) {
        let elapsed = self.clock.now().saturating_duration_since(ticket.started);
        let mut inner = self.lock();
        if inner.generation != ticket.generation {
            // Admitted under an earlier state: it neither opens nor closes the current one.
            return;
        }
        let slow = self.config.slow_call_ms > 0 && elapsed >= Duration::from_millis(self.config.slow_call_ms);
        let failed = match result {
            CallResult::Ignored => return Self::forget(&mut inner, ticket),
            CallResult::Abandoned if !slow => return Self::forget(&mut inner, ticket),
            CallResult::Failure => true,
            CallResult::Success | CallResult::Abandoned => false,
        };
        match inner.state {
            BreakerState::Closed => {
                if inner.window.len() == self.config.window {
                    inner.window.pop_front();
                }
                inner.window.push_back(Recorded { failed, slow });
                // An abandoned call got no answer: it ends no run of failures.
                inner.consecutive = match result {
                    CallResult::Failure => inner.consecutive + 1,
                    CallResult::Abandoned => inner.consecutive,
                    _ => 0,
                };
                if let Some(reason) = self.should_open(&inner) {
                    self.open(&mut inner, reason);
                }
            }
            BreakerState::HalfOpen => {
                if failed {
                    self.open(&mut inner, "probe failed");
                } else if slow {
                    self.open(&mut inner, "probe slow");
                } else {
                    inner.probes_ok += 1;
                    if inner.probes_ok >= self.config.half_open_probes {
                        self.transition(&mut inner, BreakerState::Closed, "probes succeeded");
                    }
                }
            }
            // Only reachable with a ticket of the current generation, which an open breaker never
            // issues; nothing to do.
            BreakerState::Open => {}
        }
    }

    /// A result that counts for nothing: only a half-open probe slot it held is given back.
    fn forget(inner: &mut Inner, ticket: &Ticket) {
        if ticket.probe {
            inner.probes_started = inner.probes_started.saturating_sub(1);
        }
    }

    fn should_open(&self, inner: &Inner) -> Option<&'static str> {
        let c = &self.config;
        if c.consecutive_failures > 0 && inner.consecutive >= c.consecutive_failures {
            return Some("consecutive failures");
        }
        let n = inner.window.len();
        if n < c.min_calls {
            return None;
        }
        let failed = inner.window.iter().filter(|r| r.failed).count();
        if failed as f64 >= c.failure_rate * n as f64 {
            return Some("failure rate");
        }
        let slow = inner.window.iter().filter(|r| r.slow).count();
        if c.slow_call_ms > 0 && slow as f64 >= c.slow_call_rate * n as f64 {
            return Some("slow-call rate");
        }
        None
    }

    fn open(&self, inner: &mut Inner, reason: &'static str) {
        inner.open_until = self.clock.now() + Duration::from_millis(self.config.open_ms);
        self.transition(inner, BreakerState::Open, reason);
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState, reason: &'static str) {
        let from = inner.state;
        inner.state = to;
        inner.generation += 1;
        inner.transitions += 1;
        inner.probes_started = 0;
        inner.probes_ok = 0;
        if to == BreakerState::Closed {
            inner.window.clear();
            inner.consecutive = 0;
        }
        let (from, to) = (from.as_str(), to.as_str());
        if to == "open" {
            tracing::warn!(provider = %self.provider, from, to, reason, "circuit breaker state changed");
        } else {
            tracing::info!(provider = %self.provider, from, to, reason, "circuit breaker state changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualMonotonic;

    fn config() -> BreakerConfig {
        BreakerConfig {
            window: 10,
            min_calls: 4,
            failure_rate: 0.5,
            consecutive_failures: 3,
            slow_call_ms: 500,
            slow_call_rate: 0.5,
            open_ms: 1_000,
            half_open_probes: 2,
        }
    }

    fn call(b: &Arc<Breaker>, result: CallResult) {
        let ticket = b.try_acquire().unwrap();
        ticket.record(result);
    }

    fn slow_call(b: &Arc<Breaker>, clock: &ManualMonotonic, took: Duration) {
        let ticket = b.try_acquire().unwrap();
        clock.advance(took);
        ticket.record(CallResult::Success);
    }

    fn breaker(config: BreakerConfig) -> (Arc<Breaker>, Arc<ManualMonotonic>) {
        let clock = ManualMonotonic::new();
        (Breaker::new("p", config, clock.clone()), clock)
    }

    use CallResult::{Failure, Ignored, Success};

    #[test]
    fn opens_on_consecutive_failures() {
        let (b, _clock) = breaker(config());
        call(&b, Failure);
        call(&b, Failure);
        assert_eq!(b.state(), BreakerState::Closed);
        call(&b, Failure);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none(), "an open breaker refuses calls");
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let mut c = config();
        c.failure_rate = 1.0;
        let (b, _clock) = breaker(c);
        for _ in 0..4 {
            call(&b, Failure);
            call(&b, Failure);
            call(&b, Success);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn opens_on_failure_rate_only_with_enough_calls() {
        let mut c = config();
        c.consecutive_failures = 0;
        let (b, _clock) = breaker(c);
        call(&b, Failure);
        call(&b, Success);
        call(&b, Failure);
        // 2 of 3 failed, but fewer than min_calls (4) are in the window.
        assert_eq!(b.state(), BreakerState::Closed);
        call(&b, Success);
        // 2 of 4: the rate (0.5) is reached.
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn old_failures_slide_out_of_the_window() {
        let mut c = config();
        c.consecutive_failures = 0;
        c.window = 4;
        let (b, _clock) = breaker(c);
        call(&b, Failure);
        for _ in 0..20 {
            call(&b, Success);
        }
        call(&b, Failure);
        // Window is [S, S, S, F]: 25 %.
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn opens_on_slow_calls() {
        let (b, clock) = breaker(config());
        slow_call(&b, &clock, Duration::from_millis(10));
        slow_call(&b, &clock, Duration::from_millis(10));
        slow_call(&b, &clock, Duration::from_millis(600));
        assert_eq!(b.state(), BreakerState::Closed);
        slow_call(&b, &clock, Duration::from_millis(700));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn ignored_results_count_for_nothing() {
        let (b, _clock) = breaker(config());
        for _ in 0..50 {
            call(&b, Ignored);
        }
        call(&b, Failure);
        call(&b, Failure);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    fn abandoned_after(b: &Arc<Breaker>, clock: &ManualMonotonic, took: Duration) {
        let ticket = b.try_acquire().unwrap();
        clock.advance(took);
        ticket.record(CallResult::Abandoned);
    }

    #[test]
    fn calls_the_caller_gave_up_on_are_no_failures() {
        let (b, clock) = breaker(config());
        // Cut short by callers' deadlines before the slow-call threshold: nothing at all.
        for _ in 0..50 {
            abandoned_after(&b, &clock, Duration::from_millis(100));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // They end no run of failures either: two failures, an abandoned call, a third failure.
        call(&b, Failure);
        call(&b, Failure);
        abandoned_after(&b, &clock, Duration::from_millis(100));
        call(&b, Failure);
        assert_eq!(b.state(), BreakerState::Open);

        // Abandoned after running past the slow-call threshold: slow calls, which open on their rate.
        let mut c = config();
        c.consecutive_failures = 0;
        let (b, clock) = breaker(c);
        for _ in 0..3 {
            abandoned_after(&b, &clock, Duration::from_millis(600));
            assert_eq!(b.state(), BreakerState::Closed, "fewer than min_calls");
        }
        abandoned_after(&b, &clock, Duration::from_millis(600));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn an_abandoned_probe_frees_its_slot_unless_it_was_slow() {
        let (b, clock) = opened();
        clock.advance(Duration::from_millis(1_000));
        let probes: Vec<Ticket> = (0..2).map(|_| b.try_acquire().unwrap()).collect();
        assert!(b.try_acquire().is_none(), "every probe slot taken");
        let mut probes = probes.into_iter();
        probes.next().unwrap().record(CallResult::Abandoned);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let again = b.try_acquire().expect("the abandoned probe's slot is free again");
        clock.advance(Duration::from_millis(500));
        again.record(CallResult::Abandoned);
        assert_eq!(b.state(), BreakerState::Open, "a probe abandoned as slow re-opens");
        drop(probes);
    }

    fn opened() -> (Arc<Breaker>, Arc<ManualMonotonic>) {
        let (b, clock) = breaker(config());
        for _ in 0..3 {
            call(&b, Failure);
        }
        assert_eq!(b.state(), BreakerState::Open);
        (b, clock)
    }

    #[test]
    fn stays_open_until_the_wait_is_over_then_lets_only_probes_through() {
        let (b, clock) = opened();
        clock.advance(Duration::from_millis(999));
        assert!(b.try_acquire().is_none());
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_none(), "only two probes at a time");
        // A probe whose caller gave up frees its slot.
        drop(p2);
        let p2 = b.try_acquire().unwrap();
        p1.record(Success);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p2.record(Success);
        assert_eq!(b.state(), BreakerState::Closed);
        // Closed with a clean slate: two failures do not re-open it.
        call(&b, Failure);
        call(&b, Failure);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_full_wait() {
        let (b, clock) = opened();
        clock.advance(Duration::from_millis(1_000));
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        p1.record(Failure);
        assert_eq!(b.state(), BreakerState::Open);
        // The other probe's late success does not close the re-opened breaker.
        p2.record(Success);
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(999));
        assert!(b.try_acquire().is_none());
        clock.advance(Duration::from_millis(1));
        assert!(b.try_acquire().is_some());
    }

    #[test]
    fn a_slow_probe_reopens() {
        let (b, clock) = opened();
        clock.advance(Duration::from_millis(1_000));
        slow_call(&b, &clock, Duration::from_millis(500));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn results_from_before_an_opening_do_not_count_after_it() {
        let (b, clock) = breaker(config());
        let late = b.try_acquire().unwrap();
        for _ in 0..3 {
            call(&b, Failure);
        }
        clock.advance(Duration::from_millis(1_000));
        let p1 = b.try_acquire().unwrap();
        // The call admitted while closed finishes now: it is no probe.
        late.record(Success);
        p1.record(Success);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.transitions(), 2);
    }
}
