//! Test harness shared by the integration tests that need real servers.

pub mod broken_provider;
pub mod redis;

/// Sealed material of the right shape for storage tests that never open it: identity material and a
/// face, each under its own (fake) data key.
#[allow(dead_code)]
pub fn sealed_pii() -> idgate::store::SealedPii {
    let identity = sealed_value(7, [1, 2, 3]);
    idgate::store::SealedPii {
        face: Some(sealed_value(8, [4, 5, 6])),
        wrapped_key: identity.wrapped_key,
        body: identity.body,
    }
}

/// A fake sealed value: a wrapped key of `key_fill` bytes under `kek-1`, and a body whose commitment,
/// nonce and ciphertext are filled with the three `body_fills`.
fn sealed_value(key_fill: u8, body_fills: [u8; 3]) -> idgate::store::SealedValue {
    let [commitment, nonce, ciphertext] = body_fills;
    idgate::store::SealedValue {
        wrapped_key: idgate::crypto::envelope::WrappedKey {
            kek_id: "kek-1".into(),
            bytes: vec![key_fill; 72],
        },
        body: idgate::crypto::envelope::Body {
            version: 1,
            commitment: [commitment; 32],
            nonce: [nonce; 24],
            ciphertext: vec![ciphertext; 64],
        },
    }
}
pub mod sim_admin;
