//! The applicant's mainland China mobile number.
//!
//! Accepted forms: 11 digits starting `13`–`19`, optionally prefixed by `+86` or `86` (the latter
//! only as a 13-digit whole), with ASCII spaces and dashes anywhere as visual grouping. Everything
//! else, including landlines, `0086`, full-width digits and other country codes, is refused: the
//! upstream carrier check only knows mainland mobiles.
//!
//! The type never prints the number (redacted `Debug`, no `Display`), never puts it in a refusal,
//! and wipes it on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::refusal::{Reason, Refusal};

/// Digits in a mainland mobile number, without country code.
pub const PHONE_DIGITS: usize = 11;

/// Longest raw input considered, in bytes. Generous for `+86 138-0013-8000`-style grouping; longer
/// input is refused before any allocation sized by it.
const MAX_RAW_PHONE_LEN: usize = 32;

/// A checked mobile number: exactly 11 ASCII digits, `1[3-9]` prefix. Wiped on drop; deliberately
/// not `Zeroize` so that a holder cannot empty a checked value.
pub struct Phone(String);

impl Drop for Phone {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Phone {}

impl Phone {
    /// Empty or all-whitespace is `PhoneMissing`; anything else wrong is `PhoneInvalid`.
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        if s.trim().is_empty() {
            return Err(Refusal::new(Reason::PhoneMissing));
        }
        let invalid = Refusal::new(Reason::PhoneInvalid);
        if s.len() > MAX_RAW_PHONE_LEN {
            return Err(invalid);
        }
        let mut compact = Zeroizing::new(String::with_capacity(s.len()));
        compact.extend(s.chars().filter(|c| !matches!(c, ' ' | '-')));

        // Only prefixes are stripped; a `+` anywhere else fails the digit check below.
        let national = if let Some(rest) = compact.strip_prefix("+86") {
            rest
        } else if compact.len() == PHONE_DIGITS + 2 {
            compact.strip_prefix("86").ok_or(invalid)?
        } else {
            compact.as_str()
        };

        let valid = national.len() == PHONE_DIGITS
            && national.bytes().all(|b| b.is_ascii_digit())
            && national.starts_with('1')
            && national.as_bytes().get(1).is_some_and(|b| matches!(b, b'3'..=b'9'));
        if !valid {
            return Err(invalid);
        }
        Ok(Phone(national.to_owned()))
    }

    /// The 11 national digits. Handle with care: this is the raw PII.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::xorshift_strings;

    fn ok(s: &str) -> String {
        match Phone::parse(s) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => panic!("refused {s:?}: {}", e.code()),
        }
    }

    fn reason(s: &str) -> Option<Reason> {
        Phone::parse(s).err().map(|r| r.reason())
    }

    #[test]
    fn accepts_forms() {
        for s in [
            "13800138000",
            "+8613800138000",
            "8613800138000",
            "+86 138 0013 8000",
            "138-0013-8000",
            "+86-138-0013-8000",
            " 13800138000 ",
            "86 138 0013 8000",
        ] {
            assert_eq!(ok(s), "13800138000", "{s:?}");
        }
        for p in ["13", "14", "15", "16", "17", "18", "19"] {
            let s = format!("{p}012345678");
            assert_eq!(ok(&s), s);
        }
    }

    #[test]
    fn missing() {
        for s in ["", " ", "\t"] {
            assert_eq!(reason(s), Some(Reason::PhoneMissing), "{s:?}");
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "-",
            "+",
            "12800138000",
            "10800138000",
            "23800138000",
            "1380013800",
            "138001380000",
            "+861380013800",
            "+85213800138000",
            "+8513800138000",
            "008613800138000",
            "86138001380001",
            "8612800138000",
            "+86+8613800138000",
            "1380013800+",
            "138\t0013\t8000",
            "１３８００１３８０００",
            "138.0013.8000",
            "(138)00138000",
            "13800138000x",
            "０13800138000",
            "+86 138 0013 8000          1",
        ] {
            assert_eq!(reason(s), Some(Reason::PhoneInvalid), "{s:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let p = Phone::parse("13800138000").unwrap_or_else(|e| panic!("{}", e.code()));
        assert_eq!(format!("{p:?}"), "Phone(***)");
        assert!(!format!("{p:#?}").contains("138"));
    }

    #[test]
    fn fuzz_no_panic() {
        for s in xorshift_strings(0x9_0e, 4000, b"+86 -0123456789") {
            if let Ok(p) = Phone::parse(&s) {
                assert_eq!(p.as_str().len(), PHONE_DIGITS);
            }
        }
    }
}
