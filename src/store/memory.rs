//! The embedded store: everything in this process's memory, nothing kept across restarts.
//!
//! The quickstart default when no Redis is configured. It keeps the same rules as the production store
//! (idempotency, atomic changes, retention, crypto-shredding by dropping the data key) so that the
//! conformance tests hold for both. It must never be presented as durable.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::{AuditEvent, Begin, CaseRecord, CaseStatus, Finish, SealedPii, Store, StoreError};
use crate::crypto::envelope::WrappedKey;

struct Entry {
    record: CaseRecord,
    pii: Option<SealedPii>,
    /// Tells watchers about every change of `record`.
    changes: watch::Sender<CaseRecord>,
}

#[derive(Default)]
struct State {
    cases: HashMap<String, Entry>,
    /// (account_id, request_id) → case id
    idempotency: HashMap<(String, String), String>,
    /// (sequence number, event, forget after)
    audit: Vec<(u64, AuditEvent, i64)>,
    audit_seq: u64,
    /// key → (window start, count)
    windows: HashMap<String, (i64, u64)>,
    /// blind index → (accounts, forget after)
    anchors: HashMap<String, (Vec<String>, i64)>,
}

/// How long a rate-limit window's counter is kept after the window starts (longest window we use).
const WINDOW_KEEP_SECONDS: i64 = 86_400;

/// The in-process store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        // A poisoned lock means a panic while changing state; refuse to serve possibly half-changed
        // data rather than panic again.
        self.state.lock().map_err(|_| StoreError::Unavailable)
    }
}

fn publish(entry: &Entry) {
    entry.changes.send_replace(entry.record.clone());
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn begin(&self, record: CaseRecord, now_unix: i64) -> Result<Begin, StoreError> {
        let mut state = self.lock()?;
        let key = (record.account_id.clone(), record.request_id.clone());
        // A key whose record was forgotten by retention may be used again.
        if let Some(existing_id) = state.idempotency.get(&key).cloned()
            && let Some(entry) = state.cases.get_mut(&existing_id)
        {
            if entry.record.status == CaseStatus::Processing
                && entry.record.lease_until_unix <= now_unix
            {
                entry.record.lease_until_unix = record.lease_until_unix;
                entry.record.updated_at_unix = now_unix;
                return Ok(Begin::Started(entry.record.clone()));
            }
            return Ok(Begin::Existing(entry.record.clone()));
        }
        let (changes, _) = watch::channel(record.clone());
        state.idempotency.insert(key, record.id.clone());
        state.cases.insert(
            record.id.clone(),
            Entry {
                record: record.clone(),
                pii: None,
                changes,
            },
        );
        Ok(Begin::Started(record))
    }

    async fn finish(
        &self,
        id: &str,
        finish: Finish,
        now_unix: i64,
    ) -> Result<CaseRecord, StoreError> {
        let mut state = self.lock()?;
        let entry = state.cases.get_mut(id).ok_or(StoreError::NotFound)?;
        if entry.record.status != CaseStatus::Processing
            || !CaseStatus::Processing.may_become(finish.status)
        {
            return Err(StoreError::Conflict);
        }
        entry.record.status = finish.status;
        entry.record.provider = finish.provider;
        entry.record.refusal = finish.refusal;
        entry.record.updated_at_unix = now_unix;
        match (finish.status, finish.pii) {
            (CaseStatus::PendingReview, Some((pii, expires_at))) => {
                entry.pii = Some(pii);
                entry.record.pii_expires_at_unix = Some(expires_at);
            }
            // Personal data is kept only for a pending review.
            _ => {
                entry.pii = None;
                entry.record.pii_expires_at_unix = None;
            }
        }
        publish(entry);
        Ok(entry.record.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self.lock()?.cases.get(id).map(|e| e.record.clone()))
    }

    async fn watch(&self, id: &str) -> Result<Option<BoxStream<'static, CaseRecord>>, StoreError> {
        let state = self.lock()?;
        let Some(entry) = state.cases.get(id) else {
            return Ok(None);
        };
        let changes = entry.changes.subscribe();
        // The current record, then each change; the stream ends right after a final status (or when
        // the case is forgotten and its sender dropped).
        let stream = futures_util::stream::unfold(
            (changes, true, false),
            |(mut changes, first, done)| async move {
                if done || (!first && changes.changed().await.is_err()) {
                    return None;
                }
                let record = changes.borrow_and_update().clone();
                let done = record.status.is_final();
                Some((record, (changes, false, done)))
            },
        );
        Ok(Some(stream.boxed()))
    }

    async fn sealed_pii(&self, id: &str) -> Result<Option<SealedPii>, StoreError> {
        Ok(self.lock()?.cases.get(id).and_then(|e| e.pii.clone()))
    }

    async fn sweep(&self, now_unix: i64, records_before_unix: i64) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let mut expired = 0;
        for entry in state.cases.values_mut() {
            let due = entry
                .record
                .pii_expires_at_unix
                .is_some_and(|at| at <= now_unix);
            if entry.record.status == CaseStatus::PendingReview && due {
                entry.pii = None;
                entry.record.pii_expires_at_unix = None;
                entry.record.status = CaseStatus::Expired;
                entry.record.updated_at_unix = now_unix;
                publish(entry);
                expired += 1;
            }
        }
        let old: Vec<String> = state
            .cases
            .values()
            .filter(|e| {
                e.record.status.is_final() && e.record.updated_at_unix < records_before_unix
            })
            .map(|e| e.record.id.clone())
            .collect();
        for id in old {
            if let Some(entry) = state.cases.remove(&id) {
                state
                    .idempotency
                    .remove(&(entry.record.account_id, entry.record.request_id));
            }
        }
        state.audit.retain(|(_, _, until)| *until > now_unix);
        state.anchors.retain(|_, (_, until)| *until > now_unix);
        state
            .windows
            .retain(|_, (start, _)| *start + WINDOW_KEEP_SECONDS > now_unix);
        Ok(expired)
    }

    async fn erase_account(
        &self,
        account_id: &str,
        now_unix: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock()?;
        let mut erased = Vec::new();
        for entry in state.cases.values_mut() {
            if entry.record.account_id == account_id
                && entry.record.status == CaseStatus::PendingReview
            {
                entry.pii = None;
                entry.record.pii_expires_at_unix = None;
                entry.record.status = CaseStatus::Erased;
                entry.record.updated_at_unix = now_unix;
                publish(entry);
                erased.push(entry.record.id.clone());
            }
        }
        erased.sort();
        Ok(erased)
    }

    async fn append_audit(
        &self,
        event: AuditEvent,
        retention_seconds: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        state.audit_seq += 1;
        let seq = state.audit_seq;
        let until = event.at_unix.saturating_add(retention_seconds as i64);
        state.audit.push((seq, event, until));
        Ok(())
    }

    async fn audit_events(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, AuditEvent)>, StoreError> {
        let after: u64 = match after {
            Some(cursor) => cursor.parse().map_err(|_| StoreError::NotFound)?,
            None => 0,
        };
        let state = self.lock()?;
        Ok(state
            .audit
            .iter()
            .filter(|(seq, _, _)| *seq > after)
            .take(limit)
            .map(|(seq, event, _)| (seq.to_string(), event.clone()))
            .collect())
    }

    async fn count_in_window(
        &self,
        key: &str,
        window_seconds: u64,
        now_unix: i64,
    ) -> Result<u64, StoreError> {
        let window = window_seconds.max(1) as i64;
        let start = now_unix - now_unix.rem_euclid(window);
        let mut state = self.lock()?;
        let slot = state.windows.entry(key.to_owned()).or_insert((start, 0));
        if slot.0 != start {
            *slot = (start, 0);
        }
        slot.1 += 1;
        Ok(slot.1)
    }

    async fn bind_anchor(
        &self,
        id_index: &str,
        account_id: &str,
        max_accounts: u32,
        ttl_seconds: u64,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let (accounts, until) = state
            .anchors
            .entry(id_index.to_owned())
            .or_insert_with(|| (Vec::new(), 0));
        if *until <= now_unix {
            accounts.clear();
        }
        if !accounts.iter().any(|a| a == account_id) {
            if accounts.len() >= max_accounts as usize {
                return Ok(false);
            }
            accounts.push(account_id.to_owned());
        }
        *until = now_unix.saturating_add(ttl_seconds as i64);
        Ok(true)
    }

    async fn wrapped_keys_not_under(
        &self,
        kek_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, WrappedKey)>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .cases
            .values()
            .filter_map(|e| {
                e.pii
                    .as_ref()
                    .map(|p| (e.record.id.clone(), p.wrapped_key.clone()))
            })
            .filter(|(_, w)| w.kek_id != kek_id)
            .take(limit)
            .collect())
    }

    async fn replace_wrapped_key(
        &self,
        case_id: &str,
        old: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        match state.cases.get_mut(case_id).and_then(|e| e.pii.as_mut()) {
            Some(pii) if &pii.wrapped_key == old => {
                pii.wrapped_key = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
