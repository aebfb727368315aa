//! Identifiers: those chosen by the caller — the request id (for idempotency and tracing) and the
//! app's account id — and the verification id the gateway hands out. They are not personal data, so
//! they may be logged and derive `Debug`; the character set is restricted so they can be used as-is
//! in log lines, metric labels and store keys without escaping.

use super::refusal::{Reason, Refusal};

/// Who the gateway itself is in the audit trail (retention, key rotation, integrity alarms).
pub const GATEWAY_ACTOR: &str = "idgate";

/// Longest accepted identifier, in bytes (all accepted characters are ASCII).
pub const MAX_ID_LEN: usize = 128;

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

fn check_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(is_id_byte)
}

/// The caller's id for one request: `[A-Za-z0-9._:-]{1,128}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        if check_id(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Refusal::new(Reason::RequestIdInvalid))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The app's account id: `[A-Za-z0-9._:-]{1,128}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        if check_id(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Refusal::new(Reason::AccountIdInvalid))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A verification (case) id as the gateway hands it out: `vf_` followed by 26 lower-case base32
/// characters (`a`–`z`, `2`–`7`; 128 random bits, see `crypto::random::id`). Only an id of that
/// shape can name a case, so anything else is known not to before the store is asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerificationId(String);

impl VerificationId {
    /// What every verification id starts with.
    pub const PREFIX: &'static str = "vf_";
    /// Base32 characters after the prefix.
    pub const RANDOM_CHARS: usize = 26;

    /// `None` for anything that is not an id the gateway could have handed out (the caller answers
    /// it as it answers an unknown id).
    pub fn parse(s: &str) -> Option<Self> {
        let random = s.strip_prefix(Self::PREFIX)?;
        let base32 = |b: u8| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b);
        (random.len() == Self::RANDOM_CHARS && random.bytes().all(base32)).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VerificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_ids_have_the_shape_the_gateway_hands_out() {
        let good = "vf_abcdefghijklmnopqrstuvwxyz";
        assert_eq!(
            VerificationId::parse(good).map(|id| id.to_string()),
            Some(good.to_owned())
        );
        assert!(VerificationId::parse("vf_2345672345672345672345672a").is_some());
        for bad in [
            "",
            "vf_",
            "vf_0000000000000000",
            "vf_abcdefghijklmnopqrstuvwxy",
            "vf_abcdefghijklmnopqrstuvwxyza",
            "VF_abcdefghijklmnopqrstuvwxyz",
            "vf_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "vf_abcdefghijklmnopqrstuvwx01",
            "xx_abcdefghijklmnopqrstuvwxyz",
            "vf_abcdefghijklmnopqrstuvwxy\n",
            "vf_abcdefghijklmnopqrstuvwxyé",
            "vf\0\n",
        ] {
            assert_eq!(VerificationId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(VerificationId::parse(&"x".repeat(10_000)), None);
    }

    #[test]
    fn accepts_charset_and_bounds() {
        for s in ["a", "Z", "0", "req-1", "a.b_c:d-e", "01HZX3:retry.2", &"x".repeat(128)] {
            assert_eq!(RequestId::parse(s).map(|r| r.as_str().to_owned()), Ok(s.to_owned()));
            assert_eq!(AccountId::parse(s).map(|r| r.as_str().to_owned()), Ok(s.to_owned()));
        }
    }

    #[test]
    fn rejects_everything_else() {
        let long = "x".repeat(129);
        for s in [
            "", " ", "a b", "a/b", "a\n", "\0", "ä", "全角", "a+b", "a@b", "a#b", "%41", &long,
        ] {
            assert_eq!(
                RequestId::parse(s).map(|_| ()),
                Err(Refusal::new(Reason::RequestIdInvalid)),
                "{s:?}"
            );
            assert_eq!(
                AccountId::parse(s).map(|_| ()),
                Err(Refusal::new(Reason::AccountIdInvalid)),
                "{s:?}"
            );
        }
    }
}
