//! The stored Redis encodings against fixed vectors computed without this code
//! (`tests/vectors/at_rest.py`; see `crate::crypto::vectors`): the case hash with its integrity tag,
//! and the wrapped-key value. A failure here is a change of what Redis holds, which needs a new
//! [`RECORD_VERSION`] and a migration, not new vectors.

use super::*;
use crate::crypto::SecretKey32;
use crate::crypto::vectors::{at_rest, bytes, bytes32, list, text};
use serde_json::Value;

/// The record that a vector's `record` strings describe.
fn record_of(f: &Value) -> CaseRecord {
    let optional = |key: &str| f[key].as_str().map(str::to_owned);
    let number = |key: &str| text(f, key).parse::<i64>().unwrap();
    CaseRecord {
        id: text(f, "id").into(),
        account_id: AccountId::parse(text(f, "account")).unwrap(),
        request_id: RequestId::parse(text(f, "request")).unwrap(),
        principal: text(f, "principal").into(),
        purpose: Purpose::from_str_name(text(f, "purpose")).unwrap(),
        status: parse_status(text(f, "status")).unwrap(),
        refusal: optional("refusal").map(|code| CaseRefusal::from_code(&code).unwrap()),
        provider: optional("provider"),
        created_at_unix: number("created"),
        updated_at_unix: number("updated"),
        lease_until_unix: number("lease"),
        pii_expires_at_unix: optional("pii_exp").map(|at| at.parse().unwrap()),
        fingerprint: text(f, "fp").into(),
        status_at_unix: number("status_at"),
        anchor_index: optional("anchor"),
        erase_requested: optional("erase").as_deref() == Some("1"),
        review_reason: optional("why").map(|code| ReviewReason::from_code(&code).unwrap()),
    }
}

#[test]
fn case_hashes_and_their_tags_match_the_independent_vectors_both_ways() {
    let all = at_rest();
    let v = &all["redis_record"];
    let keys = BlindIndexer::new(text(v, "key_id").into(), &SecretKey32::from_bytes(bytes32(v, "root")));
    let records = list(v, "records");
    assert_eq!(records.len(), 2);
    for r in records {
        let record = record_of(&r["record"]);
        assert_eq!(record_mac(&keys, &record), text(r, "mac"), "{}", record.id);
        let stored: Vec<(String, String)> = list(r, "case_hash")
            .iter()
            .map(|pair| {
                let pair = pair.as_array().unwrap();
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        // Written: the same fields, values and order.
        let written: Vec<(String, String)> = encode_record(&keys, &record)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(written, stored, "{}", record.id);
        // Read: the checked-in hash passes its integrity check and gives the record back.
        let pairs = stored
            .iter()
            .flat_map(|(k, v)| [k.clone().into_bytes(), v.clone().into_bytes()])
            .collect();
        assert_eq!(decode_record(&keys, "t", &record.id, pairs).unwrap(), record);
    }
}

#[test]
fn wrapped_key_values_match_the_independent_vectors_both_ways() {
    let all = at_rest();
    let envelopes = list(&all, "envelope");
    assert!(!envelopes.is_empty());
    for e in envelopes {
        let key = WrappedKey {
            kek_id: text(e, "kek_id").into(),
            bytes: bytes(e, "wrapped_key"),
        };
        let stored = bytes(e, "redis_wrapped_key");
        assert_eq!(encode_wrapped_key(&key).unwrap(), stored);
        assert_eq!(decode_wrapped_key("t", &stored).unwrap(), key);
        // The body is stored as `Body::to_bytes` (its vector is checked in `crypto::envelope`).
        let body = Body::from_bytes(&bytes(e, "body")).unwrap();
        assert_eq!(
            decode_sealed_value("t", Some(stored.clone()), Some(bytes(e, "body"))).unwrap(),
            Some(SealedValue {
                wrapped_key: key.clone(),
                body: body.clone(),
            })
        );
        assert_eq!(
            encode_sealed_value(Some(&SealedValue { wrapped_key: key, body })).unwrap(),
            (stored, bytes(e, "body"))
        );
    }
}
