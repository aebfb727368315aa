//! What Redis returns: case hashes (integrity-tagged), wrapped data keys, audit entries, review
//! hashes and review-queue replies. A hostile or damaged store gets an error, never a panic and
//! never a record it did not sign.

use idgate::crypto::SecretKey32;
use idgate::crypto::blind_index::BlindIndexer;
use idgate::crypto::envelope::WrappedKey;
use idgate::domain::{AccountId, CaseRefusal, Purpose, RequestId, ReviewReason};
use idgate::fuzz_api::{
    decode_audit, decode_case, decode_queue_read, decode_review, decode_wrapped_key, encode_case, encode_wrapped_key,
};
use idgate::store::{CaseRecord, CaseStatus};
use redis::Value;

use super::harness::{SEP, fuzz, join};

const CASE_ID: &str = "vf_0123456789abcdef";

fn keys() -> BlindIndexer {
    BlindIndexer::new("bk-1".into(), &SecretKey32::from_bytes([9; 32]))
}

fn records() -> Vec<CaseRecord> {
    let base = CaseRecord {
        id: CASE_ID.into(),
        account_id: AccountId::parse("acct-1").unwrap(),
        request_id: RequestId::parse("req-1").unwrap(),
        principal: "onboarding-dev".into(),
        purpose: Purpose::Anchor,
        status: CaseStatus::PendingReview,
        refusal: None,
        provider: Some("tencent-primary".into()),
        created_at_unix: 1_796_083_200,
        updated_at_unix: 1_796_083_201,
        lease_until_unix: 0,
        pii_expires_at_unix: Some(1_796_342_400),
        fingerprint: "bk-1:00ff".into(),
        status_at_unix: 1_796_083_201,
        anchor_index: None,
        erase_requested: false,
        review_reason: Some(ReviewReason::SimilarityGreyZone),
    };
    let mut refused = base.clone();
    refused.status = CaseStatus::NotVerified;
    refused.purpose = Purpose::ShortVideo;
    refused.refusal = Some(CaseRefusal::FaceImageUnusable);
    refused.pii_expires_at_unix = None;
    refused.review_reason = None;
    let mut verified = base.clone();
    verified.status = CaseStatus::Verified;
    verified.anchor_index = Some("bk-1:abcd".into());
    verified.erase_requested = true;
    vec![base, refused, verified]
}

fn split_pairs(input: &[u8]) -> Vec<Vec<u8>> {
    if input.is_empty() {
        return Vec::new();
    }
    input.split(|&b| b == SEP).map(<[u8]>::to_vec).collect()
}

fn join_pairs(pairs: &[Vec<u8>]) -> Vec<u8> {
    join(&pairs.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

#[test]
fn fuzz_store_case() {
    let keys = keys();
    let records = records();
    let seeds = records.iter().map(|r| join_pairs(&encode_case(&keys, r))).collect();
    fuzz("store_case", seeds, 1 << 12, |input| {
        if let Ok(record) = decode_case(&keys, CASE_ID, split_pairs(input)) {
            // What the gateway signed, and nothing else: the signed fields of a seed.
            let signed = |r: &CaseRecord| {
                (
                    r.id.clone(),
                    r.account_id.clone(),
                    r.request_id.clone(),
                    r.principal.clone(),
                    r.purpose,
                    r.status,
                    r.refusal,
                    r.fingerprint.clone(),
                    r.status_at_unix,
                )
            };
            assert!(
                records.iter().any(|r| signed(r) == signed(&record)),
                "an unsigned record was accepted"
            );
            let again = decode_case(&keys, CASE_ID, encode_case(&keys, &record)).expect("round trip");
            assert_eq!(again, record);
        }
    });
}

#[test]
fn fuzz_store_wrapped_key() {
    let key = WrappedKey {
        kek_id: "kek-2026-12".into(),
        bytes: vec![0x5a; 72],
    };
    let seeds = vec![encode_wrapped_key(&key).expect("encode"), vec![1, 0xff, 0xff], vec![]];
    fuzz("store_wrapped_key", seeds, 1024, |input| {
        if let Ok(key) = decode_wrapped_key(input) {
            assert_eq!(encode_wrapped_key(&key).expect("re-encode"), input);
        }
    });
}

#[test]
fn fuzz_store_audit() {
    let seed = join(&[
        b"at",
        b"1796083200",
        b"actor",
        b"idgate",
        b"action",
        b"case_expired",
        b"case",
        CASE_ID.as_bytes(),
        b"detail",
        b"ttl",
    ]);
    fuzz("store_audit", vec![seed, b"at\x1e-1".to_vec()], 1024, |input| {
        if let Ok(event) = decode_audit(split_pairs(input)) {
            assert!(event.case_id.is_none() || input.windows(4).any(|w| w == b"case"));
        }
    });
}

#[test]
fn fuzz_store_review() {
    let seed = join(&[
        b"queued",
        b"10",
        b"holder",
        b"rev-1",
        b"until",
        b"70",
        b"claimed",
        br#"["rev-1"]"#,
        b"approvals",
        b"[]",
        b"supplement",
        b"1",
        b"supplements",
        br#"["s-1"]"#,
    ]);
    fuzz("store_review", vec![seed], 1024, |input| {
        let _ = decode_review(split_pairs(input));
    });
}

/// Builds a RESP value from bytes: a small grammar, so that mutations reach nested shapes.
fn value(input: &mut &[u8], depth: u8) -> Value {
    let Some((&tag, rest)) = input.split_first() else {
        return Value::Nil;
    };
    *input = rest;
    let take = |input: &mut &[u8]| {
        let n = usize::from(input.first().copied().unwrap_or(0) % 24).min(input.len().saturating_sub(1));
        let bytes = input.get(1..1 + n).unwrap_or(&[]).to_vec();
        *input = input.get(1 + n..).unwrap_or(&[]);
        bytes
    };
    match tag % 7 {
        0 => Value::Nil,
        1 => Value::BulkString(take(input)),
        2 => Value::SimpleString(String::from_utf8_lossy(&take(input)).into_owned()),
        3 => Value::Int(i64::from(tag)),
        4 | 5 if depth < 4 => {
            let n = usize::from(input.first().copied().unwrap_or(0) % 5);
            *input = input.get(1..).unwrap_or(&[]);
            let items = (0..n).map(|_| value(input, depth + 1)).collect();
            Value::Array(items)
        }
        6 if depth < 4 => {
            let key = value(input, depth + 1);
            Value::Map(vec![(key, value(input, depth + 1))])
        }
        _ => Value::Okay,
    }
}

#[test]
fn fuzz_store_queue() {
    // [[stream, [[id, [case, vf_1]]]]] in the grammar above.
    let seed = vec![
        4, 1, 4, 2, 1, 6, b's', b't', b'r', b'e', b'a', b'm', 4, 1, 4, 2, 1, 3, b'1', b'-', b'0', 4, 2, 1, 4, b'c',
        b'a', b's', b'e', 1, 4, b'v', b'f', b'_', b'1',
    ];
    fuzz("store_queue", vec![seed, vec![6, 1, 0, 4, 0], vec![3]], 512, |input| {
        let mut rest = input;
        let v = value(&mut rest, 0);
        if let Ok((entries, named)) = decode_queue_read(&v) {
            assert!(named <= entries);
        }
    });
}
