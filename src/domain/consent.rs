//! The applicant's recorded consent to the processing of their personal information (PIPL art. 29
//! requires separate consent for sensitive personal information such as biometrics and ID numbers).
//! This module checks only that the consent record is well formed and plausibly timed; it never
//! decides whether a policy version is current, which is configuration, not domain.

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
        if policy_version.is_empty() {
            return Err(Refusal::new(Reason::ConsentMissing));
        }
        let version_ok = policy_version.len() <= MAX_POLICY_VERSION_LEN
            && policy_version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        // saturating_add: a `now_unix` near i64::MAX must not overflow into accepting anything.
        let time_ok = granted_at_unix > 0 && granted_at_unix <= now_unix.saturating_add(MAX_CONSENT_CLOCK_SKEW_SECS);
        if !version_ok || !time_ok {
            return Err(Refusal::new(Reason::ConsentInvalid));
        }
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
}
