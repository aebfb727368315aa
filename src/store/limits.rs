//! Limits: fixed-window rate counters, and the anchor bindings behind "one ID number, a limited
//! number of anchor accounts".
//!
//! A binding is made only in the same atomic step that makes an anchor case `Verified` (by
//! [`CaseStore::finish`](super::CaseStore::finish) or a final review approval, given an
//! [`AnchorClaim`]); this interface only counts and reads. Must never bind an account without a
//! verified case, nor leave a binding behind a step that failed.

use super::StoreError;

/// The rule's claim is the policy's (`decision`); the store applies it.
pub use crate::decision::AnchorClaim;

/// Rate windows and anchor bindings.
#[async_trait::async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Counts one more event under `key` in the fixed window of `window_seconds` containing `now_unix`
    /// and returns the count so far in that window. Counters expire with their window.
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError>;

    /// The count so far under `key` in the window containing `now_unix`, without counting.
    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError>;

    /// Accounts bound (by a `Verified` anchor case) under any of `indexes`, at most those seen.
    async fn anchor_accounts(&self, indexes: &[String], now_unix: i64) -> Result<Vec<String>, StoreError>;
}
