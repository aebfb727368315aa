//! Storage of cases: small interfaces, one per concern, and backends that pass the same conformance
//! suites (`tests/conformance/`, one per interface, on the embedded store, Redis standalone and Redis
//! Cluster).
//!
//! | interface | file | what it keeps |
//! |---|---|---|
//! | [`CaseStore`] | `cases.rs` | cases, the idempotency index, a pending case's sealed data |
//! | [`RetentionStore`] | `retention.rs` | the retention sweep and erasure of an account |
//! | [`AuditLog`] | `audit.rs` | the append-only audit trail |
//! | [`LimitStore`] | `limits.rs` | rate windows and anchor bindings (one ID number, few accounts) |
//! | [`KeyMaintenance`] | `keys.rs` | re-wrapping data keys under a new KEK |
//! | [`ReviewQueue`] | `review.rs` | the manual-review queue: leases, four-eyes, supplements |
//!
//! [`Store`] is all of the first five together, for code that needs the whole store; a use case that
//! needs one concern takes that interface. A backend is a folder with one file per interface:
//! [`memory`] (embedded) and [`redis`] (standalone and Cluster); [`setup`] builds the one `[store]`
//! names.
//!
//! What is stored (docs/design.md §3):
//! - a [`CaseRecord`] per verification: ids, purpose, status, timestamps, which provider answered — no
//!   personal data;
//! - the idempotency index `(account_id, request_id) → case`, so a retried request gets the same answer
//!   and never calls a provider twice;
//! - for a case pending review only, its personal data sealed under per-case data keys
//!   ([`SealedPii`]): the identity material under one, the face under another ([`PiiPart`]), in
//!   separate values; both destroyed when the case reaches a final status or its retention ends, and
//!   the face alone when biometric consent is withdrawn.
//!
//! A store never sees plaintext personal data, never decides anything, and never talks gRPC.

mod audit;
mod cases;
#[cfg(test)]
pub(crate) mod failing;
mod keys;
mod limits;
pub mod memory;
pub mod redis;
mod retention;
mod review;
pub mod setup;

pub use audit::{AuditAction, AuditEvent, AuditLog};
pub use cases::{Begin, CaseRecord, CaseStatus, CaseStore, Finish, PiiPart, SealedPii, SealedValue};
pub use keys::KeyMaintenance;
pub use limits::{AnchorClaim, LimitStore};
pub use retention::RetentionStore;
pub use review::{Claim, Lease, QueueStats, ReviewError, ReviewQueue, ReviewState, ReviewVerdict};

/// Whether a lease ending at `until_unix` still holds at `now_unix`, judged against a fresh lease of
/// the same kind, which would end at `fresh_until_unix`. Both kinds of lease (a gateway processing a
/// case, a reviewer holding one) follow this rule, and the Redis scripts spell it out the same way.
///
/// A lease holds until its end — unless more than twice its length is left, which only a clock that
/// has gone back since the lease was taken can produce (gateways' clocks may disagree by up to one
/// lease length). Such a lease is void: a backwards clock jump never stretches a lease by the size
/// of the jump.
pub fn lease_holds(until_unix: i64, now_unix: i64, fresh_until_unix: i64) -> bool {
    let length = fresh_until_unix.saturating_sub(now_unix);
    until_unix > now_unix && until_unix.saturating_sub(now_unix) <= length.saturating_mul(2)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable,
    #[error("case not found")]
    NotFound,
    /// The change does not fit the case's current state (a race or a stale caller).
    #[error("the case is no longer in a state that allows this change")]
    Conflict,
    /// A stored case record failed its integrity check (edited inside the store). Carries the case
    /// id only; such a record is never used for an answer.
    #[error("a stored case record failed its integrity check")]
    Integrity { case_id: String },
}

/// The whole storage interface (every concern but the review queue), for code that needs all of it.
/// Every change of one case is atomic. Implemented by every type that implements the parts.
///
/// Through `dyn Store` every method of the parts can be called without importing their traits; on a
/// concrete store, import the interfaces called.
pub trait Store: CaseStore + RetentionStore + AuditLog + LimitStore + KeyMaintenance {}

impl<T: CaseStore + RetentionStore + AuditLog + LimitStore + KeyMaintenance + ?Sized> Store for T {}
