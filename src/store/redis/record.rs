//! The stored encodings of the Redis store: the case hash (with its integrity tag) and the wrapped
//! data key. Changing either changes what is stored: a new case hash encoding takes a new
//! [`RECORD_VERSION`], and records of older versions are refused, never trusted.
//!
//! Must never put a field of a record into a log or an error (a warning names the field only), nor
//! panic on bytes read from Redis.

use std::collections::HashMap;

use super::corrupt;
use crate::crypto::blind_index::{BlindIndexer, IndexUse};
use crate::crypto::envelope::{Body, WrappedKey};
use crate::domain::{AccountId, CaseRefusal, Purpose, RequestId, ReviewReason};
use crate::store::{CaseRecord, CaseStatus, SealedValue, StoreError};

/// Version of the case hash encoding (field `v`). Version 2 added the integrity tag (`mac`), the
/// content fingerprint (`fp`), `status_at`, `anchor` and `erase`; a version-1 record has no tag and
/// is refused as failing its integrity check.
const RECORD_VERSION: &str = "2";
/// Version byte of the wrapped-key encoding.
const WRAPPED_KEY_VERSION: u8 = 1;

fn parse_status(s: &str) -> Option<CaseStatus> {
    use CaseStatus::*;
    [Processing, Verified, NotVerified, PendingReview, Expired, Erased]
        .into_iter()
        .find(|status| status.as_str() == s)
}

/// The fields the integrity tag covers, as the strings stored in the case hash. The tag is computed
/// over these strings (not over typed values), so a stored record is checked exactly as written.
struct Signed<'a> {
    id: &'a str,
    account: &'a str,
    request: &'a str,
    principal: &'a str,
    purpose: &'a str,
    fingerprint: &'a str,
    status: &'a str,
    /// Empty: no refusal.
    refusal: &'a str,
    status_at: &'a str,
}

impl<'a> Signed<'a> {
    /// The stored strings of `record`'s signed fields (`status_at` given already formatted).
    fn of(record: &'a CaseRecord, status_at: &'a str) -> Self {
        Signed {
            id: &record.id,
            account: record.account_id.as_str(),
            request: record.request_id.as_str(),
            principal: &record.principal,
            purpose: record.purpose.as_str(),
            fingerprint: &record.fingerprint,
            status: record.status.as_str(),
            refusal: record.refusal.map_or("", CaseRefusal::code),
            status_at,
        }
    }

    fn parts(&self) -> [&'a [u8]; 11] {
        [
            b"idgate.v1.case",
            RECORD_VERSION.as_bytes(),
            self.id.as_bytes(),
            self.account.as_bytes(),
            self.request.as_bytes(),
            self.principal.as_bytes(),
            self.purpose.as_bytes(),
            self.fingerprint.as_bytes(),
            self.status.as_bytes(),
            self.refusal.as_bytes(),
            self.status_at.as_bytes(),
        ]
    }
}

/// The record's integrity tag (field `mac`): a keyed MAC, under a key the gateway holds and Redis
/// never sees, over the fields an answer is made of — identity, purpose, content fingerprint,
/// status, refusal and the time the status was set. Someone who can write to Redis cannot turn a
/// case into `verified` without it.
fn record_mac(keys: &BlindIndexer, record: &CaseRecord) -> String {
    let status_at = record.status_at_unix.to_string();
    keys.tag(IndexUse::RecordMac, &Signed::of(record, &status_at).parts())
}

/// The tag `record` would carry with `status` / `refusal` set at `now_unix` (what a script is about
/// to write).
pub(super) fn mac_after(
    keys: &BlindIndexer,
    record: &CaseRecord,
    status: CaseStatus,
    refusal: Option<CaseRefusal>,
    now_unix: i64,
) -> String {
    let mut next = record.clone();
    next.status = status;
    next.refusal = refusal;
    next.status_at_unix = now_unix;
    record_mac(keys, &next)
}

/// The case hash of a record (see the module docs), as field/value pairs, with its integrity tag.
pub(crate) fn encode_record(keys: &BlindIndexer, record: &CaseRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("v", RECORD_VERSION.to_owned()),
        ("id", record.id.clone()),
        ("account", record.account_id.as_str().to_owned()),
        ("request", record.request_id.as_str().to_owned()),
        ("principal", record.principal.clone()),
        ("purpose", record.purpose.as_str().to_owned()),
        ("status", record.status.as_str().to_owned()),
        ("created", record.created_at_unix.to_string()),
        ("updated", record.updated_at_unix.to_string()),
        ("lease", record.lease_until_unix.to_string()),
        ("fp", record.fingerprint.clone()),
        ("status_at", record.status_at_unix.to_string()),
        ("mac", record_mac(keys, record)),
    ];
    if let Some(provider) = &record.provider {
        fields.push(("provider", provider.clone()));
    }
    if let Some(refusal) = record.refusal {
        fields.push(("refusal", refusal.code().to_owned()));
    }
    if let Some(at) = record.pii_expires_at_unix {
        fields.push(("pii_exp", at.to_string()));
    }
    if let Some(index) = &record.anchor_index {
        fields.push(("anchor", index.clone()));
    }
    if record.erase_requested {
        fields.push(("erase", "1".to_owned()));
    }
    if let Some(why) = record.review_reason {
        fields.push(("why", why.code().to_owned()));
    }
    fields
}

/// Reads a case hash given as `HGETALL` pairs and checks its integrity tag. `id` is the case the key
/// was built from. Returns the record and its stored tag (for compare-and-set by the scripts).
pub(super) fn decode_record_tagged(
    keys: &BlindIndexer,
    op: &'static str,
    id: &str,
    pairs: Vec<Vec<u8>>,
) -> Result<(CaseRecord, String), StoreError> {
    if !pairs.len().is_multiple_of(2) {
        return Err(corrupt(op, "case"));
    }
    let mut fields: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(pairs.len() / 2);
    let mut pairs = pairs.into_iter();
    while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
        fields.insert(name, value);
    }
    let text = |field: &'static str| -> Result<Option<String>, StoreError> {
        fields
            .get(field.as_bytes())
            .map(|v| String::from_utf8(v.clone()).map_err(|_| corrupt(op, field)))
            .transpose()
    };
    let required = |field: &'static str| text(field)?.ok_or_else(|| corrupt(op, field));
    let number = |field: &'static str| -> Result<Option<i64>, StoreError> {
        text(field)?
            .map(|v| v.parse::<i64>().map_err(|_| corrupt(op, field)))
            .transpose()
    };
    let required_number = |field: &'static str| number(field)?.ok_or_else(|| corrupt(op, field));
    let integrity = || {
        tracing::warn!(op, "case record failed its integrity check");
        StoreError::Integrity { case_id: id.to_owned() }
    };

    // A record of another version (or none) carries no valid tag: never trusted.
    if text("v")?.as_deref() != Some(RECORD_VERSION) {
        return Err(integrity());
    }
    let stored_id = required("id")?;
    if stored_id != id {
        return Err(corrupt(op, "id"));
    }
    let account_id = required("account")?;
    let request_id = required("request")?;
    let principal = required("principal")?;
    let purpose = Purpose::from_str_name(&required("purpose")?).ok_or_else(integrity)?;
    let status = parse_status(&required("status")?).ok_or_else(integrity)?;
    let refusal = text("refusal")?;
    let provider = text("provider")?;
    let created_at_unix = required_number("created")?;
    let updated_at_unix = required_number("updated")?;
    let lease_until_unix = required_number("lease")?;
    let pii_expires_at_unix = number("pii_exp")?;
    let fingerprint = required("fp")?;
    let status_at_unix = required_number("status_at")?;
    let anchor_index = text("anchor")?;
    let erase_requested = text("erase")?.as_deref() == Some("1");
    let why = text("why")?;
    let mac = text("mac")?.ok_or_else(integrity)?;
    // The tag is checked over the strings as stored, before any of them is read as a typed value:
    // an edited field fails here, whatever it was edited to.
    let status_at = status_at_unix.to_string();
    let signed = Signed {
        id: &stored_id,
        account: &account_id,
        request: &request_id,
        principal: &principal,
        purpose: purpose.as_str(),
        fingerprint: &fingerprint,
        status: status.as_str(),
        refusal: refusal.as_deref().unwrap_or(""),
        status_at: &status_at,
    };
    if !keys.tag_matches(IndexUse::RecordMac, &mac, &signed.parts()) {
        return Err(integrity());
    }
    // Signed, so written by a gateway, which only ever stores parsed ids: one that does not parse
    // was not written by this version and is not answered from.
    let account_id = AccountId::parse(&account_id).map_err(|_| corrupt(op, "account"))?;
    let request_id = RequestId::parse(&request_id).map_err(|_| corrupt(op, "request"))?;
    // Signed, but a code this version does not know (a newer version wrote it): not answered from.
    let refusal = refusal
        .map(|code| CaseRefusal::from_code(&code).ok_or_else(|| corrupt(op, "refusal")))
        .transpose()?;
    let review_reason = why
        .map(|code| ReviewReason::from_code(&code).ok_or_else(|| corrupt(op, "why")))
        .transpose()?;
    let record = CaseRecord {
        id: stored_id,
        account_id,
        request_id,
        principal,
        purpose,
        status,
        refusal,
        provider,
        created_at_unix,
        updated_at_unix,
        lease_until_unix,
        pii_expires_at_unix,
        fingerprint,
        status_at_unix,
        anchor_index,
        erase_requested,
        review_reason,
    };
    Ok((record, mac))
}

/// [`decode_record_tagged`] without the tag.
pub(crate) fn decode_record(
    keys: &BlindIndexer,
    op: &'static str,
    id: &str,
    pairs: Vec<Vec<u8>>,
) -> Result<CaseRecord, StoreError> {
    decode_record_tagged(keys, op, id, pairs).map(|(record, _)| record)
}

/// `0x01 ‖ u16 BE length of the KEK id ‖ KEK id ‖ wrapped bytes`.
pub(crate) fn encode_wrapped_key(key: &WrappedKey) -> Result<Vec<u8>, StoreError> {
    let id = key.kek_id.as_bytes();
    let len = u16::try_from(id.len()).map_err(|_| corrupt("encode", "kek_id"))?;
    let mut out = Vec::with_capacity(3 + id.len() + key.bytes.len());
    out.push(WRAPPED_KEY_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&key.bytes);
    Ok(out)
}

pub(crate) fn decode_wrapped_key(op: &'static str, bytes: &[u8]) -> Result<WrappedKey, StoreError> {
    let bad = || corrupt(op, "pii:key");
    let (&version, rest) = bytes.split_first().ok_or_else(bad)?;
    if version != WRAPPED_KEY_VERSION || rest.len() < 2 {
        return Err(bad());
    }
    let (len, rest) = rest.split_at(2);
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if rest.len() < len {
        return Err(bad());
    }
    let (id, wrapped) = rest.split_at(len);
    Ok(WrappedKey {
        kek_id: String::from_utf8(id.to_vec()).map_err(|_| bad())?,
        bytes: wrapped.to_vec(),
    })
}

/// A sealed value as the two stored strings (wrapped key, body); two empty strings for none (what
/// the scripts take as "no face").
pub(crate) fn encode_sealed_value(value: Option<&SealedValue>) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    match value {
        Some(value) => Ok((encode_wrapped_key(&value.wrapped_key)?, value.body.to_bytes())),
        None => Ok((Vec::new(), Vec::new())),
    }
}

/// A sealed value read as its wrapped key and body (`None` when either is absent or empty: a part
/// half gone is being destroyed and is not usable).
pub(crate) fn decode_sealed_value(
    op: &'static str,
    key: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
) -> Result<Option<SealedValue>, StoreError> {
    match (key, body) {
        (Some(key), Some(body)) if !key.is_empty() && !body.is_empty() => Ok(Some(SealedValue {
            wrapped_key: decode_wrapped_key(op, &key)?,
            body: Body::from_bytes(&body).map_err(|_| corrupt(op, "body"))?,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CaseRecord {
        CaseRecord {
            id: "vf_1".into(),
            account_id: AccountId::parse("acct").unwrap(),
            request_id: RequestId::parse("r").unwrap(),
            principal: "onboarding".into(),
            purpose: Purpose::Radio,
            status: CaseStatus::PendingReview,
            refusal: None,
            provider: Some("p".into()),
            created_at_unix: 1,
            updated_at_unix: 2,
            lease_until_unix: 3,
            pii_expires_at_unix: Some(4),
            fingerprint: "bk-1:00ff".into(),
            status_at_unix: 2,
            anchor_index: None,
            erase_requested: false,
            review_reason: Some(ReviewReason::SimilarityGreyZone),
        }
    }

    fn keys() -> BlindIndexer {
        BlindIndexer::new("bk-1".into(), &crate::crypto::SecretKey32::from_bytes([9; 32]))
    }

    fn pairs(record: &CaseRecord) -> Vec<Vec<u8>> {
        encode_record(&keys(), record)
            .into_iter()
            .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.into_bytes()])
            .collect()
    }

    #[test]
    fn records_round_trip() {
        let r = record();
        assert_eq!(decode_record(&keys(), "t", "vf_1", pairs(&r)).unwrap(), r);
        let mut none = r.clone();
        none.provider = None;
        none.pii_expires_at_unix = None;
        none.refusal = Some(CaseRefusal::FaceImageUnusable);
        assert_eq!(decode_record(&keys(), "t", "vf_1", pairs(&none)).unwrap(), none);
        for status in [
            CaseStatus::Processing,
            CaseStatus::Verified,
            CaseStatus::NotVerified,
            CaseStatus::PendingReview,
            CaseStatus::Expired,
            CaseStatus::Erased,
        ] {
            assert_eq!(parse_status(status.as_str()), Some(status));
        }
    }

    /// A case hash as the previous encoding (string fields) wrote it, field by field in its order,
    /// with its tag computed by hand over the stored strings.
    fn written_before(
        id: &str,
        status: &str,
        refusal: Option<&str>,
        extra: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let mac = keys().tag(
            IndexUse::RecordMac,
            &[
                b"idgate.v1.case",
                b"2",
                id.as_bytes(),
                b"acct-7",
                b"req-7",
                b"onboarding-dev",
                b"anchor",
                b"bk-1:00ff",
                status.as_bytes(),
                refusal.unwrap_or("").as_bytes(),
                b"1796083260",
            ],
        );
        let mut fields: Vec<(&'static str, String)> = [
            ("v", "2"),
            ("id", id),
            ("account", "acct-7"),
            ("request", "req-7"),
            ("principal", "onboarding-dev"),
            ("purpose", "anchor"),
            ("status", status),
            ("created", "1796083200"),
            ("updated", "1796083260"),
            ("lease", "1796083230"),
            ("fp", "bk-1:00ff"),
            ("status_at", "1796083260"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        fields.push(("mac", mac));
        fields.push(("provider", "tencent-primary".to_owned()));
        if let Some(refusal) = refusal {
            fields.push(("refusal", refusal.to_owned()));
        }
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    }

    #[test]
    fn records_written_by_the_string_encoding_read_back_typed_and_encode_byte_identically() {
        let id = "vf_abcdefghijklmnopqrstuvwxyz";
        let cases = [
            (
                written_before(id, "not_verified", Some("ID_ACCOUNT_LIMIT"), &[]),
                Some(CaseRefusal::IdAccountLimit),
                None,
            ),
            (
                written_before(id, "not_verified", Some("FACE_IMAGE_UNUSABLE"), &[]),
                Some(CaseRefusal::FaceImageUnusable),
                None,
            ),
            (
                written_before(
                    id,
                    "pending_review",
                    None,
                    &[("pii_exp", "1796342460"), ("why", "SIMILARITY_GREY_ZONE")],
                ),
                None,
                Some(ReviewReason::SimilarityGreyZone),
            ),
            (
                written_before(
                    id,
                    "pending_review",
                    None,
                    &[("pii_exp", "1796342460"), ("why", "PROVIDERS_UNAVAILABLE")],
                ),
                None,
                Some(ReviewReason::ProvidersUnavailable),
            ),
        ];
        for (stored, refusal, review_reason) in cases {
            let pairs = stored
                .iter()
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.as_bytes().to_vec()])
                .collect();
            let record = decode_record(&keys(), "t", id, pairs).expect("an old record reads back");
            assert_eq!((record.refusal, record.review_reason), (refusal, review_reason));
            assert_eq!(record.account_id.as_str(), "acct-7");
            assert_eq!(record.request_id.as_str(), "req-7");
            // Written again, it is the same hash, byte for byte and in the same order.
            assert_eq!(encode_record(&keys(), &record), stored);
        }
    }

    #[test]
    fn signed_but_unknown_codes_are_refused_not_guessed() {
        let id = "vf_abcdefghijklmnopqrstuvwxyz";
        let pairs = |fields: Vec<(&'static str, String)>| {
            fields
                .into_iter()
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.into_bytes()])
                .collect()
        };
        // A refusal this version does not know, under a valid tag (a newer version wrote it).
        let newer = written_before(id, "not_verified", Some("SOME_LATER_REFUSAL"), &[]);
        assert!(matches!(
            decode_record(&keys(), "t", id, pairs(newer)),
            Err(StoreError::Unavailable)
        ));
        let why = written_before(id, "pending_review", None, &[("why", "SOME_LATER_REASON")]);
        assert!(matches!(
            decode_record(&keys(), "t", id, pairs(why)),
            Err(StoreError::Unavailable)
        ));
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = pairs(&record());
        assert!(decode_record(&keys(), "t", "vf_2", good.clone()).is_err(), "other id");
        for i in (1..good.len()).step_by(2) {
            let mut bad = good.clone();
            bad[i] = vec![0xff, b'x'];
            assert!(decode_record(&keys(), "t", "vf_1", bad).is_err());
        }
        let mut odd = good.clone();
        odd.pop();
        assert!(decode_record(&keys(), "t", "vf_1", odd).is_err());
        assert!(decode_record(&keys(), "t", "vf_1", Vec::new()).is_err());
    }

    #[test]
    fn an_edited_record_fails_its_integrity_check_and_old_keys_still_verify() {
        let mut r = record();
        r.status = CaseStatus::NotVerified;
        let good = pairs(&r);
        // Someone with write access flips the status (or the refusal, or the time) in the store.
        for (field, value) in [
            ("status", "verified"),
            ("refusal", "X"),
            ("status_at", "9"),
            ("fp", "bk-1:01"),
        ] {
            let mut edited = good.clone();
            match edited.iter().position(|v| v.as_slice() == field.as_bytes()) {
                Some(at) => edited[at + 1] = value.as_bytes().to_vec(),
                None => edited.extend([field.as_bytes().to_vec(), value.as_bytes().to_vec()]),
            }
            assert!(
                matches!(
                    decode_record(&keys(), "t", "vf_1", edited),
                    Err(StoreError::Integrity { ref case_id }) if case_id == "vf_1"
                ),
                "{field}"
            );
        }
        // A record of the previous encoding has no tag: refused, never trusted.
        let mut v1 = good.clone();
        let at = v1.iter().position(|v| v.as_slice() == b"v").unwrap();
        v1[at + 1] = b"1".to_vec();
        assert!(matches!(
            decode_record(&keys(), "t", "vf_1", v1),
            Err(StoreError::Integrity { .. })
        ));
        // After a rotation the old key still verifies old records.
        let rotated = BlindIndexer::ring(vec![
            crate::crypto::blind_index::BlindKey {
                id: "bk-1".into(),
                version: 1,
                created_at_unix: 1,
                root: crate::crypto::SecretKey32::from_bytes([9; 32]),
            },
            crate::crypto::blind_index::BlindKey {
                id: "bk-2".into(),
                version: 2,
                created_at_unix: 2,
                root: crate::crypto::SecretKey32::from_bytes([10; 32]),
            },
        ])
        .unwrap();
        assert_eq!(decode_record(&rotated, "t", "vf_1", good).unwrap(), r);
    }

    #[test]
    fn wrapped_keys_round_trip_and_reject_garbage() {
        let key = WrappedKey {
            kek_id: "kek-1".into(),
            bytes: vec![7; 72],
        };
        let bytes = encode_wrapped_key(&key).unwrap();
        assert_eq!(decode_wrapped_key("t", &bytes).unwrap(), key);
        for cut in 0..8 {
            assert!(decode_wrapped_key("t", &bytes[..cut]).is_err());
        }
        assert!(decode_wrapped_key("t", &[2, 0, 0]).is_err());
    }
}

#[cfg(test)]
mod vectors;
