//! [`AuditLog`] of the embedded store: a vector in appending order; event ids are sequence numbers.

use super::MemoryStore;
use crate::store::{AuditEvent, AuditLog, StoreError};

#[async_trait::async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        state.audit_seq += 1;
        let seq = state.audit_seq;
        let until = event.at_unix.saturating_add(retention_seconds as i64);
        state.audit.push((seq, event, until));
        Ok(())
    }

    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError> {
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
}
