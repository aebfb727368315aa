//! Every reason code the gateway answers with, in one list: the `reason` of the
//! `google.rpc.ErrorInfo` (domain `idgate`) that every refusal carries.
//!
//! [`ErrorReason`] is the only source of these strings. The domain's input refusals
//! ([`Reason`]) and stored case refusals ([`CaseRefusal`]) keep their codes where they are declared
//! and are wrapped here; the transport's own answers are declared below. A code is part of the
//! public contract: never renamed or reused. Must never carry input.

use crate::domain::{CaseRefusal, Reason};

/// Declares the transport's own reasons with their codes, next to the wrapped domain reasons.
macro_rules! error_reasons {
    ($( $(#[$vmeta:meta])* $variant:ident => $code:literal ),* $(,)?) => {
        /// One reason a call is refused, as answered in `ErrorInfo.reason`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorReason {
            /// The input failed a domain check (`INVALID_ARGUMENT` or `FAILED_PRECONDITION`).
            Refused(Reason),
            /// The case ended refused; the refusal is stored with it and answered again on a retry.
            Case(CaseRefusal),
            $( $(#[$vmeta])* $variant ),*
        }

        impl ErrorReason {
            /// The transport's own reasons, in declaration order (generated from the same list as
            /// the enum, so complete by construction).
            const OWN: &'static [ErrorReason] = &[$(ErrorReason::$variant),*];

            /// The stable code sent as `ErrorInfo.reason`.
            pub const fn code(self) -> &'static str {
                match self {
                    ErrorReason::Refused(reason) => reason.code(),
                    ErrorReason::Case(refusal) => refusal.code(),
                    $( ErrorReason::$variant => $code ),*
                }
            }
        }
    };
}

error_reasons! {
    /// The request is not a valid protobuf encoding of its type (`INVALID_ARGUMENT`).
    MessageMalformed => "MESSAGE_MALFORMED",
    /// No sealed payload (`INVALID_ARGUMENT`).
    PayloadMissing => "PAYLOAD_MISSING",
    /// The sealed payload does not open, whatever the cause (`INVALID_ARGUMENT`, docs/api.md §2).
    PayloadUnopenable => "PAYLOAD_UNOPENABLE",
    /// The call came without a client certificate (`UNAUTHENTICATED`).
    CertificateRequired => "CERTIFICATE_REQUIRED",
    /// The client certificate names no known role, or no usable principal (`PERMISSION_DENIED`).
    CertificateUnrecognized => "CERTIFICATE_UNRECOGNIZED",
    /// The caller's role may not call this RPC (`PERMISSION_DENIED`).
    RoleNotAllowed => "ROLE_NOT_ALLOWED",
    /// The connection's client certificate was put on the deny list (`UNAUTHENTICATED`).
    CertificateRevoked => "CERTIFICATE_REVOKED",
    /// The call's deadline passed before its answer was ready (`DEADLINE_EXCEEDED`).
    DeadlineExceeded => "DEADLINE_EXCEEDED",
    /// Too many `Verify` calls in flight; shed (`RESOURCE_EXHAUSTED`, with a `RetryInfo`).
    Overloaded => "OVERLOADED",
    /// An abuse limit was reached (`RESOURCE_EXHAUSTED`, with a `RetryInfo`).
    RateLimited => "RATE_LIMITED",
    /// The same ids with another request (`ALREADY_EXISTS`).
    RequestIdReused => "REQUEST_ID_REUSED",
    /// The same request is still being processed (`UNAVAILABLE`).
    InProgress => "IN_PROGRESS",
    /// A stored record failed its integrity check (`INTERNAL`).
    RecordIntegrity => "RECORD_INTEGRITY",
    /// An unknown case, or one of another client (`NOT_FOUND`; the same answer for both).
    NotFound => "NOT_FOUND",
    /// The store failed; retry (`UNAVAILABLE`).
    StoreUnavailable => "STORE_UNAVAILABLE",
    /// A fault of the gateway itself (`INTERNAL`).
    Internal => "INTERNAL",
    /// The case is no longer pending review (`FAILED_PRECONDITION`).
    NotPending => "NOT_PENDING",
    /// No live lease of the caller on the case (`FAILED_PRECONDITION`).
    LeaseExpired => "LEASE_EXPIRED",
    /// The case is leased to another reviewer (`PERMISSION_DENIED`).
    ForeignLease => "FOREIGN_LEASE",
    /// Not a usable X25519 public key (`INVALID_ARGUMENT`).
    ReviewerKeyInvalid => "REVIEWER_KEY_INVALID",
    /// The reviewer has registered no key (`FAILED_PRECONDITION`).
    NoReviewerKey => "NO_REVIEWER_KEY",
    /// A reviewer's reason code of the wrong shape (`INVALID_ARGUMENT`).
    ReasonCodeInvalid => "REASON_CODE_INVALID",
    /// A decision other than approve or reject (`INVALID_ARGUMENT`).
    DecisionInvalid => "DECISION_INVALID",
    /// The case needs storing for review, but no key-encryption key may wrap now (every KEK's
    /// epoch is over): nothing was stored (`UNAVAILABLE`; retry once the operator has rotated).
    KekUnavailable => "KEK_UNAVAILABLE",
    /// A consent withdrawal without a known scope (`INVALID_ARGUMENT`).
    ConsentScopeInvalid => "CONSENT_SCOPE_INVALID",
    /// A `page_token` that no listing handed out (`INVALID_ARGUMENT`).
    PageTokenInvalid => "PAGE_TOKEN_INVALID",
    /// The `Verify` deadline leaves the providers less than `server.min_provider_budget_ms`: nothing
    /// was started (`DEADLINE_EXCEEDED`; retry with a longer deadline).
    DeadlineTooShort => "DEADLINE_TOO_SHORT",
    /// The client certificate's CN is a name the gateway writes in the audit trail as itself
    /// (`PERMISSION_DENIED`).
    PrincipalReserved => "PRINCIPAL_RESERVED",
}

impl ErrorReason {
    /// Every reason the gateway answers with: the domain's, the stored case refusals, the
    /// transport's own.
    pub fn all() -> impl Iterator<Item = ErrorReason> {
        Reason::ALL
            .iter()
            .copied()
            .map(ErrorReason::Refused)
            .chain(CaseRefusal::ALL.iter().copied().map(ErrorReason::Case))
            .chain(Self::OWN.iter().copied())
    }

    /// The reason `code` names (for clients reading an answer); `None` for a code this version
    /// does not know.
    pub fn from_code(code: &str) -> Option<ErrorReason> {
        Self::all().find(|reason| reason.code() == code)
    }
}

impl From<Reason> for ErrorReason {
    fn from(reason: Reason) -> Self {
        ErrorReason::Refused(reason)
    }
}

impl From<CaseRefusal> for ErrorReason {
    fn from(refusal: CaseRefusal) -> Self {
        ErrorReason::Case(refusal)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    /// The reasons the public documentation names, copied here as the contract: `docs/api.md` §10
    /// lists them (and §3, §9, §11 of it, `docs/operations.md` and `docs/keys-and-retention.md` the
    /// sections they come from). Each must exist, spelt the same.
    const DOCUMENTED: &[&str] = &[
        // docs/api.md §10, "Refusals"
        "ID_NUMBER_CHECKSUM",
        "ID_NUMBER_BIRTH_DATE",
        "UNDERAGE",
        "NAME_INVALID",
        "PHONE_INVALID",
        "FACE_IMAGE_MISSING",
        "IMAGE_FORMAT",
        "IMAGE_TOO_LARGE",
        "IMAGE_DIMENSIONS",
        "CONSENT_MISSING",
        "PAYLOAD_UNOPENABLE",
        "MESSAGE_MALFORMED",
        "REQUEST_ID_REUSED",
        "FACE_IMAGE_UNUSABLE",
        "IN_PROGRESS",
        "STORE_UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "RECORD_INTEGRITY",
        "RATE_LIMITED",
        "ID_ACCOUNT_LIMIT",
        "ROLE_NOT_ALLOWED",
        "CERTIFICATE_UNRECOGNIZED",
        // docs/api.md §11, `server.max_in_flight_verify`
        "OVERLOADED",
        // docs/operations.md, "Revoking a client certificate" (deny list)
        "CERTIFICATE_REVOKED",
        // docs/api.md §9 (separate biometric consent)
        "BIOMETRIC_CONSENT_MISSING",
        "BIOMETRIC_CONSENT_INVALID",
        // docs/keys-and-retention.md, "Key epochs and destruction"
        "KEK_UNAVAILABLE",
        // docs/api.md §9 (consent withdrawal)
        "CONSENT_SCOPE_INVALID",
        // docs/api.md §9, ListAuditEvents
        "PAGE_TOKEN_INVALID",
        // docs/api.md §10, "Refusals"
        "DEADLINE_TOO_SHORT",
        // docs/api.md §3 (reserved principal)
        "PRINCIPAL_RESERVED",
    ];

    /// Reasons the gateway answers with that the documentation does not name (yet). A new reason
    /// lands in one of the two lists on purpose.
    const NOT_DOCUMENTED: &[&str] = &[
        "REQUEST_ID_INVALID",
        "ACCOUNT_ID_INVALID",
        "PURPOSE_INVALID",
        "CONSENT_INVALID",
        "NAME_MISSING",
        "ID_NUMBER_MISSING",
        "ID_NUMBER_FORMAT",
        "PHONE_MISSING",
        "IMAGE_MALFORMED",
        "PAYLOAD_MISSING",
        // Unreachable over mutual TLS (the handshake requires a certificate); kept by the check.
        "CERTIFICATE_REQUIRED",
        "NOT_FOUND",
        "INTERNAL",
        "NOT_PENDING",
        "LEASE_EXPIRED",
        "FOREIGN_LEASE",
        "REVIEWER_KEY_INVALID",
        "NO_REVIEWER_KEY",
        "REASON_CODE_INVALID",
        "DECISION_INVALID",
    ];

    #[test]
    fn every_documented_reason_exists_spelt_the_same() {
        for code in DOCUMENTED {
            let reason = ErrorReason::from_code(code);
            assert!(reason.is_some(), "{code} is documented but never answered");
            assert_eq!(reason.map(ErrorReason::code), Some(*code));
        }
    }

    #[test]
    fn every_reason_is_documented_or_listed_as_not_yet() {
        let answered: BTreeSet<&str> = ErrorReason::all().map(ErrorReason::code).collect();
        let known: BTreeSet<&str> = DOCUMENTED.iter().chain(NOT_DOCUMENTED).copied().collect();
        let extras: Vec<&&str> = answered.difference(&known).collect();
        assert!(extras.is_empty(), "reasons neither documented nor listed: {extras:?}");
        let stale: Vec<&&str> = known.difference(&answered).collect();
        assert!(stale.is_empty(), "listed but never answered: {stale:?}");
    }

    #[test]
    fn codes_are_unique_screaming_snake_and_round_trip() {
        let mut seen = HashSet::new();
        for reason in ErrorReason::all() {
            let code = reason.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(!code.is_empty() && !code.starts_with('_') && !code.ends_with('_'));
            assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{code}");
            assert_eq!(ErrorReason::from_code(code), Some(reason));
        }
        assert_eq!(
            seen.len(),
            Reason::ALL.len() + CaseRefusal::ALL.len() + ErrorReason::OWN.len()
        );
    }
}
