//! Errors become gRPC statuses here and nowhere else.
//!
//! Every refusal carries a machine-readable reason in a standard `google.rpc.ErrorInfo` detail
//! (domain `idgate`), readable by clients in any language; its reason is an [`ErrorReason`], never a
//! string. No status message ever contains input.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::reasons::ErrorReason;
use crate::domain::{CaseRefusal, Refusal, RefusalClass};
use crate::review::ReviewUseError;
use crate::store::{ReviewError, StoreError};
use crate::supplements::SupplementError;
use crate::verify::VerifyError;

pub const ERROR_DOMAIN: &str = "idgate";

/// A status with an `ErrorInfo { reason, domain: "idgate", metadata }` detail.
pub fn status_with_reason(code: Code, message: &str, reason: ErrorReason, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason.code(), ERROR_DOMAIN, metadata),
    )
}

pub fn refusal(refusal: &Refusal) -> Status {
    let reason = refusal.reason();
    let code = match reason.class() {
        RefusalClass::Malformed => Code::InvalidArgument,
        RefusalClass::NotAllowed => Code::FailedPrecondition,
    };
    match refusal.field() {
        Some(field) => status_with_reason(code, reason.message(), reason.into(), &[("field", field)]),
        None => status_with_reason(code, reason.message(), reason.into(), &[]),
    }
}

/// The one answer to a payload that does not open, whatever the cause (docs/api.md §2).
pub fn unopenable_payload() -> Status {
    status_with_reason(
        Code::InvalidArgument,
        "the sealed payload could not be opened",
        ErrorReason::PayloadUnopenable,
        &[],
    )
}

/// A call on a connection whose client certificate has been put on the deny list since the
/// connection was opened (new connections with it fail the TLS handshake).
pub fn certificate_revoked() -> Status {
    status_with_reason(
        Code::Unauthenticated,
        "the client certificate has been revoked",
        ErrorReason::CertificateRevoked,
        &[],
    )
}

/// The call's deadline passed before its answer was ready (the work may still finish: a retry with
/// the same `request_id` gets its answer).
pub fn deadline_exceeded() -> Status {
    status_with_reason(
        Code::DeadlineExceeded,
        "the deadline passed before the answer was ready; retry with the same request_id",
        ErrorReason::DeadlineExceeded,
        &[],
    )
}

pub fn invalid(reason: ErrorReason, message: &str) -> Status {
    status_with_reason(Code::InvalidArgument, message, reason, &[])
}

pub fn verify_error(error: VerifyError) -> Status {
    match error {
        VerifyError::Refused(r) => refusal(&r),
        VerifyError::PhotoUnusable { verification_id } => status_with_reason(
            Code::FailedPrecondition,
            "the face photo could not be used; take a new one and retry with a new request_id",
            CaseRefusal::FaceImageUnusable.into(),
            &[("verification_id", &verification_id)],
        ),
        VerifyError::RateLimited { retry_after_seconds } => {
            let mut details =
                ErrorDetails::with_error_info(ErrorReason::RateLimited.code(), ERROR_DOMAIN, HashMap::new());
            details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_seconds)));
            Status::with_error_details(
                Code::ResourceExhausted,
                format!("too many verifications; retry in {retry_after_seconds} s"),
                details,
            )
        }
        VerifyError::IdAccountLimit { verification_id } => status_with_reason(
            Code::FailedPrecondition,
            "this ID number already verified the maximum number of anchor accounts",
            CaseRefusal::IdAccountLimit.into(),
            &[("verification_id", &verification_id)],
        ),
        VerifyError::RequestIdReused => status_with_reason(
            Code::AlreadyExists,
            "request_id was already used for a different request",
            ErrorReason::RequestIdReused,
            &[],
        ),
        VerifyError::InProgress { verification_id } => status_with_reason(
            Code::Unavailable,
            "the same request is still being processed; retry with the same request_id or watch the verification",
            ErrorReason::InProgress,
            &[("verification_id", &verification_id)],
        ),
        VerifyError::DeadlineTooShort => status_with_reason(
            Code::DeadlineExceeded,
            "the deadline leaves too little time to ask a provider; nothing was started; retry with a longer deadline",
            ErrorReason::DeadlineTooShort,
            &[],
        ),
        VerifyError::Integrity { case_id } => {
            tracing::error!(verification_id = %case_id, "refusing to answer from a record that failed its integrity check");
            status_with_reason(
                Code::Internal,
                "a stored record failed its integrity check",
                ErrorReason::RecordIntegrity,
                &[],
            )
        }
        VerifyError::NotFound => {
            status_with_reason(Code::NotFound, "verification not found", ErrorReason::NotFound, &[])
        }
        VerifyError::Store(e) => {
            tracing::warn!(error = %e, "store failure");
            status_with_reason(
                Code::Unavailable,
                "storage is unavailable; retry",
                ErrorReason::StoreUnavailable,
                &[],
            )
        }
        VerifyError::NoWrappingKek => {
            tracing::error!(
                "a case for review was not stored: no key-encryption key may wrap now; run `idgate keys maintain` and reload"
            );
            status_with_reason(
                Code::Unavailable,
                "the case cannot be stored for review right now; retry later",
                ErrorReason::KekUnavailable,
                &[],
            )
        }
        VerifyError::Internal(what) => {
            tracing::error!(what, "internal error");
            status_with_reason(Code::Internal, "internal error", ErrorReason::Internal, &[])
        }
    }
}

/// A store failure of a use case that fails in no other way (erasure, the audit listing): answered
/// like the same failure during a verification.
pub fn store_error(error: StoreError) -> Status {
    verify_error(VerifyError::from(error))
}

/// A review-queue refusal (shared by review and supplements).
fn queue_error(error: ReviewError) -> Status {
    use ReviewError as Q;
    match error {
        Q::Store(e) => store_error(e),
        Q::NotPending => status_with_reason(
            Code::FailedPrecondition,
            "the case is no longer pending review",
            ErrorReason::NotPending,
            &[],
        ),
        Q::LeaseExpired => status_with_reason(
            Code::FailedPrecondition,
            "no live lease on this case; claim it again",
            ErrorReason::LeaseExpired,
            &[],
        ),
        Q::Foreign => status_with_reason(
            Code::PermissionDenied,
            "the case is held by another reviewer",
            ErrorReason::ForeignLease,
            &[],
        ),
    }
}

pub fn review_error(error: ReviewUseError) -> Status {
    use ReviewUseError as E;
    match error {
        E::Queue(q) => queue_error(q),
        E::BadReviewerKey => invalid(
            ErrorReason::ReviewerKeyInvalid,
            "public_key must be a valid 32-byte X25519 key",
        ),
        E::NoReviewerKey => status_with_reason(
            Code::FailedPrecondition,
            "register a reviewer key first",
            ErrorReason::NoReviewerKey,
            &[],
        ),
        E::BadReasonCode => invalid(
            ErrorReason::ReasonCodeInvalid,
            "reason_code must be 1-64 characters of A-Z, 0-9 and _",
        ),
        E::BadDecision => invalid(ErrorReason::DecisionInvalid, "decision must be APPROVE or REJECT"),
        E::Internal(what) => verify_error(VerifyError::Internal(what)),
    }
}

pub fn supplement_error(error: SupplementError) -> Status {
    use SupplementError as E;
    match error {
        E::Queue(q) => queue_error(q),
        E::NotFound => verify_error(VerifyError::NotFound),
        E::Refused(r) => refusal(&r),
        E::NoWrappingKek => verify_error(VerifyError::NoWrappingKek),
        E::Internal(what) => verify_error(VerifyError::Internal(what)),
    }
}

/// The canonical name of a gRPC status code (`INVALID_ARGUMENT`): metric attributes, load reports.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
