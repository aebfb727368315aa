//! Limits: fixed-window rate counters, and the anchor bindings behind "one ID number, a limited
//! number of anchor accounts".
//!
//! A binding is made only in the same atomic step that makes an anchor case `Verified` (by
//! [`CaseStore::finish`](super::CaseStore::finish) or a final review approval, given an
//! [`AnchorClaim`]); this interface only counts and reads. Must never bind an account without a
//! verified case, nor leave a binding behind a step that failed.

use super::StoreError;

/// The "one ID number, a limited number of anchor accounts" rule, applied by the store in the same
/// atomic step that would make an anchor case `Verified` (the provider path's `finish` and the
/// review path's final approval). The binding exists only together with a `Verified` case: a step
/// that fails leaves none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorClaim {
    /// The blind index (current key) under which the case's account is bound.
    pub index: String,
    /// Every blind index of the same ID number to count bound accounts in (the current one and
    /// those of older blind-index keys still within the binding's lifetime), so that a key
    /// rotation never resets the limit.
    pub consult: Vec<String>,
    /// Accounts one ID number may bind.
    pub max_accounts: u32,
    /// How long a binding is kept after its last change.
    pub ttl_seconds: u64,
}

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
