//! Fixed known-answer vectors of what stays in storage across versions (tests only).
//!
//! `tests/vectors/at_rest.json` holds the envelope, blind-index and Redis case-hash bytes computed
//! from fixed inputs by `tests/vectors/at_rest.py`, without this crate's code;
//! `tests/vectors/hpke_rfc9180_*.json` is RFC 9180's own test-vector entry for the sealing suite.
//! `tests/vectors/README.md` says where each comes from. A test that fails against them means a
//! stored format (or the HPKE suite) changed: that is a migration to design, never a vector to
//! regenerate.

use serde_json::Value;

/// `tests/vectors/at_rest.json`.
pub(crate) fn at_rest() -> Value {
    serde_json::from_str(include_str!("../../tests/vectors/at_rest.json")).expect("at_rest.json parses")
}

/// RFC 9180's entry for mode Base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
pub(crate) fn hpke_rfc9180() -> Value {
    serde_json::from_str(include_str!(
        "../../tests/vectors/hpke_rfc9180_base_x25519_sha256_chacha20poly1305.json"
    ))
    .expect("the RFC 9180 entry parses")
}

/// The string field `key` of `v` (a missing field fails the test, it does not skip a check).
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key:?} is missing or not a string"))
}

/// The hex field `key` of `v`, decoded.
pub(crate) fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(v, key)).unwrap_or_else(|_| panic!("vector field {key:?} is not hex"))
}

/// The hex field `key` of `v`, 32 bytes.
pub(crate) fn bytes32(v: &Value, key: &str) -> [u8; 32] {
    bytes(v, key)
        .try_into()
        .unwrap_or_else(|_| panic!("vector field {key:?} is not 32 bytes"))
}

/// The array field `key` of `v`.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("vector field {key:?} is missing or not an array"))
}
