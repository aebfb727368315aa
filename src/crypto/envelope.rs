//! At-rest encryption of one case's personal data (envelope encryption, crypto-shredding).
//!
//! Each record gets a fresh random 256-bit data key. The body is XChaCha20-Poly1305 under the data key
//! (random 192-bit nonce), with associated data binding format version, case id and field. The data key
//! is wrapped by a key-encryption key (KEK) that has an id, again with XChaCha20-Poly1305 and the same
//! binding, so a wrapped key cannot be moved to another case or field. Because ChaCha20-Poly1305 does
//! not commit to its key, the body carries a commitment (HMAC-SHA256 of a fixed label under the data
//! key), checked in constant time before decryption.
//!
//! The wrapped key and the body are separate values ([`WrappedKey`], [`Body`]) so that a store can keep
//! them under separate keys: deleting the wrapped key destroys the record everywhere, including in
//! replicas and backups that still hold the body.
//!
//! KEKs are time-boxed. A ring loaded for a gateway knows each KEK's dates
//! ([`KekDates`]) and a clock: the current KEK wraps new data keys (and re-wraps old ones) only
//! before its `wraps_until` (the end of its epoch), and no KEK opens anything from its
//! `destroy_after` on, even if it is still in memory. A ring with no dates ([`KekRing::new`] alone:
//! tests and tools) wraps with its current KEK at any time.
//!
//! Never log or print a key or a plaintext.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::SecretKey32;
use super::random::{self, RandomError};
use crate::clock::Clock;

/// Version of the byte layout and of the associated data.
pub const FORMAT_VERSION: u8 = 1;
pub const NONCE_LEN: usize = 24;
const COMMIT_LABEL: &[u8] = b"idgate.v1.key-commitment";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The record does not open: unknown or retired KEK, wrong case or field, tampering.
    #[error("the sealed record could not be opened")]
    Open,
    /// No KEK may wrap a data key now: the current KEK's epoch is over, or it carries no dates.
    /// Nothing is sealed; the operator must rotate (`idgate keys maintain` / `keys rotate`).
    #[error(
        "no key-encryption key may wrap new data keys now (the current one's epoch is over or it is undated); \
         run `idgate keys maintain` (or `idgate keys rotate --kind kek`) and reload the gateways"
    )]
    NoWrappingKek,
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A key-encryption key with its id.
pub struct Kek {
    pub id: String,
    pub created_at_unix: i64,
    pub key: SecretKey32,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish_non_exhaustive()
    }
}

/// When a KEK stops wrapping and when it is destroyed (unix seconds), fixed when it is created.
///
/// `wraps_until` is the end of its epoch; `destroy_after` is `wraps_until` + the longest time a
/// data key it wrapped can stay within retention + a grace (see `keyfile::KekSchedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekDates {
    pub wraps_until_unix: i64,
    pub destroy_after_unix: i64,
}

impl KekDates {
    /// Whether the KEK may wrap a data key at `now`.
    pub fn wraps_at(&self, now_unix: i64) -> bool {
        now_unix < self.wraps_until_unix && now_unix < self.destroy_after_unix
    }

    /// Whether the KEK is past its destruction date at `now` (never to be used again).
    pub fn destroyed_at(&self, now_unix: i64) -> bool {
        now_unix >= self.destroy_after_unix
    }
}

/// The data key of one record, wrapped by a KEK. Equality is constant-time in the wrapped bytes (they
/// hold an AEAD tag): stores compare them to swap keys only if unchanged.
#[derive(Clone)]
pub struct WrappedKey {
    pub kek_id: String,
    /// nonce (24) || ciphertext of the 32-byte data key || tag (16)
    pub bytes: Vec<u8>,
}

/// The encrypted body of one record. Equality is constant-time in its commitment, nonce and
/// ciphertext.
#[derive(Clone)]
pub struct Body {
    pub version: u8,
    pub commitment: [u8; 32],
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

impl ConstantTimeEq for WrappedKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Key ids are public; only the wrapped bytes are compared in constant time.
        subtle::Choice::from(u8::from(self.kek_id == other.kek_id)) & self.bytes.ct_eq(&other.bytes)
    }
}

impl PartialEq for WrappedKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for WrappedKey {}

impl ConstantTimeEq for Body {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.version.ct_eq(&other.version)
            & self.commitment.ct_eq(&other.commitment)
            & self.nonce.ct_eq(&other.nonce)
            & self.ciphertext.ct_eq(&other.ciphertext)
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Body {}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("version", &self.version)
            .field("len", &self.ciphertext.len())
            .finish()
    }
}

impl Body {
    /// version (1) || commitment (32) || nonce (24) || ciphertext
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 32 + NONCE_LEN + self.ciphertext.len());
        out.push(self.version);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let (&version, rest) = bytes.split_first().ok_or(EnvelopeError::Open)?;
        if version != FORMAT_VERSION || rest.len() < 32 + NONCE_LEN + 16 {
            return Err(EnvelopeError::Open);
        }
        let (commitment, rest) = rest.split_at(32);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Self {
            version,
            commitment: commitment.try_into().map_err(|_| EnvelopeError::Open)?,
            nonce: nonce.try_into().map_err(|_| EnvelopeError::Open)?,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

fn associated_data(purpose: &str, kek_id: Option<&str>, case_id: &str, field: &str) -> Vec<u8> {
    // Length-prefix every variable part so that no two different tuples give the same bytes.
    let mut ad = Vec::with_capacity(64);
    ad.extend_from_slice(b"idgate.v1.envelope");
    ad.push(FORMAT_VERSION);
    for part in [purpose, kek_id.unwrap_or(""), case_id, field] {
        ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        ad.extend_from_slice(part.as_bytes());
    }
    ad
}

/// The key-commitment tag of a data key. (HMAC accepts any key length, so the error is theoretical;
/// it still fails the operation rather than produce a tag that commits to nothing.)
fn commitment(data_key: &SecretKey32) -> Result<[u8; 32], EnvelopeError> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(data_key.expose()).map_err(|_| EnvelopeError::Open)?;
    mac.update(COMMIT_LABEL);
    Ok(mac.finalize().into_bytes().into())
}

fn cipher(key: &SecretKey32) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.expose().into())
}

/// The KEKs the gateway holds: the current one wraps new data keys; all of them open old records.
pub struct KekRing {
    current: String,
    keys: HashMap<String, Kek>,
    /// When each KEK was created, where known (key files; not KEKs given in the environment).
    created: HashMap<String, i64>,
    /// The dates of every KEK and the clock they are read against; `None`: an undated ring (tests,
    /// tools), whose current KEK wraps at any time.
    lifetimes: Option<Lifetimes>,
}

/// What makes a ring time-boxed.
struct Lifetimes {
    /// KEKs without an entry are undated (from an earlier version, or the environment without
    /// dates): they open and re-wrap from, never wrap.
    dates: HashMap<String, KekDates>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KekRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekRing")
            .field("current", &self.current)
            .field("count", &self.keys.len())
            .finish()
    }
}

impl KekRing {
    /// The newest KEK (by creation time, then id) is current. `None` when `keys` is empty.
    pub fn new(keys: Vec<Kek>) -> Option<Self> {
        let current = keys
            .iter()
            .max_by(|a, b| a.created_at_unix.cmp(&b.created_at_unix).then_with(|| a.id.cmp(&b.id)))?
            .id
            .clone();
        Some(Self {
            current,
            keys: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
            created: HashMap::new(),
            lifetimes: None,
        })
    }

    /// The same ring, time-boxed: a KEK wraps only before its `wraps_until`, and opens nothing from
    /// its `destroy_after` on, both read on `clock` at every use. KEKs missing from `dates` never wrap.
    pub fn with_dates(mut self, dates: HashMap<String, KekDates>, clock: Arc<dyn Clock>) -> Self {
        self.lifetimes = Some(Lifetimes { dates, clock });
        self
    }

    /// The dates of KEK `id`, if the ring is time-boxed and the KEK dated.
    pub fn dates(&self, id: &str) -> Option<KekDates> {
        self.lifetimes.as_ref()?.dates.get(id).copied()
    }

    /// The KEK that wraps new data keys now, or [`EnvelopeError::NoWrappingKek`].
    fn wrapping_kek(&self) -> Result<&Kek, EnvelopeError> {
        let kek = self.keys.get(&self.current).ok_or(EnvelopeError::NoWrappingKek)?;
        match &self.lifetimes {
            None => Ok(kek),
            Some(l) => match l.dates.get(&self.current) {
                Some(dates) if dates.wraps_at(l.clock.now_unix()) => Ok(kek),
                _ => Err(EnvelopeError::NoWrappingKek),
            },
        }
    }

    /// Whether a new data key can be wrapped now (for readiness and the key gauges).
    pub fn can_wrap(&self) -> bool {
        self.wrapping_kek().is_ok()
    }

    /// Seconds until the current KEK stops wrapping (negative: over), when the ring is time-boxed
    /// and the current KEK dated.
    pub fn current_wraps_for(&self) -> Option<i64> {
        let l = self.lifetimes.as_ref()?;
        Some(l.dates.get(&self.current)?.wraps_until_unix - l.clock.now_unix())
    }

    /// KEK `id`, unless the ring is time-boxed and `id` is past its destruction date.
    fn opening_kek(&self, id: &str) -> Result<&Kek, EnvelopeError> {
        let kek = self.keys.get(id).ok_or(EnvelopeError::Open)?;
        match &self.lifetimes {
            Some(l) if l.dates.get(id).is_some_and(|d| d.destroyed_at(l.clock.now_unix())) => Err(EnvelopeError::Open),
            _ => Ok(kek),
        }
    }

    /// The same ring, knowing when its keys were created (`id → unix seconds`).
    pub fn with_creation_times(mut self, created: HashMap<String, i64>) -> Self {
        self.created = created;
        self
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// When the current KEK was created, where known.
    pub fn current_created_at(&self) -> Option<i64> {
        self.created.get(&self.current).copied()
    }

    /// Encrypts `plaintext` for `case_id` / `field` under a fresh data key wrapped by the current KEK.
    /// Fails with [`EnvelopeError::NoWrappingKek`] (nothing sealed) when no KEK may wrap now.
    pub fn seal(&self, case_id: &str, field: &str, plaintext: &[u8]) -> Result<(WrappedKey, Body), EnvelopeError> {
        let kek = self.wrapping_kek()?;
        let fresh = Fresh {
            data_key: SecretKey32::random()?,
            body_nonce: random::bytes()?,
            wrap_nonce: random::bytes()?,
        };
        seal_with(kek, case_id, field, plaintext, &fresh)
    }

    fn unwrap_key(&self, case_id: &str, field: &str, wrapped: &WrappedKey) -> Result<SecretKey32, EnvelopeError> {
        let kek = self.opening_kek(&wrapped.kek_id)?;
        if wrapped.bytes.len() != NONCE_LEN + 32 + 16 {
            return Err(EnvelopeError::Open);
        }
        let (nonce, ct) = wrapped.bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| EnvelopeError::Open)?;
        let wrap_ad = associated_data("wrap", Some(&kek.id), case_id, field);
        let raw = Zeroizing::new(
            cipher(&kek.key)
                .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &wrap_ad })
                .map_err(|_| EnvelopeError::Open)?,
        );
        let bytes: [u8; 32] = raw.as_slice().try_into().map_err(|_| EnvelopeError::Open)?;
        Ok(SecretKey32::from_bytes(bytes))
    }

    /// Opens a record sealed by [`KekRing::seal`] for the same case and field.
    pub fn open(
        &self,
        case_id: &str,
        field: &str,
        wrapped: &WrappedKey,
        body: &Body,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let data_key = self.unwrap_key(case_id, field, wrapped)?;
        if body.version != FORMAT_VERSION || !bool::from(commitment(&data_key)?.ct_eq(&body.commitment)) {
            return Err(EnvelopeError::Open);
        }
        let body_ad = associated_data("body", None, case_id, field);
        cipher(&data_key)
            .decrypt(
                &XNonce::from(body.nonce),
                Payload {
                    msg: &body.ciphertext,
                    aad: &body_ad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| EnvelopeError::Open)
    }

    /// Re-wraps a data key under the current KEK (key rotation without touching the body); like
    /// [`KekRing::seal`], only while the current KEK may wrap.
    pub fn rewrap(&self, case_id: &str, field: &str, wrapped: &WrappedKey) -> Result<WrappedKey, EnvelopeError> {
        let kek = self.wrapping_kek()?;
        let data_key = self.unwrap_key(case_id, field, wrapped)?;
        wrap(kek, case_id, field, &data_key)
    }
}

/// What a seal draws at random: the data key and the two nonces. Given, not drawn, only by the fixed
/// vectors' test (`tests/vectors/at_rest.json`), which pins the stored bytes.
struct Fresh {
    data_key: SecretKey32,
    body_nonce: [u8; NONCE_LEN],
    wrap_nonce: [u8; NONCE_LEN],
}

/// `plaintext` sealed for `case_id` / `field` under `fresh.data_key`, wrapped by `kek`.
fn seal_with(
    kek: &Kek,
    case_id: &str,
    field: &str,
    plaintext: &[u8],
    fresh: &Fresh,
) -> Result<(WrappedKey, Body), EnvelopeError> {
    let body_ad = associated_data("body", None, case_id, field);
    let ciphertext = cipher(&fresh.data_key)
        .encrypt(
            &XNonce::from(fresh.body_nonce),
            Payload {
                msg: plaintext,
                aad: &body_ad,
            },
        )
        .map_err(|_| EnvelopeError::Open)?;
    Ok((
        wrap_with(kek, case_id, field, &fresh.data_key, fresh.wrap_nonce)?,
        Body {
            version: FORMAT_VERSION,
            commitment: commitment(&fresh.data_key)?,
            nonce: fresh.body_nonce,
            ciphertext,
        },
    ))
}

/// `data_key` wrapped by `kek` for `case_id` / `field` under a fresh nonce.
fn wrap(kek: &Kek, case_id: &str, field: &str, data_key: &SecretKey32) -> Result<WrappedKey, EnvelopeError> {
    wrap_with(kek, case_id, field, data_key, random::bytes()?)
}

/// `data_key` wrapped by `kek` for `case_id` / `field`: nonce (24) || ciphertext || tag.
fn wrap_with(
    kek: &Kek,
    case_id: &str,
    field: &str,
    data_key: &SecretKey32,
    wrap_nonce: [u8; NONCE_LEN],
) -> Result<WrappedKey, EnvelopeError> {
    let wrap_ad = associated_data("wrap", Some(&kek.id), case_id, field);
    let ct = cipher(&kek.key)
        .encrypt(
            &XNonce::from(wrap_nonce),
            Payload {
                msg: data_key.expose(),
                aad: &wrap_ad,
            },
        )
        .map_err(|_| EnvelopeError::Open)?;
    let mut bytes = Vec::with_capacity(NONCE_LEN + ct.len());
    bytes.extend_from_slice(&wrap_nonce);
    bytes.extend_from_slice(&ct);
    Ok(WrappedKey {
        kek_id: kek.id.clone(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(id: &str, at: i64) -> Kek {
        Kek {
            id: id.into(),
            created_at_unix: at,
            key: SecretKey32::random().unwrap(),
        }
    }

    #[test]
    fn round_trip_binding_and_tamper() {
        let ring = KekRing::new(vec![kek("kek-1", 1)]).unwrap();
        let (w, b) = ring.seal("vf_a", "identity", b"secret stuff").unwrap();
        assert_eq!(
            ring.open("vf_a", "identity", &w, &b).unwrap().as_slice(),
            b"secret stuff"
        );
        assert!(ring.open("vf_b", "identity", &w, &b).is_err(), "other case");
        assert!(ring.open("vf_a", "supplement", &w, &b).is_err(), "other field");
        let mut t = b.clone();
        t.ciphertext[0] ^= 1;
        assert!(ring.open("vf_a", "identity", &w, &t).is_err(), "tampered body");
        let mut t = w.clone();
        t.bytes[30] ^= 1;
        assert!(ring.open("vf_a", "identity", &t, &b).is_err(), "tampered wrapped key");
        // A wrapped key of another record with the same case/field does not open this body (commitment).
        let (w2, _) = ring.seal("vf_a", "identity", b"other").unwrap();
        assert!(ring.open("vf_a", "identity", &w2, &b).is_err());
        assert_eq!(Body::from_bytes(&b.to_bytes()).unwrap(), b);
        assert!(Body::from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn rotation_old_records_open_new_use_new_rewrap_moves() {
        let old = kek("kek-1", 1);
        let old_copy = Kek {
            id: old.id.clone(),
            created_at_unix: 1,
            key: old.key.clone(),
        };
        let ring1 = KekRing::new(vec![old]).unwrap();
        let (w, b) = ring1.seal("vf_a", "identity", b"x").unwrap();
        let ring2 = KekRing::new(vec![old_copy, kek("kek-2", 2)]).unwrap();
        assert_eq!(ring2.current_id(), "kek-2");
        assert_eq!(ring2.open("vf_a", "identity", &w, &b).unwrap().as_slice(), b"x");
        let (w_new, _) = ring2.seal("vf_a", "identity", b"y").unwrap();
        assert_eq!(w_new.kek_id, "kek-2");
        let moved = ring2.rewrap("vf_a", "identity", &w).unwrap();
        assert_eq!(moved.kek_id, "kek-2");
        assert_eq!(ring2.open("vf_a", "identity", &moved, &b).unwrap().as_slice(), b"x");
        assert!(ring2.rewrap("vf_b", "identity", &w).is_err());
    }

    #[test]
    fn a_kek_wraps_only_in_its_epoch_and_opens_nothing_past_its_destruction_date() {
        let clock = crate::clock::ManualClock::new(1_000);
        let dates = KekDates {
            wraps_until_unix: 2_000,
            destroy_after_unix: 5_000,
        };
        let kek1 = kek("kek-1", 1);
        let key1 = kek1.key.clone();
        let ring = KekRing::new(vec![kek1])
            .unwrap()
            .with_dates(HashMap::from([("kek-1".to_owned(), dates)]), Arc::new(clock.clone()));
        assert!(ring.can_wrap());
        assert_eq!(ring.current_wraps_for(), Some(1_000));
        let (w, b) = ring.seal("vf_a", "identity", b"x").unwrap();

        clock.set(2_000);
        assert!(!ring.can_wrap(), "the epoch is over");
        assert!(matches!(
            ring.seal("vf_a", "identity", b"y"),
            Err(EnvelopeError::NoWrappingKek)
        ));
        assert!(matches!(
            ring.rewrap("vf_a", "identity", &w),
            Err(EnvelopeError::NoWrappingKek)
        ));
        assert!(
            ring.open("vf_a", "identity", &w, &b).is_ok(),
            "still opens in retention"
        );

        clock.set(5_000);
        assert!(
            ring.open("vf_a", "identity", &w, &b).is_err(),
            "destroyed: never used again"
        );

        // An undated KEK in a time-boxed ring opens, never wraps.
        let undated = KekRing::new(vec![Kek {
            id: "kek-1".into(),
            created_at_unix: 1,
            key: key1,
        }])
        .unwrap()
        .with_dates(HashMap::new(), Arc::new(clock.clone()));
        assert!(!undated.can_wrap());
        assert_eq!(undated.current_wraps_for(), None);
        assert!(undated.open("vf_a", "identity", &w, &b).is_ok());
        assert!(undated.seal("vf_a", "identity", b"z").is_err());
    }

    #[test]
    fn debug_never_shows_keys() {
        let k = kek("kek-1", 1);
        let secret_hex = hex::encode(k.key.expose());
        let ring = KekRing::new(vec![k]).unwrap();
        let (w, b) = ring.seal("vf_a", "identity", b"x").unwrap();
        let text = format!("{ring:?} {w:?} {b:?}");
        assert!(!text.contains(&secret_hex));
        assert!(!text.contains(&hex::encode(&w.bytes)));
    }

    /// The stored bytes against fixed vectors computed without this code (`tests/vectors/at_rest.py`):
    /// sealing with their data key and nonces gives their bytes, and their checked-in blobs open. A
    /// failure here is a change of the stored format, which needs a migration, not new vectors.
    #[test]
    fn stored_envelopes_match_the_independent_vectors_both_ways() {
        use crate::crypto::vectors::{at_rest, bytes, bytes32, list, text};
        let all = at_rest();
        let vectors = list(&all, "envelope");
        assert_eq!(vectors.len(), 3);
        for v in vectors {
            let name = text(v, "name");
            let (case_id, field, kek_id) = (text(v, "case_id"), text(v, "field"), text(v, "kek_id"));
            let kek = Kek {
                id: kek_id.into(),
                created_at_unix: 1,
                key: SecretKey32::from_bytes(bytes32(v, "kek")),
            };
            let plaintext = bytes(v, "plaintext");
            assert_eq!(
                associated_data("body", None, case_id, field),
                bytes(v, "body_ad"),
                "{name}"
            );
            assert_eq!(
                associated_data("wrap", Some(kek_id), case_id, field),
                bytes(v, "wrap_ad"),
                "{name}"
            );

            // Seal: byte for byte.
            let fresh = Fresh {
                data_key: SecretKey32::from_bytes(bytes32(v, "data_key")),
                body_nonce: bytes(v, "body_nonce").try_into().unwrap(),
                wrap_nonce: bytes(v, "wrap_nonce").try_into().unwrap(),
            };
            let (wrapped, body) = seal_with(&kek, case_id, field, &plaintext, &fresh).unwrap();
            assert_eq!(hex::encode(body.commitment), text(v, "commitment"), "{name}");
            assert_eq!(hex::encode(body.to_bytes()), text(v, "body"), "{name}");
            assert_eq!(hex::encode(&wrapped.bytes), text(v, "wrapped_key"), "{name}");
            assert_eq!(wrapped.kek_id, kek_id);

            // Open: the checked-in blob, through the ring as the gateway holds it.
            let ring = KekRing::new(vec![kek]).unwrap();
            let stored_body = Body::from_bytes(&bytes(v, "body")).unwrap();
            let stored_key = WrappedKey {
                kek_id: kek_id.into(),
                bytes: bytes(v, "wrapped_key"),
            };
            assert_eq!(
                ring.open(case_id, field, &stored_key, &stored_body).unwrap().as_slice(),
                plaintext.as_slice(),
                "{name}"
            );
            assert!(
                ring.open(case_id, "other", &stored_key, &stored_body).is_err(),
                "{name}"
            );
        }
    }
}
