//! The audit trail: an append-only log of who did what to which case, kept longer than case data.
//!
//! Must never hold personal data (ids, principals, actions, times and short details only), and never
//! change or remove an event except by its retention running out.

use super::StoreError;

/// Declares [`AuditAction`] from one list of (variant, stored string), with the fallback for a
/// string this version does not know.
macro_rules! audit_actions {
    ($( $(#[$vmeta:meta])* $variant:ident => $text:literal ),* $(,)?) => {
        /// What an audit event says happened. Stored and listed as its string (`erase_subject`, …),
        /// which never changes: entries outlive the version that wrote them.
        #[derive(Debug, Clone)]
        pub enum AuditAction {
            $( $(#[$vmeta])* $variant, )*
            /// An action this version does not record (written by another version): kept as
            /// stored, so that every entry of the trail stays listable. Equal to the known action
            /// of the same string.
            Other(String),
        }

        impl AuditAction {
            /// Every action this version records, in declaration order.
            pub const KNOWN: &'static [AuditAction] = &[$(AuditAction::$variant),*];

            /// The stored string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( AuditAction::$variant => $text, )*
                    AuditAction::Other(text) => text,
                }
            }

            /// The action a stored string names; never fails (see [`AuditAction::Other`]).
            pub fn parse(text: &str) -> AuditAction {
                match text {
                    $( $text => AuditAction::$variant, )*
                    other => AuditAction::Other(other.to_owned()),
                }
            }
        }
    };
}

audit_actions! {
    /// A reviewer registered (or replaced) their X25519 key.
    ReviewerKeyRegistered => "reviewer_key_registered",
    /// A reviewer leased a case.
    CaseClaimed => "case_claimed",
    /// A claimed case's material was sealed to the reviewer's key and handed out.
    CaseMaterialHandedOut => "case_material_handed_out",
    /// A reviewer approved or rejected a case.
    CaseDecided => "case_decided",
    /// A reviewer gave a case back before deciding.
    CaseReleased => "case_released",
    /// An applicant added review material to a pending case.
    SupplementAdded => "supplement_added",
    /// Data keys were re-wrapped under the current KEK.
    PiiRewrapped => "pii_rewrapped",
    /// The retention sweep expired pending cases.
    RetentionExpired => "retention_expired",
    /// A subject's cases were erased on request.
    EraseSubject => "erase_subject",
    /// An applicant withdrew consent (all of it, or only the biometric part) for an account.
    ConsentWithdrawn => "consent_withdrawn",
    /// A stored case record failed its integrity check.
    RecordIntegrityFailed => "record_integrity_failed",
}

/// By stored string: `Other("erase_subject")` is `EraseSubject`.
impl PartialEq for AuditAction {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for AuditAction {}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the append-only audit trail. No personal data: ids, principals, actions, times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at_unix: i64,
    /// Who acted: a certificate CN, or `idgate` for the gateway itself (retention, key rotation).
    pub actor: String,
    /// What happened, e.g. `erase_subject`, `retention_expired`, `pii_rewrapped`.
    pub action: AuditAction,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_stored_as_today_and_unknown_ones_are_kept() {
        // The strings entries already in a trail hold: never change these.
        let stored = [
            (AuditAction::ReviewerKeyRegistered, "reviewer_key_registered"),
            (AuditAction::CaseClaimed, "case_claimed"),
            (AuditAction::CaseMaterialHandedOut, "case_material_handed_out"),
            (AuditAction::CaseDecided, "case_decided"),
            (AuditAction::CaseReleased, "case_released"),
            (AuditAction::SupplementAdded, "supplement_added"),
            (AuditAction::PiiRewrapped, "pii_rewrapped"),
            (AuditAction::RetentionExpired, "retention_expired"),
            (AuditAction::EraseSubject, "erase_subject"),
            (AuditAction::ConsentWithdrawn, "consent_withdrawn"),
            (AuditAction::RecordIntegrityFailed, "record_integrity_failed"),
        ];
        assert_eq!(stored.len(), AuditAction::KNOWN.len());
        for (action, text) in stored {
            assert_eq!(action.as_str(), text);
            assert_eq!(AuditAction::parse(text), action);
            assert!(!matches!(AuditAction::parse(text), AuditAction::Other(_)), "{text}");
        }
        let unknown = AuditAction::parse("case_expired");
        assert!(matches!(&unknown, AuditAction::Other(text) if text == "case_expired"));
        assert_eq!(unknown.as_str(), "case_expired");
        assert_eq!(AuditAction::Other("erase_subject".into()), AuditAction::EraseSubject);
    }
}
