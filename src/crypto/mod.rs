//! Cryptography of idgate, apart from any transport or storage.
//!
//! - [`sealing`]: HPKE (RFC 9180) opening of client-sealed payloads, and sealing to a recipient key
//!   (clients, reviewer re-sealing), with the exact `info` / `aad` of the public contract.
//! - [`envelope`]: at-rest encryption of a case's personal data under a per-case data key, wrapped by a
//!   versioned key-encryption key (crypto-shredding: destroy the wrapped key, the data is gone).
//! - [`keyfile`]: the on-disk form of sealing keys and key-encryption keys, their ids and rotation;
//!   KEK epochs and destruction dates, and the scheduled upkeep that rotates and destroys KEKs.
//! - [`blind_index`]: keyed HMACs of ID numbers, so limits can count without storing the number.
//! - [`random`]: the one place randomness comes from.
//! - `vectors` (tests only): the fixed known-answer vectors of what stays in storage, and RFC 9180's for
//!   sealing (`tests/vectors/`).
//!
//! This module must never log, print or `Debug`-format key material or plaintext, and knows nothing of
//! gRPC, protobuf or Redis.

pub mod blind_index;
pub mod envelope;
pub mod keyfile;
pub mod random;
pub mod sealing;
#[cfg(test)]
pub(crate) mod vectors;

/// 32 bytes of key material that wipe themselves on drop and never print.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SecretKey32([u8; 32]);

impl SecretKey32 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn random() -> Result<Self, random::RandomError> {
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes)?;
        Ok(Self(bytes))
    }
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey32(***)")
    }
}
