//! The applicant's recorded consent to the processing of their personal information (PIPL art. 29
//! requires separate consent for sensitive personal information such as biometrics and ID numbers).
//! This module checks only that the consent record is well formed and plausibly timed; it never
//! decides whether a policy version is current, which is configuration, not domain.
//!
//! Face processing needs its own consent ([`BiometricConsent`], PIPL art. 29 and the face-recognition
//! measures art. 6), or the applicant's choice of document review instead ([`FaceUse::decide`]); the
//! general consent never stands in for it.

use super::purpose::Purpose;
use super::refusal::{Reason, Refusal};

/// Longest accepted policy version, in bytes (all accepted characters are ASCII).
pub const MAX_POLICY_VERSION_LEN: usize = 64;

/// How far in the future a grant time may lie, to absorb client clock skew.
pub const MAX_CONSENT_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// A well-formed consent record. Not personal data, so `Debug` is derived.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consent {
    policy_version: String,
    granted_at_unix: i64,
}

impl Consent {
    /// `policy_version`: 1–64 characters of `[A-Za-z0-9._-]` (empty means no consent was given).
    /// `granted_at_unix`: seconds since the epoch, > 0 and at most
    /// [`MAX_CONSENT_CLOCK_SKEW_SECS`] after `now_unix`.
    pub fn parse(policy_version: &str, granted_at_unix: i64, now_unix: i64) -> Result<Consent, Refusal> {
        check_record(
            policy_version,
            granted_at_unix,
            now_unix,
            [Reason::ConsentMissing, Reason::ConsentInvalid],
        )?;
        Ok(Consent {
            policy_version: policy_version.to_owned(),
            granted_at_unix,
        })
    }

    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }

    pub fn granted_at_unix(&self) -> i64 {
        self.granted_at_unix
    }
}

/// The rules every consent record follows; `[missing, invalid]` are the reasons it is refused with.
fn check_record(
    policy_version: &str,
    granted_at_unix: i64,
    now_unix: i64,
    reasons: [Reason; 2],
) -> Result<(), Refusal> {
    let [missing, invalid] = reasons;
    if policy_version.is_empty() {
        return Err(Refusal::new(missing));
    }
    let version_ok = policy_version.len() <= MAX_POLICY_VERSION_LEN
        && policy_version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    // saturating_add: a `now_unix` near i64::MAX must not overflow into accepting anything.
    let time_ok = granted_at_unix > 0 && granted_at_unix <= now_unix.saturating_add(MAX_CONSENT_CLOCK_SKEW_SECS);
    if !version_ok || !time_ok {
        return Err(Refusal::new(invalid));
    }
    Ok(())
}

/// The applicant's separate consent to the processing of their face. Not personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BiometricConsent {
    policy_version: String,
    granted_at_unix: i64,
}

impl BiometricConsent {
    /// The same rules as [`Consent::parse`], refused as `BIOMETRIC_CONSENT_MISSING` (empty version)
    /// or `BIOMETRIC_CONSENT_INVALID`.
    pub fn parse(policy_version: &str, granted_at_unix: i64, now_unix: i64) -> Result<BiometricConsent, Refusal> {
        check_record(
            policy_version,
            granted_at_unix,
            now_unix,
            [Reason::BiometricConsentMissing, Reason::BiometricConsentInvalid],
        )?;
        Ok(BiometricConsent {
            policy_version: policy_version.to_owned(),
            granted_at_unix,
        })
    }

    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }

    pub fn granted_at_unix(&self) -> i64 {
        self.granted_at_unix
    }
}

/// What one verification may do with the applicant's face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceUse {
    /// The purpose compares no face (a face sent anyway goes to no provider).
    NotCompared,
    /// Face recognition by the providers, under the applicant's biometric consent.
    Recognition(BiometricConsent),
    /// The applicant chose document review instead: the face is dropped unread, the providers check
    /// name and ID number only, and a reviewer decides from the ID card images.
    DocumentReview,
}

impl FaceUse {
    /// Decides the face path of a request for `purpose`. `document_review`: the applicant asked for
    /// the non-face alternative (meaningful for purposes that compare a face only). `biometric`: the
    /// biometric consent record, if the request carried one; one that is present must be well formed
    /// whatever the path, and face recognition is refused without it.
    pub fn decide(
        purpose: Purpose,
        document_review: bool,
        biometric: Option<(&str, i64)>,
        now_unix: i64,
    ) -> Result<FaceUse, Refusal> {
        let consent = match biometric {
            Some((version, at)) if !version.is_empty() => Some(BiometricConsent::parse(version, at, now_unix)?),
            _ => None,
        };
        if !purpose.requires_face() {
            return Ok(FaceUse::NotCompared);
        }
        if document_review {
            return Ok(FaceUse::DocumentReview);
        }
        consent
            .map(FaceUse::Recognition)
            .ok_or(Refusal::new(Reason::BiometricConsentMissing))
    }

    /// Whether a face goes to the providers.
    pub fn sends_face(&self) -> bool {
        matches!(self, FaceUse::Recognition(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn reason(v: &str, at: i64, now: i64) -> Option<Reason> {
        Consent::parse(v, at, now).err().map(|r| r.reason())
    }

    #[test]
    fn accepts_valid() {
        let c = Consent::parse("privacy-2026.05_a", NOW - 10, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.policy_version(), "privacy-2026.05_a");
        assert_eq!(c.granted_at_unix(), NOW - 10);
        assert!(Consent::parse(&"v".repeat(64), 1, NOW).is_ok());
        assert!(Consent::parse("v1", NOW + MAX_CONSENT_CLOCK_SKEW_SECS, NOW).is_ok());
    }

    #[test]
    fn missing() {
        assert_eq!(reason("", NOW, NOW), Some(Reason::ConsentMissing));
    }

    #[test]
    fn invalid_version() {
        for v in [" ", "v 1", "v/1", "v:1", "版本", "v1\n", &"v".repeat(65)] {
            assert_eq!(reason(v, NOW, NOW), Some(Reason::ConsentInvalid), "{v:?}");
        }
    }

    #[test]
    fn invalid_time() {
        assert_eq!(reason("v1", 0, NOW), Some(Reason::ConsentInvalid));
        assert_eq!(reason("v1", -5, NOW), Some(Reason::ConsentInvalid));
        assert_eq!(reason("v1", i64::MIN, NOW), Some(Reason::ConsentInvalid));
        assert_eq!(
            reason("v1", NOW + MAX_CONSENT_CLOCK_SKEW_SECS + 1, NOW),
            Some(Reason::ConsentInvalid)
        );
        assert_eq!(reason("v1", i64::MAX, NOW), Some(Reason::ConsentInvalid));
        // No overflow at the top of the range.
        assert_eq!(reason("v1", i64::MAX, i64::MAX), None);
    }

    #[test]
    fn biometric_consent_follows_the_same_rules_with_its_own_reasons() {
        let b = BiometricConsent::parse("face-2026.05", NOW - 1, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.policy_version(), b.granted_at_unix()), ("face-2026.05", NOW - 1));
        let code = |v: &str, at| BiometricConsent::parse(v, at, NOW).err().map(|r| r.reason());
        assert_eq!(code("", NOW), Some(Reason::BiometricConsentMissing));
        assert_eq!(code("v 1", NOW), Some(Reason::BiometricConsentInvalid));
        assert_eq!(code("v1", 0), Some(Reason::BiometricConsentInvalid));
        assert_eq!(
            code("v1", NOW + MAX_CONSENT_CLOCK_SKEW_SECS + 1),
            Some(Reason::BiometricConsentInvalid)
        );
    }

    #[test]
    fn face_recognition_needs_biometric_consent() {
        let decide = |purpose, review, bio| FaceUse::decide(purpose, review, bio, NOW);
        let missing = decide(Purpose::Anchor, false, None).err().map(|r| r.reason());
        assert_eq!(missing, Some(Reason::BiometricConsentMissing));
        let empty = decide(Purpose::Anchor, false, Some(("", NOW)))
            .err()
            .map(|r| r.reason());
        assert_eq!(empty, Some(Reason::BiometricConsentMissing));
        let granted = decide(Purpose::Anchor, false, Some(("f1", NOW))).unwrap_or_else(|e| panic!("{e}"));
        assert!(granted.sends_face());
        // The general consent never stands in: only the biometric record counts.
        assert_eq!(decide(Purpose::Anchor, true, None), Ok(FaceUse::DocumentReview));
        assert!(!FaceUse::DocumentReview.sends_face());
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            assert_eq!(decide(p, false, None), Ok(FaceUse::NotCompared));
            assert_eq!(decide(p, true, None), Ok(FaceUse::NotCompared));
        }
        // A record that is present is checked on every path.
        for (p, review) in [(Purpose::Anchor, true), (Purpose::Radio, false)] {
            let bad = decide(p, review, Some(("v/1", NOW))).err().map(|r| r.reason());
            assert_eq!(bad, Some(Reason::BiometricConsentInvalid));
        }
    }
}
