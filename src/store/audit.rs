//! The audit trail: an append-only log of who did what to which case, kept longer than case data.
//!
//! Must never hold personal data (ids, principals, actions, times and short details only), and never
//! change or remove an event except by its retention running out.

use super::StoreError;

/// One entry of the append-only audit trail. No personal data: ids, principals, actions, times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at_unix: i64,
    /// Who acted: a certificate CN, or `idgate` for the gateway itself (retention, key rotation).
    pub actor: String,
    /// What happened, e.g. `erase_subject`, `case_expired`, `pii_rewrapped`.
    pub action: String,
    pub case_id: Option<String>,
    /// Short non-personal detail: counts, reason codes, key ids.
    pub detail: String,
}

/// The append-only audit trail.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends to the audit trail, which is kept for `retention_seconds` (longer than case data).
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError>;

    /// Audit events in order of appending, starting after `after` (an id returned earlier), at most
    /// `limit`. Returns (event id, event) pairs.
    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError>;
}
