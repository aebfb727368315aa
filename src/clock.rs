//! Time as an input. Domain logic asks a [`Clock`] instead of reading the system time, so tests can pin
//! "today" (ages, birth dates) and "now" (request signing, leases, retention); circuit breakers and
//! back-offs ask a [`Monotonic`] clock, so tests can move it by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Where the current time comes from.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch, UTC.
    fn now_unix(&self) -> i64;

    /// Today's date in UTC+8 (China Standard Time), the calendar that ID numbers and ages are read in.
    fn today_cst(&self) -> time::Date {
        let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
        time::OffsetDateTime::from_unix_timestamp(self.now_unix())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset)
            .date()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_unix: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_unix)))
    }
    pub fn set(&self, now_unix: i64) {
        self.0.store(now_unix, Ordering::SeqCst);
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Monotonic time: where circuit breakers and the router's back-off read the time.
pub trait Monotonic: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

/// tokio's clock (follows `tokio::time::pause()` / `advance()` in tests that enable them).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Monotonic for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualMonotonic {
    base: Instant,
    offset: Mutex<Duration>,
}

impl ManualMonotonic {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset += by;
    }
}

impl Monotonic for ManualMonotonic {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}
