//! Why a request was refused.
//!
//! A [`Refusal`] is what every parser in [`crate::domain`] returns on bad input. It carries only a
//! [`Reason`] (a closed set of stable codes) and, for images, the name of the field. It must never
//! carry, format or log any part of the input: not the value, not a fragment of it, not its length.
//! That is why it holds no `String` at all and every message is a fixed sentence.

use std::fmt;

use super::codes::stable_codes;

/// How the transport should report a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// The request itself is wrong (gRPC `INVALID_ARGUMENT`).
    Malformed,
    /// The request is well formed but the applicant may not do this (gRPC `FAILED_PRECONDITION`).
    NotAllowed,
}

stable_codes! {
    /// One variant per distinct refusal. The [`code`](Reason::code) strings
    /// (`SCREAMING_SNAKE_CASE`) are part of the public API contract: never rename or reuse one.
    pub enum Reason {
        RequestIdInvalid => "REQUEST_ID_INVALID",
        AccountIdInvalid => "ACCOUNT_ID_INVALID",
        PurposeInvalid => "PURPOSE_INVALID",
        ConsentMissing => "CONSENT_MISSING",
        ConsentInvalid => "CONSENT_INVALID",
        NameMissing => "NAME_MISSING",
        NameInvalid => "NAME_INVALID",
        IdNumberMissing => "ID_NUMBER_MISSING",
        IdNumberFormat => "ID_NUMBER_FORMAT",
        IdNumberChecksum => "ID_NUMBER_CHECKSUM",
        IdNumberBirthDate => "ID_NUMBER_BIRTH_DATE",
        Underage => "UNDERAGE",
        PhoneMissing => "PHONE_MISSING",
        PhoneInvalid => "PHONE_INVALID",
        FaceImageMissing => "FACE_IMAGE_MISSING",
        ImageFormat => "IMAGE_FORMAT",
        ImageMalformed => "IMAGE_MALFORMED",
        ImageTooLarge => "IMAGE_TOO_LARGE",
        ImageDimensions => "IMAGE_DIMENSIONS",
        BiometricConsentMissing => "BIOMETRIC_CONSENT_MISSING",
        BiometricConsentInvalid => "BIOMETRIC_CONSENT_INVALID",
    }
}

impl Reason {
    /// Whether the request was malformed or well formed but not allowed.
    pub fn class(self) -> RefusalClass {
        match self {
            // A correctly formed request from a minor: nothing to fix in the request itself.
            Reason::Underage => RefusalClass::NotAllowed,
            // A well-formed request whose applicant did not agree to face processing: the face may
            // not be used (the applicant can consent, or ask for document review instead).
            Reason::BiometricConsentMissing => RefusalClass::NotAllowed,
            Reason::RequestIdInvalid
            | Reason::AccountIdInvalid
            | Reason::PurposeInvalid
            | Reason::ConsentMissing
            | Reason::ConsentInvalid
            | Reason::NameMissing
            | Reason::NameInvalid
            | Reason::IdNumberMissing
            | Reason::IdNumberFormat
            | Reason::IdNumberChecksum
            | Reason::IdNumberBirthDate
            | Reason::PhoneMissing
            | Reason::PhoneInvalid
            | Reason::FaceImageMissing
            | Reason::ImageFormat
            | Reason::ImageMalformed
            | Reason::ImageTooLarge
            | Reason::ImageDimensions
            | Reason::BiometricConsentInvalid => RefusalClass::Malformed,
        }
    }

    /// A fixed, human-readable sentence. Never contains input.
    pub fn message(self) -> &'static str {
        match self {
            Reason::RequestIdInvalid => "request_id must be 1-128 characters of [A-Za-z0-9._:-]",
            Reason::AccountIdInvalid => "account_id must be 1-128 characters of [A-Za-z0-9._:-]",
            Reason::PurposeInvalid => "purpose is missing or unknown",
            Reason::ConsentMissing => "consent is required",
            Reason::ConsentInvalid => {
                "consent must carry a valid policy version and a grant time that is not in the future"
            }
            Reason::NameMissing => "name is required",
            Reason::NameInvalid => "name is not a valid resident ID card name",
            Reason::IdNumberMissing => "ID number is required",
            Reason::IdNumberFormat => "ID number must be 17 digits followed by a digit or X",
            Reason::IdNumberChecksum => "ID number check digit does not match",
            Reason::IdNumberBirthDate => "ID number does not contain a valid birth date",
            Reason::Underage => "applicant must be at least 18 years old for this purpose",
            Reason::PhoneMissing => "phone number is required for this purpose",
            Reason::PhoneInvalid => "phone number must be a mainland China mobile number",
            Reason::FaceImageMissing => "face image is required for this purpose",
            Reason::ImageFormat => "image must be JPEG or PNG",
            Reason::ImageMalformed => "image header could not be read",
            Reason::ImageTooLarge => "image exceeds the maximum size",
            Reason::ImageDimensions => "image dimensions are outside the accepted range",
            Reason::BiometricConsentMissing => {
                "face recognition needs the applicant's separate biometric consent, or ask for document review"
            }
            Reason::BiometricConsentInvalid => {
                "biometric consent must carry a valid policy version and a grant time that is not in the future"
            }
        }
    }
}

/// A refused input. Holds no part of the input, so it is safe to log, format and return to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refusal {
    reason: Reason,
    field: Option<&'static str>,
}

impl Refusal {
    /// A refusal not tied to one named field (or whose reason already names it).
    pub const fn new(reason: Reason) -> Self {
        Self { reason, field: None }
    }

    /// A refusal about one named field, e.g. which image was bad. `field` must be a field *name*,
    /// never a value: the `'static` bound keeps request data out.
    pub const fn with_field(reason: Reason, field: &'static str) -> Self {
        Self {
            reason,
            field: Some(field),
        }
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The name of the offending field, where the reason alone does not say it (images).
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// Shorthand for `self.reason().code()`.
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// Shorthand for `self.reason().class()`.
    pub fn class(&self) -> RefusalClass {
        self.reason.class()
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        Self::new(reason)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.message())
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_screaming_snake() {
        let mut seen = HashSet::new();
        for r in Reason::ALL {
            let code = r.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(!code.is_empty());
            assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{code}");
            assert!(!code.starts_with('_') && !code.ends_with('_'));
        }
    }

    #[test]
    fn all_lists_each_reason_once_with_a_distinct_code() {
        // `ALL` is generated from the same list as the enum (see `stable_codes!`), so it is complete
        // by construction; this checks that no code is shared.
        let codes: std::collections::HashSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn only_underage_and_missing_biometric_consent_are_not_allowed() {
        for r in Reason::ALL {
            let expected = if matches!(r, Reason::Underage | Reason::BiometricConsentMissing) {
                RefusalClass::NotAllowed
            } else {
                RefusalClass::Malformed
            };
            assert_eq!(r.class(), expected, "{r:?}");
        }
    }

    #[test]
    fn display_is_message() {
        for r in Reason::ALL {
            let refusal = Refusal::from(*r);
            assert_eq!(refusal.to_string(), r.message());
            assert_eq!(refusal.reason(), *r);
            assert_eq!(refusal.code(), r.code());
            assert_eq!(refusal.field(), None);
            let with = Refusal::with_field(*r, "face_image");
            assert_eq!(with.field(), Some("face_image"));
            assert_eq!(with.to_string(), r.message());
        }
    }
}
