//! The embedded store: everything in this process's memory, nothing kept across restarts.
//!
//! The quickstart default when no Redis is configured. It keeps the same rules as the production store
//! (idempotency, atomic changes, retention, crypto-shredding by dropping the data key) so that the
//! conformance tests hold for both. It must never be presented as durable.
//!
//! One lock over all state makes every change atomic. This file holds that state; each storage
//! interface is implemented in the file of its name (`cases.rs`, `retention.rs`, `audit.rs`,
//! `limits.rs`, `keys.rs`, `review.rs`).

mod audit;
mod cases;
mod keys;
mod limits;
pub use limits::WINDOW_KEEP_SECONDS;
mod retention;
mod review;

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::{AuditEvent, CaseRecord, CaseStatus, ReviewState, SealedPii, StoreError};

struct Entry {
    record: CaseRecord,
    pii: Option<SealedPii>,
    /// While the case is pending review: its place in the review queue.
    review: Option<ReviewState>,
    /// Arrival order in the review queue (ties within one second keep their order).
    queue_order: u64,
    /// Tells watchers about every change of `record`.
    changes: watch::Sender<CaseRecord>,
    /// The biometric consent was withdrawn while the case was being processed: if it goes to review,
    /// it keeps no face and is a document-review case.
    face_withdrawn: bool,
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
    /// blind index → (account → the verified case that bound it, forget after)
    anchors: HashMap<String, (HashMap<String, String>, i64)>,
    /// reviewer principal → X25519 public key
    reviewer_keys: HashMap<String, [u8; 32]>,
    /// Counts arrivals in the review queue.
    queue_arrivals: u64,
    /// account → tombstone field (`store::retention::Tombstone::field`) → when it was left.
    tombstones: HashMap<String, HashMap<String, i64>>,
}

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

/// Ends a pending case with a final `status`: its sealed data is destroyed (crypto-shredding), it
/// leaves the review queue, and watchers are told.
fn end_pending(entry: &mut Entry, status: CaseStatus, now_unix: i64) {
    entry.pii = None;
    entry.review = None;
    entry.record.pii_expires_at_unix = None;
    entry.record.status = status;
    entry.record.status_at_unix = now_unix;
    entry.record.updated_at_unix = now_unix;
    publish(entry);
}
