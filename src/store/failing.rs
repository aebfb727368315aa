//! A store that fails on purpose: wraps another and answers the N-th call with
//! [`StoreError::Unavailable`] without passing it on, as a store that died between two steps of a
//! use case would. For tests that prove no failure between steps leaves half-made state. One count
//! runs across every storage interface, so "the N-th call" means the N-th call of any of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::stream::BoxStream;

use super::{
    AuditEvent, AuditLog, Begin, CaseRecord, CaseStore, Finish, KeyMaintenance, LimitStore, PiiPart, RetentionStore,
    SealedPii, Store, StoreError,
};
use crate::crypto::envelope::WrappedKey;

pub struct FailingStore {
    inner: Arc<dyn Store>,
    /// Calls so far.
    calls: AtomicUsize,
    /// The 1-based call number that fails (0: none).
    fail_at: AtomicUsize,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(0),
        }
    }

    /// Fails the `n`-th call from now (1 = the next one); 0 = none.
    pub fn fail_call(&self, n: usize) {
        self.calls.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    fn gate(&self) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable)
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl CaseStore for FailingStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        self.gate()?;
        self.inner.begin(record, now_unix).await
    }
    async fn find(&self, account_id: &str, request_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.gate()?;
        self.inner.find(account_id, request_id).await
    }
    async fn finish(&self, id: &str, finish: Finish, now_unix: i64) -> Result<CaseRecord, StoreError> {
        self.gate()?;
        self.inner.finish(id, finish, now_unix).await
    }
    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.gate()?;
        self.inner.get(id).await
    }
    async fn watch(&self, id: &str) -> Result<Option<BoxStream<'static, CaseRecord>>, StoreError> {
        self.gate()?;
        self.inner.watch(id).await
    }
    async fn sealed_pii(&self, id: &str) -> Result<Option<SealedPii>, StoreError> {
        self.gate()?;
        self.inner.sealed_pii(id).await
    }
}

#[async_trait::async_trait]
impl RetentionStore for FailingStore {
    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError> {
        self.gate()?;
        self.inner.sweep(now_unix, records_before_unix).await
    }
    async fn erase_account(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.gate()?;
        self.inner.erase_account(account_id, principal, now_unix).await
    }
    async fn withdraw_biometrics(
        &self,
        account_id: &str,
        principal: Option<&str>,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.gate()?;
        self.inner.withdraw_biometrics(account_id, principal, now_unix).await
    }
}

#[async_trait::async_trait]
impl AuditLog for FailingStore {
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError> {
        self.gate()?;
        self.inner.append_audit(event, retention_seconds).await
    }
    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError> {
        self.gate()?;
        self.inner.audit_events(after, limit).await
    }
}

#[async_trait::async_trait]
impl LimitStore for FailingStore {
    async fn count_in_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        self.gate()?;
        self.inner.count_in_window(key, window_seconds, now_unix).await
    }
    async fn peek_window(&self, key: &str, window_seconds: u64, now_unix: i64) -> Result<u64, StoreError> {
        self.gate()?;
        self.inner.peek_window(key, window_seconds, now_unix).await
    }
    async fn anchor_accounts(&self, indexes: &[String], now_unix: i64) -> Result<Vec<String>, StoreError> {
        self.gate()?;
        self.inner.anchor_accounts(indexes, now_unix).await
    }
}

#[async_trait::async_trait]
impl KeyMaintenance for FailingStore {
    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, PiiPart, WrappedKey)>, StoreError> {
        self.gate()?;
        self.inner.wrapped_keys_not_under(kek_id, limit).await
    }
    async fn replace_wrapped_key(
        &self,
        case_id: &str,
        part: PiiPart,
        old: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool, StoreError> {
        self.gate()?;
        self.inner.replace_wrapped_key(case_id, part, old, new).await
    }
}
