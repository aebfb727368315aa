//! Opaque identifiers chosen by the caller: the request id (for idempotency and tracing) and the
//! app's account id. They are not personal data, so they may be logged and derive `Debug`; the
//! character set is restricted so they can be used as-is in log lines, metric labels and store keys
//! without escaping.

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

#[cfg(test)]
mod tests {
    use super::*;

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
