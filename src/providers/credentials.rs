//! A provider's API secret (Tencent Cloud's SecretKey, Alibaba Cloud's AccessKey secret), shared by
//! every adapter and the simulator.
//!
//! Must never: print, log or `Debug`-format the secret (its `Debug` prints `SecretKey(***)`), or copy
//! it (not `Clone`); it is zeroized on drop.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A provider API secret (Tencent SecretKey, Alibaba Cloud AccessKey secret). Zeroized on drop;
/// never printed.
///
/// Deliberately not `Clone`: every copy of a key is one more place it can leak from. Build a second
/// one from configuration if two owners really need it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(String);

impl SecretKey {
    /// Takes ownership of the key material.
    pub fn new(key: String) -> Self {
        Self(key)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the key is empty (a configuration error the adapter rejects up front).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretKey {
    fn from(key: String) -> Self {
        Self::new(key)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_debug_is_masked() {
        let key = SecretKey::new("super-secret".to_owned());
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(!format!("{key:#?}").contains("super"));
    }
}
