//! Blind indexes: a keyed HMAC-SHA256 of a normalized value, so the store can count and limit by ID
//! number without ever holding the number.
//!
//! Each use gets its own key, derived from the blind-index root key with a use label, so an index
//! made for rate limiting can never be matched against one made for the anchor-account limit. The
//! index carries the root key's id, so a rotation starts new indexes instead of silently mixing two.
//! Never log the input; the output is safe to store.

use hmac::{Hmac, Mac};

use super::SecretKey32;

type HmacSha256 = Hmac<sha2::Sha256>;

/// What an index is for. Each use has its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexUse {
    /// Rate limit per ID number.
    RateLimit,
    /// How many accounts one ID number may verify as anchor.
    AnchorAccounts,
}

impl IndexUse {
    fn label(self) -> &'static str {
        match self {
            IndexUse::RateLimit => "rate-limit",
            IndexUse::AnchorAccounts => "anchor-accounts",
        }
    }
}

/// The blind-index keys.
pub struct BlindIndexer {
    key_id: String,
    rate_limit: SecretKey32,
    anchor_accounts: SecretKey32,
}

impl std::fmt::Debug for BlindIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindIndexer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC state anyway
    // rather than panic.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0u8; 32],
    };
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl BlindIndexer {
    /// Derives one key per use from `root` (HMAC-SHA256 with a use label).
    pub fn new(key_id: String, root: &SecretKey32) -> Self {
        let derive = |use_: IndexUse| {
            SecretKey32::from_bytes(hmac(
                root.expose(),
                &[b"idgate.v1.blind-index", use_.label().as_bytes()],
            ))
        };
        Self {
            key_id,
            rate_limit: derive(IndexUse::RateLimit),
            anchor_accounts: derive(IndexUse::AnchorAccounts),
        }
    }

    /// `<use>:<key id>:<hex HMAC>` of `normalized` (the caller normalizes, e.g. upper-case check digit).
    pub fn index(&self, use_: IndexUse, normalized: &str) -> String {
        let key = match use_ {
            IndexUse::RateLimit => &self.rate_limit,
            IndexUse::AnchorAccounts => &self.anchor_accounts,
        };
        format!(
            "{}:{}:{}",
            use_.label(),
            self.key_id,
            hex::encode(hmac(key.expose(), &[normalized.as_bytes()]))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_use_keyed_and_versioned() {
        let root = SecretKey32::from_bytes([7; 32]);
        let a = BlindIndexer::new("bk-1".into(), &root);
        let id = "11010519491231002X";
        let rl = a.index(IndexUse::RateLimit, id);
        assert_eq!(rl, a.index(IndexUse::RateLimit, id));
        assert_ne!(rl, a.index(IndexUse::RateLimit, "110105194912310039"));
        let anchor = a.index(IndexUse::AnchorAccounts, id);
        assert_ne!(
            rl.rsplit(':').next(),
            anchor.rsplit(':').next(),
            "separate keys per use"
        );
        assert!(rl.starts_with("rate-limit:bk-1:"));
        assert!(!rl.contains(id) && !rl.contains("19491231"));
        let other = BlindIndexer::new("bk-2".into(), &SecretKey32::from_bytes([8; 32]));
        assert_ne!(other.index(IndexUse::RateLimit, id), rl);
        assert!(!format!("{a:?}").contains("07070707"));
    }
}
