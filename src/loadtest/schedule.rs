//! The open-loop schedule: when each request is meant to be sent, and how far the tool fell behind it.
//!
//! Latency is measured from the intended send time, not from when the tool got round to sending, so a
//! stalled target is charged for the requests it kept waiting (no coordinated omission). Knows nothing of
//! gRPC; pure arithmetic on instants so that it can be tested without a clock.

use std::time::Duration;

use tokio::time::Instant;

/// Requests `0, 1, 2, …` at `rate` per second from `start`, until `end` (exclusive).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    end: Instant,
    rate: f64,
}

impl Schedule {
    /// `None` unless `rate` is finite and above zero.
    pub fn new(start: Instant, rate: f64, length: Duration) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then_some(Self {
            start,
            end: start + length,
            rate,
        })
    }

    /// When request `n` is meant to go out; `None` once that is past the end.
    pub fn intended(&self, n: u64) -> Option<Instant> {
        let at = self.start + Duration::from_secs_f64(n as f64 / self.rate);
        (at < self.end).then_some(at)
    }

    /// How many requests the schedule holds.
    pub fn len(&self) -> u64 {
        ((self.end - self.start).as_secs_f64() * self.rate).ceil() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How far behind its schedule the tool sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    /// Requests sent more than [`Lag::LATE`] after their intended time.
    pub late: u64,
    /// The worst lateness seen.
    pub max: Duration,
}

impl Lag {
    /// Later than this, a request counts as off schedule (tokio's timer has a 1 ms grain).
    pub const LATE: Duration = Duration::from_millis(10);

    pub fn note(&mut self, intended: Instant, sent: Instant) {
        let behind = sent.saturating_duration_since(intended);
        if behind > Self::LATE {
            self.late += 1;
        }
        self.max = self.max.max(behind);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn requests_are_evenly_spaced_and_stop_at_the_end() {
        let start = Instant::now();
        let s = Schedule::new(start, 4.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.intended(0), Some(start));
        assert_eq!(s.intended(1), Some(start + Duration::from_millis(250)));
        assert_eq!(s.intended(7), Some(start + Duration::from_millis(1750)));
        assert_eq!(s.intended(8), None);
        assert_eq!(s.len(), 8);
        let frac = Schedule::new(start, 2.5, Duration::from_secs(1)).unwrap();
        assert_eq!(frac.intended(2), Some(start + Duration::from_millis(800)));
        assert_eq!(frac.intended(3), None);
        assert_eq!(frac.len(), 3);
    }

    #[test]
    fn a_rate_must_be_positive_and_finite() {
        let start = Instant::now();
        assert!(Schedule::new(start, 0.0, Duration::from_secs(1)).is_none());
        assert!(Schedule::new(start, -1.0, Duration::from_secs(1)).is_none());
        assert!(Schedule::new(start, f64::NAN, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn lag_counts_late_sends_and_keeps_the_worst() {
        let t = Instant::now();
        let mut lag = Lag::default();
        lag.note(t, t + Duration::from_millis(2));
        assert_eq!(lag.late, 0);
        lag.note(t, t + Duration::from_millis(30));
        lag.note(t + Duration::from_secs(1), t); // early: not late
        assert_eq!(lag.late, 1);
        assert_eq!(lag.max, Duration::from_millis(30));
    }
}
