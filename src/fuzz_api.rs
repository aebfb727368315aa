//! Entry points for the stable-toolchain fuzz harness (`tests/fuzz.rs`) into parsers of untrusted
//! bytes that are private to their modules: provider answers, what Redis returns, configuration.
//!
//! Not an API (hidden from the docs). Each function only forwards to the parser the gateway itself
//! uses; nothing here may add behaviour, and nothing here may print what it is given.

use crate::config::{Config, ConfigError};
use crate::crypto::blind_index::BlindIndexer;
use crate::crypto::envelope::WrappedKey;
use crate::providers::{Outcome, ProviderError};
use crate::store::redis::{audit, record, review};
use crate::store::{AuditEvent, CaseRecord, ReviewState, StoreError};

/// A provider's answer as the adapter reads it: the outcome and the sanitized request id.
pub type Interpreted = (Result<Outcome, ProviderError>, Option<String>);

/// Tencent FaceID: one HTTP answer (`action` is `IdCardVerification` or `ImageRecognitionV2`).
pub fn tencent_answer(action: &str, status: u16, body: &[u8]) -> Interpreted {
    crate::providers::tencent::interpret(action, status, body)
}

/// Alibaba Cloud ID verification: one HTTP answer.
pub fn aliyun_answer(action: &str, status: u16, body: &[u8]) -> Interpreted {
    crate::providers::aliyun::interpret(action, status, body)
}

/// A case hash as `HGETALL` returns it (name, value, name, value, …), for case `id`.
pub fn decode_case(keys: &BlindIndexer, id: &str, pairs: Vec<Vec<u8>>) -> Result<CaseRecord, StoreError> {
    record::decode_record(keys, "fuzz", id, pairs)
}

/// The `HGETALL` pairs the store writes for `record`.
pub fn encode_case(keys: &BlindIndexer, record: &CaseRecord) -> Vec<Vec<u8>> {
    record::encode_record(keys, record)
        .into_iter()
        .flat_map(|(name, value)| [name.as_bytes().to_vec(), value.into_bytes()])
        .collect()
}

/// A stored wrapped data key (`pii:key`).
pub fn decode_wrapped_key(bytes: &[u8]) -> Result<WrappedKey, StoreError> {
    record::decode_wrapped_key("fuzz", bytes)
}

pub fn encode_wrapped_key(key: &WrappedKey) -> Result<Vec<u8>, StoreError> {
    record::encode_wrapped_key(key)
}

/// An audit stream entry's field/value list.
pub fn decode_audit(fields: Vec<Vec<u8>>) -> Result<AuditEvent, StoreError> {
    audit::decode_audit(fields)
}

/// A review hash as `HGETALL` pairs.
pub fn decode_review(pairs: Vec<Vec<u8>>) -> Result<ReviewState, StoreError> {
    review::decode_review("fuzz", pairs)
}

/// An `XREADGROUP` reply on the review queue: how many entries it holds, and how many name a case.
pub fn decode_queue_read(value: &::redis::Value) -> Result<(usize, usize), StoreError> {
    let entries = review::decode_read("fuzz", value)?;
    Ok((entries.len(), entries.iter().filter(|e| e.case.is_some()).count()))
}

/// Defaults, then `text` as the configuration file (no environment).
pub fn config_from_toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text)
}
