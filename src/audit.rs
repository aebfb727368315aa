//! The audit trail: the one way every use case records what happened, and the operators' paged
//! listing of it (`ListAuditEvents`).
//!
//! An event holds ids, principals, an action, a time and a short detail of ids and counts. It must
//! never hold personal data (names, ID numbers, phones, images), a similarity score or key material:
//! the trail is kept far longer than any case's data. Knows no gRPC, protobuf or Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::{AuditAction, AuditEvent, Store, StoreError};

/// Largest page a caller may ask for, and the batch the listing reads the trail in.
const MAX_PAGE: usize = 500;

/// A page of audit events.
pub struct AuditPage {
    pub events: Vec<(String, AuditEvent)>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<String>,
}

/// Appends to and lists the audit trail. Cheap to clone: every use case holds one.
#[derive(Clone)]
pub struct AuditTrail {
    store: Arc<dyn Store>,
    /// Stamps each event.
    clock: Arc<dyn Clock>,
    /// How long events are kept (`retention.audit_ttl_seconds`), longer than any case's data.
    ttl: Duration,
}

impl AuditTrail {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { store, clock, ttl }
    }

    /// Appends one event, stamped now. `detail` holds ids and counts only.
    pub async fn record(
        &self,
        actor: &str,
        action: AuditAction,
        case_id: Option<&str>,
        detail: String,
    ) -> Result<(), StoreError> {
        let event = AuditEvent {
            at_unix: self.clock.now_unix(),
            actor: actor.to_owned(),
            action,
            case_id: case_id.map(str::to_owned),
            detail,
        };
        self.store.append_audit(event, self.ttl.as_secs()).await
    }

    /// Audit events, oldest first, optionally only those of one case or one principal, a page at a time.
    pub async fn page(
        &self,
        case_id: Option<&str>,
        principal: Option<&str>,
        after: Option<String>,
        page_size: usize,
    ) -> Result<AuditPage, StoreError> {
        let page_size = page_size.clamp(1, MAX_PAGE);
        let mut cursor = after;
        let mut events = Vec::new();
        // Scan forward in batches until the page is full or the trail ends.
        loop {
            let batch = self.store.audit_events(cursor.as_deref(), MAX_PAGE).await?;
            let Some((last_id, _)) = batch.last() else {
                return Ok(AuditPage { events, next: None });
            };
            let last_id = last_id.clone();
            for (id, event) in batch {
                let wanted = case_id.is_none_or(|c| event.case_id.as_deref() == Some(c))
                    && principal.is_none_or(|p| event.actor == p);
                cursor = Some(id.clone());
                if wanted {
                    events.push((id, event));
                    if events.len() == page_size {
                        return Ok(AuditPage { events, next: cursor });
                    }
                }
            }
            cursor = Some(last_id);
        }
    }
}
