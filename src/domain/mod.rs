//! The identity-verification domain: the rules an identity submission must meet before the gateway
//! spends an upstream verification call on it, expressed as types that can only be obtained by
//! parsing.
//!
//! Nothing here does I/O, reads the clock (time comes in as `today` / `now_unix`, see
//! [`crate::clock`]), or knows about the transport. Nothing here ever prints, formats or returns
//! personal data: PII types have redacted `Debug` and no `Display`, refusals carry only a reason
//! code and a field name, and PII buffers are wiped on drop.

mod applicant;
mod case_reasons;
mod codes;
mod consent;
mod id_number;
mod ids;
mod image;
mod name;
mod phone;
mod purpose;
mod refusal;
#[cfg(test)]
pub(crate) mod test_support;

pub use applicant::{
    Applicant, FACE_IMAGE_FIELD, HANDHELD_ID_PHOTO_FIELD, ID_CARD_BACK_FIELD, ID_CARD_FRONT_FIELD, IdentityFields,
    reads_face,
};
pub use case_reasons::{CaseRefusal, ReviewReason};
pub use consent::{BiometricConsent, Consent, FaceUse, MAX_CONSENT_CLOCK_SKEW_SECS, MAX_POLICY_VERSION_LEN};
pub use id_number::{EARLIEST_BIRTH_DATE, ID_NUMBER_LEN, IdNumber};
pub use ids::{AccountId, GATEWAY_ACTOR, MAX_ID_LEN, RequestId, VerificationId};
pub use image::{Image, ImageKind, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};
pub use name::{MAX_NAME_CHARS, MIN_NAME_CHARS, NAME_SEPARATOR, Name};
pub use phone::{PHONE_DIGITS, Phone};
pub use purpose::Purpose;
pub use refusal::{Reason, Refusal, RefusalClass};
