//! Test harness shared by the integration tests that need real servers.

pub mod broken_provider;
pub mod redis;

/// Sealed material of the right shape for storage tests that never open it: identity material and a
/// face, each under its own (fake) data key.
#[allow(dead_code)]
pub fn sealed_pii() -> idgate::store::SealedPii {
    idgate::store::SealedPii {
        face: Some(idgate::store::SealedValue {
            wrapped_key: idgate::crypto::envelope::WrappedKey {
                kek_id: "kek-1".into(),
                bytes: vec![8; 72],
            },
            body: idgate::crypto::envelope::Body {
                version: 1,
                commitment: [4; 32],
                nonce: [5; 24],
                ciphertext: vec![6; 64],
            },
        }),
        wrapped_key: idgate::crypto::envelope::WrappedKey {
            kek_id: "kek-1".into(),
            bytes: vec![7; 72],
        },
        body: idgate::crypto::envelope::Body {
            version: 1,
            commitment: [1; 32],
            nonce: [2; 24],
            ciphertext: vec![3; 64],
        },
    }
}
pub mod sim_admin;
