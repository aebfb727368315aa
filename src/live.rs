//! A value that can be replaced while the process runs (SIGHUP reload): key rings, the blind-index
//! keys, the client-certificate deny list. Not cryptography itself: any shared value a reload swaps.
//!
//! [`Live`] holds an `Arc` of the current value; [`Live::load`] hands out that `Arc`, so a call that
//! took it keeps the keys it started with to its end, while calls that start after a
//! [`Live::replace`] see the new ones. The switch is one pointer swap under a lock held for no
//! longer than a clone of an `Arc` (never during crypto work).
//!
//! Must never log, print or `Debug`-format what it holds.

use std::sync::{Arc, RwLock};

/// A shared, atomically replaceable value. Clones share the same slot.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self::from(Arc::new(value))
    }

    /// The current value; keep it for the length of one operation.
    pub fn load(&self) -> Arc<T> {
        // A panic while holding this lock can only happen in `Arc::clone` or a swap, neither of
        // which leaves the slot half-written: a poisoned lock still holds a whole value.
        match self.0.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `value` current for every later [`Self::load`]; returns the previous value.
    pub fn replace(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut slot) => std::mem::replace(&mut *slot, value),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), value),
        }
    }
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Prints nothing of what it holds.
impl<T> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(...)")
    }
}

impl<T> From<Arc<T>> for Live<T> {
    fn from(value: Arc<T>) -> Self {
        Self(Arc::new(RwLock::new(value)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_value_taken_before_a_replace_stays_whole_and_later_loads_see_the_new_one() {
        let live = Live::new(String::from("first"));
        let shared = live.clone();
        let in_flight = live.load();
        let previous = shared.replace(String::from("second"));
        assert_eq!(*in_flight, "first");
        assert_eq!(*previous, "first");
        assert_eq!(*live.load(), "second");
        assert_eq!(*shared.load(), "second");
    }
}
