//! End-to-end sealing of identity payloads: HPKE (RFC 9180), mode Base,
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, one single-shot seal per message.
//!
//! The `info` and `aad` strings are part of the public contract (docs/api.md §2); [`Context`] builds them so
//! that no caller assembles them by hand. Opening fails with one error, [`OpenError`], whatever the
//! cause (unknown key id, retired key, bad `enc`, wrong bound fields, tampering): a caller learns
//! nothing about which check failed — not from the time it takes either: a key id that names no usable
//! key is opened under a decoy key, so it costs the same work as a bad ciphertext
//! (`benches/open_timing.rs` measures both).
//!
//! Never log or print a private key or an opened plaintext; plaintexts come back in [`Plaintext`],
//! which wipes itself on drop.
//!
//! Why opening is not done in place: the ciphertext arrives as a `Bytes` slice of tonic's decode
//! buffer (shared with that buffer, so it cannot be written), and hpke's `open` already decrypts
//! from that slice straight into one fresh buffer of the plaintext's size (ChaCha20 reads the
//! ciphertext and writes the plaintext in the same pass; no copy of the ciphertext is made first).
//! Decrypting into the decode buffer itself would save only that allocation, and would put
//! plaintext into a buffer that tonic owns and nobody wipes. The fresh buffer is wrapped in
//! [`Plaintext`] the moment it is returned; on a failed tag nothing is decrypted into it.

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::SecretKey32;

pub type Kem = hpke::kem::X25519HkdfSha256;
pub type Kdf = hpke::kdf::HkdfSha256;
pub type Aead = hpke::aead::ChaCha20Poly1305;

/// Length of an X25519 public key and of HPKE's `enc` for this suite.
pub const PUBLIC_KEY_LEN: usize = 32;
/// A sealed payload larger than this is refused before any work (four 4 MiB images plus text).
pub const MAX_SEALED_LEN: usize = 17 * 1024 * 1024;

/// An opened payload. Wiped on drop.
pub type Plaintext = Zeroizing<Vec<u8>>;

/// The one answer to any failure to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed payload could not be opened")]
pub struct OpenError;

/// A failure to seal (bad recipient key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("could not seal to the given public key")]
pub struct SealError;

/// What a message is bound to: the `info` and `aad` of docs/api.md §2.
pub struct Context {
    info: &'static [u8],
    aad: Vec<u8>,
}

impl Context {
    /// `IdentityPayload` in `VerifyRequest`.
    pub fn identity(purpose_number: i32, account_id: &str, request_id: &str) -> Self {
        Self {
            info: b"idgate.v1.identity",
            aad: format!("idgate.v1|{purpose_number}|{account_id}|{request_id}").into_bytes(),
        }
    }

    /// `IdentityPayload` in `SubmitSupplementRequest`.
    pub fn supplement(verification_id: &str, request_id: &str) -> Self {
        Self {
            info: b"idgate.v1.supplement",
            aad: format!("idgate.v1|{verification_id}|{request_id}").into_bytes(),
        }
    }

    /// A case re-sealed to a reviewer in `ClaimNextResponse`.
    pub fn review(case_id: &str, reviewer_principal: &str) -> Self {
        Self {
            info: b"idgate.v1.review",
            aad: format!("idgate.v1|{case_id}|{reviewer_principal}").into_bytes(),
        }
    }

    pub fn info(&self) -> &[u8] {
        self.info
    }
    pub fn aad(&self) -> &[u8] {
        &self.aad
    }
}

/// A sealed message: HPKE `enc` and the ciphertext (with its tag).
pub struct Sealed {
    pub enc: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` to an X25519 public key (32 bytes) under `context`.
pub fn seal(recipient_public_key: &[u8], context: &Context, plaintext: &[u8]) -> Result<Sealed, SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public_key).map_err(|_| SealError)?;
    let (enc, ciphertext) =
        hpke::single_shot_seal::<Aead, Kdf, Kem>(&OpModeS::Base, &pk, context.info, plaintext, &context.aad)
            .map_err(|_| SealError)?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// An X25519 key pair that can open messages sealed to its public half.
pub struct OpeningKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl OpeningKey {
    /// A fresh random key pair.
    pub fn generate() -> Result<Self, super::random::RandomError> {
        Ok(Self::from_secret(&SecretKey32::random()?))
    }

    /// The key pair whose private scalar is `secret` (as stored in a key file).
    pub fn from_secret(secret: &SecretKey32) -> Self {
        // Deriving through DeriveKeyPair keeps the stored secret a uniform 32-byte seed; any 32 bytes
        // give a valid key pair, so loading a key file cannot fail here.
        let (private, public) = Kem::derive_keypair(secret.expose());
        let mut public_bytes = [0u8; PUBLIC_KEY_LEN];
        public_bytes.copy_from_slice(&public.to_bytes());
        Self {
            private,
            public: public_bytes,
        }
    }

    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// A key pair derived from this one's private key under a label: unknown to anyone who lacks
    /// that private key, so no sender can seal to it, and never handed out.
    fn decoy(&self) -> Self {
        let mut ikm = Zeroizing::new(b"idgate.v1 decoy opening key|".to_vec());
        ikm.extend_from_slice(&Zeroizing::new(self.private.to_bytes().to_vec()));
        let (private, public) = Kem::derive_keypair(&ikm);
        let mut public_bytes = [0u8; PUBLIC_KEY_LEN];
        public_bytes.copy_from_slice(&public.to_bytes());
        Self {
            private,
            public: public_bytes,
        }
    }

    /// Opens one single-shot message.
    pub fn open(&self, context: &Context, enc: &[u8], ciphertext: &[u8]) -> Result<Plaintext, OpenError> {
        if ciphertext.len() > MAX_SEALED_LEN {
            return Err(OpenError);
        }
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError)?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &self.private,
            &encapped,
            context.info,
            ciphertext,
            &context.aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError)
    }
}

impl std::fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// A sealing key with its id and the time it became current.
pub struct IdentifiedKey {
    pub id: String,
    pub created_at_unix: i64,
    pub key: OpeningKey,
}

/// The gateway's sealing keys: the current one (handed out by `GetSealingKey`) and the previous one,
/// still accepted for `grace_seconds` after the current one was created.
pub struct SealingKeyring {
    current: IdentifiedKey,
    previous: Option<IdentifiedKey>,
    grace_seconds: i64,
    /// Opened instead when a key id names no usable key, so that an unknown or retired key id costs
    /// the same work as a bad ciphertext; its result is always refused.
    decoy: OpeningKey,
}

impl SealingKeyring {
    /// `keys` in any order; the newest is current, the second newest previous, older ones are ignored
    /// (they are past any grace period that matters once a newer key has been rotated in).
    pub fn new(mut keys: Vec<IdentifiedKey>, grace_seconds: i64) -> Option<Self> {
        keys.sort_by(|a, b| b.created_at_unix.cmp(&a.created_at_unix).then_with(|| b.id.cmp(&a.id)));
        let mut keys = keys.into_iter();
        let current = keys.next()?;
        let previous = keys.next();
        let decoy = current.key.decoy();
        Some(Self {
            current,
            previous,
            grace_seconds,
            decoy,
        })
    }

    pub fn current(&self) -> &IdentifiedKey {
        &self.current
    }

    /// The key that `key_id` names, if it may still be used at `now_unix`.
    fn usable(&self, key_id: &str, now_unix: i64) -> Option<&OpeningKey> {
        let names = |id: &str| bool::from(id.as_bytes().ct_eq(key_id.as_bytes()));
        if names(&self.current.id) {
            return Some(&self.current.key);
        }
        match &self.previous {
            Some(prev) if names(&prev.id) && now_unix < self.current.created_at_unix + self.grace_seconds => {
                Some(&prev.key)
            }
            _ => None,
        }
    }

    /// Opens a message sealed to one of the gateway's keys.
    pub fn open(
        &self,
        key_id: &str,
        context: &Context,
        enc: &[u8],
        ciphertext: &[u8],
        now_unix: i64,
    ) -> Result<Plaintext, OpenError> {
        let usable = self.usable(key_id, now_unix);
        // The same work whether or not the key id names a usable key; the decoy's result is dropped.
        let opened = usable.unwrap_or(&self.decoy).open(context, enc, ciphertext);
        match usable {
            Some(_) => opened,
            None => Err(OpenError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, mode Base.
    #[test]
    fn rfc9180_a_2_1_known_answer() {
        let ikm_r = unhex("1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df");
        let (sk_r, pk_r) = Kem::derive_keypair(&ikm_r);
        assert_eq!(
            hex::encode(pk_r.to_bytes()),
            "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a"
        );
        // The RFC prints skRm unclamped (…e0fb); the crate keeps the RFC 7748-clamped scalar (top bit
        // cleared: …e07b). Same key.
        assert_eq!(
            hex::encode(sk_r.to_bytes()),
            "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e07b"
        );

        let mut pub_bytes = [0u8; 32];
        pub_bytes.copy_from_slice(&pk_r.to_bytes());
        let key = OpeningKey {
            private: sk_r,
            public: pub_bytes,
        };
        let context = Context {
            info: b"Ode on a Grecian Urn",
            aad: unhex("436f756e742d30"),
        };
        let enc = unhex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
        let ct = unhex("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28");
        let pt = key.open(&context, &enc, &ct).unwrap();
        assert_eq!(pt.as_slice(), b"Beauty is truth, truth beauty");

        // One flipped bit anywhere is refused.
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(key.open(&context, &enc, &bad), Err(OpenError));
    }

    #[test]
    fn the_aad_and_info_of_the_contract() {
        let c = Context::identity(3, "acct-1", "req-1");
        assert_eq!(c.info(), b"idgate.v1.identity");
        assert_eq!(c.aad(), b"idgate.v1|3|acct-1|req-1");
        let c = Context::supplement("vf_x", "req-2");
        assert_eq!(
            (c.info(), c.aad()),
            (&b"idgate.v1.supplement"[..], &b"idgate.v1|vf_x|req-2"[..])
        );
        let c = Context::review("vf_x", "reviewer-1");
        assert_eq!(
            (c.info(), c.aad()),
            (&b"idgate.v1.review"[..], &b"idgate.v1|vf_x|reviewer-1"[..])
        );
    }

    #[test]
    fn round_trip_and_every_bound_field_matters() {
        let key = OpeningKey::generate().unwrap();
        let sealed = seal(key.public_key(), &Context::identity(3, "a", "r"), b"payload").unwrap();
        let ok = key
            .open(&Context::identity(3, "a", "r"), &sealed.enc, &sealed.ciphertext)
            .unwrap();
        assert_eq!(ok.as_slice(), b"payload");
        for wrong in [
            Context::identity(1, "a", "r"),
            Context::identity(3, "b", "r"),
            Context::identity(3, "a", "s"),
        ] {
            assert_eq!(key.open(&wrong, &sealed.enc, &sealed.ciphertext), Err(OpenError));
        }
        // Same aad, other info (a supplement can't be replayed as an identity).
        let other = Context {
            info: b"idgate.v1.supplement",
            aad: Context::identity(3, "a", "r").aad,
        };
        assert_eq!(key.open(&other, &sealed.enc, &sealed.ciphertext), Err(OpenError));
        assert_eq!(
            key.open(&Context::identity(3, "a", "r"), &[0u8; 5], &sealed.ciphertext),
            Err(OpenError)
        );
    }

    #[test]
    fn keyring_accepts_the_previous_key_only_during_grace() {
        let old = OpeningKey::generate().unwrap();
        let sealed_old = seal(old.public_key(), &Context::identity(1, "a", "r"), b"x").unwrap();
        let keyring = SealingKeyring::new(
            vec![
                IdentifiedKey {
                    id: "sk-1".into(),
                    created_at_unix: 1_000,
                    key: old,
                },
                IdentifiedKey {
                    id: "sk-2".into(),
                    created_at_unix: 2_000,
                    key: OpeningKey::generate().unwrap(),
                },
            ],
            600,
        )
        .unwrap();
        assert_eq!(keyring.current().id, "sk-2");
        let ctx = Context::identity(1, "a", "r");
        assert!(
            keyring
                .open("sk-1", &ctx, &sealed_old.enc, &sealed_old.ciphertext, 2_599)
                .is_ok()
        );
        assert_eq!(
            keyring.open("sk-1", &ctx, &sealed_old.enc, &sealed_old.ciphertext, 2_600),
            Err(OpenError)
        );
        assert_eq!(
            keyring.open("sk-9", &ctx, &sealed_old.enc, &sealed_old.ciphertext, 2_000),
            Err(OpenError)
        );
    }

    #[test]
    fn an_unknown_key_id_is_refused_even_for_a_message_the_decoy_would_open() {
        let current = OpeningKey::generate().unwrap();
        let decoy = current.decoy();
        assert_ne!(decoy.public_key(), current.public_key());
        assert_eq!(decoy.public_key(), current.decoy().public_key(), "derived, not random");
        let keyring = SealingKeyring::new(
            vec![IdentifiedKey {
                id: "sk-1".into(),
                created_at_unix: 0,
                key: current,
            }],
            600,
        )
        .unwrap();
        let ctx = Context::identity(1, "a", "r");
        let to_decoy = seal(decoy.public_key(), &ctx, b"x").unwrap();
        assert!(decoy.open(&ctx, &to_decoy.enc, &to_decoy.ciphertext).is_ok());
        for key_id in ["sk-unknown", "", "sk-1x"] {
            assert_eq!(
                keyring.open(key_id, &ctx, &to_decoy.enc, &to_decoy.ciphertext, 0),
                Err(OpenError)
            );
        }
        assert_eq!(
            keyring.open("sk-1", &ctx, &to_decoy.enc, &to_decoy.ciphertext, 0),
            Err(OpenError)
        );
    }

    /// RFC 9180's own test-vector file, the entry of this suite (mode Base, DHKEM(X25519,
    /// HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; `tests/vectors/README.md` says where it comes
    /// from): the key a key file holds (`ikmR`) and the one the RFC prints (`skRm`) are the same key
    /// pair; encryption 0, the only one a single-shot seal makes, opens through [`OpeningKey`] and
    /// [`SealingKeyring`]; every one of the 257 encryptions opens, in sequence, through the `hpke`
    /// receiver context this module relies on, as do the 3 exported values (the wrapper exposes no
    /// export).
    #[test]
    fn rfc9180_test_vector_file_every_encryption_and_export_of_our_suite() {
        use crate::crypto::vectors::{bytes, bytes32, hpke_rfc9180, list};
        let v = hpke_rfc9180();
        let suite = ["mode", "kem_id", "kdf_id", "aead_id"].map(|k| v[k].as_u64().unwrap());
        assert_eq!(suite, [0, 0x20, 1, 3], "the entry of the suite we use");
        let pk_rm = bytes(&v, "pkRm");
        let enc = bytes(&v, "enc");
        let info: &'static [u8] = Box::leak(bytes(&v, "info").into_boxed_slice());

        // The key-file path: the stored secret is DeriveKeyPair's input.
        let from_file = OpeningKey::from_secret(&SecretKey32::from_bytes(bytes32(&v, "ikmR")));
        assert_eq!(from_file.public_key().as_slice(), pk_rm.as_slice());
        // The RFC's serialized private key.
        let sk_rm = <Kem as hpke::Kem>::PrivateKey::from_bytes(&bytes(&v, "skRm")).unwrap();
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(&Kem::sk_to_pk(&sk_rm).to_bytes());
        assert_eq!(public.as_slice(), pk_rm.as_slice());
        let printed = OpeningKey {
            private: sk_rm.clone(),
            public,
        };

        let encryptions = list(&v, "encryptions");
        assert_eq!(encryptions.len(), 257);
        let first = &encryptions[0];
        let context = |e: &serde_json::Value| Context {
            info,
            aad: bytes(e, "aad"),
        };
        let pt0 = bytes(first, "pt");
        for key in [&from_file, &printed] {
            assert_eq!(
                key.open(&context(first), &enc, &bytes(first, "ct")).unwrap().as_slice(),
                pt0.as_slice()
            );
            // A single-shot open is sequence number 0 only: encryption 1 does not open that way.
            let second = &encryptions[1];
            assert_eq!(key.open(&context(second), &enc, &bytes(second, "ct")), Err(OpenError));
        }
        let keyring = SealingKeyring::new(
            vec![IdentifiedKey {
                id: "rfc9180".into(),
                created_at_unix: 0,
                key: from_file,
            }],
            0,
        )
        .unwrap();
        assert_eq!(
            keyring
                .open("rfc9180", &context(first), &enc, &bytes(first, "ct"), 0)
                .unwrap()
                .as_slice(),
            pt0.as_slice()
        );

        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).unwrap();
        let mut receiver = hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_rm, &encapped, info).unwrap();
        for (seq, e) in encryptions.iter().enumerate() {
            let opened = receiver.open(&bytes(e, "ct"), &bytes(e, "aad"));
            assert_eq!(opened.ok(), Some(bytes(e, "pt")), "encryption {seq}");
        }
        let exports = list(&v, "exports");
        assert_eq!(exports.len(), 3);
        for (i, x) in exports.iter().enumerate() {
            let expected = bytes(x, "exported_value");
            assert_eq!(x["L"].as_u64(), Some(expected.len() as u64));
            let mut out = vec![0u8; expected.len()];
            receiver.export(&bytes(x, "exporter_context"), &mut out).unwrap();
            assert_eq!(out, expected, "export {i}");
        }
    }
}
