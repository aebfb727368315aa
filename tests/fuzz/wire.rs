//! The wire: a decoded `VerifyRequest` / `SubmitSupplementRequest` through the transport's
//! conversion, payloads that open then through the domain checks, and the sealed-payload opener.

use std::collections::HashMap;

use idgate::crypto::SecretKey32;
use idgate::crypto::sealing::{self, Context, IdentifiedKey, OpeningKey, SealingKeyring};
use idgate::domain::{
    Applicant, Consent, FaceUse, IdentityFields, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, Purpose, reads_face,
};
use idgate::pb;
use idgate::transport::errors;
use idgate::transport::services::{purpose_from_pb, supplement_input, verify_input};
use prost::Message;

use super::harness::{fuzz, join, looks_personal, parts};
use super::parsers::{id_number, jpeg, png};

/// 2026-12-01T00:00:00Z: the requests' "now".
pub const NOW: i64 = 1_796_083_200;
const KEY_ID: &str = "sk-fuzz";

pub fn today() -> time::Date {
    time::macros::date!(2026 - 12 - 01)
}

fn keyring() -> SealingKeyring {
    let key = OpeningKey::from_secret(&SecretKey32::from_bytes([7; 32]));
    SealingKeyring::new(
        vec![IdentifiedKey {
            id: KEY_ID.into(),
            created_at_unix: 0,
            key,
        }],
        0,
    )
    .expect("keyring")
}

fn sealed(keyring: &SealingKeyring, context: &Context, plaintext: &[u8]) -> pb::SealedPayload {
    let s = sealing::seal(keyring.current().key.public_key(), context, plaintext).expect("seal");
    pb::SealedPayload {
        key_id: KEY_ID.into(),
        enc: s.enc,
        ciphertext: s.ciphertext.into(),
    }
}

fn person(seq: &str, face: Vec<u8>) -> IdentityFields {
    let mut f = IdentityFields::default();
    f.name = "测试员·甲".into();
    f.id_number = id_number("19900307", seq);
    f.phone = "13800138000".into();
    f.face_image = face;
    f
}

fn payload_seeds() -> Vec<Vec<u8>> {
    let mut rare = person("123", jpeg(640, 480));
    rare.name = "𠀀㐀".into();
    let mut supplement = IdentityFields::default();
    [
        supplement.id_card_front,
        supplement.id_card_back,
        supplement.handheld_id_photo,
    ] = [png(800, 500), jpeg(801, 500), png(600, 800)];
    [
        person("001", png(640, 480)),
        rare,
        supplement,
        IdentityFields::default(),
    ]
    .iter()
    .map(|f| idgate::material::encode_fields(f).to_vec())
    .collect()
}

fn request(keyring: &SealingKeyring, purpose: i32, account: &str, rid: &str, plaintext: &[u8]) -> pb::VerifyRequest {
    pb::VerifyRequest {
        request_id: rid.into(),
        account_id: account.into(),
        purpose,
        consent: Some(pb::Consent {
            policy_version: "2026-01".into(),
            granted_at_unix: NOW - 5,
            biometric: Some(pb::BiometricConsent {
                policy_version: "face-2026-01".into(),
                granted_at_unix: NOW - 5,
            }),
        }),
        payload: Some(sealed(keyring, &Context::identity(purpose, account, rid), plaintext)),
        document_review: false,
    }
}

/// A refused request answers with a reason and never with what was sent.
fn assert_clean(status: &tonic::Status, sent: &[&str]) {
    assert!(
        matches!(
            status.code(),
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
        ),
        "code {:?}",
        status.code()
    );
    assert!(!looks_personal(status.message()), "personal data in a status");
    for s in sent.iter().filter(|s| s.len() >= 12) {
        assert!(!status.message().contains(s), "input echoed in a status");
    }
}

/// What `Verify` does with opened fields before a provider is asked: consent and the applicant
/// rules. Accepted values are what was sent (normalized) and within limits; refusals are clean.
fn check_applicant(purpose: Purpose, consent: &pb::Consent, fields: IdentityFields) {
    let sent = [fields.name.clone(), fields.id_number.clone(), fields.phone.clone()];
    // A face only a purpose that compares one reads; on any other it is dropped unread.
    let face_len = if reads_face(purpose, &FaceUse::NotCompared) {
        fields.face_image.len()
    } else {
        0
    };
    let images = [
        face_len,
        fields.id_card_front.len(),
        fields.id_card_back.len(),
        fields.handheld_id_photo.len(),
    ];
    if let Err(r) = Consent::parse(&consent.policy_version, consent.granted_at_unix, NOW) {
        assert_clean(&errors::refusal(&r), &[&consent.policy_version]);
    }
    match Applicant::check(purpose, fields, today()) {
        Ok(a) => {
            assert_eq!(a.id_number().as_str(), sent[1].to_ascii_uppercase());
            assert_eq!(a.name().as_str().chars().count(), sent[0].trim().chars().count());
            let accepted = [
                a.face_image(),
                a.id_card_front(),
                a.id_card_back(),
                a.handheld_id_photo(),
            ];
            for (image, len) in accepted.iter().zip(images) {
                assert_eq!(image.map_or(0, |i| i.as_bytes().len()), len);
                if let Some(i) = image {
                    assert!(i.as_bytes().len() <= MAX_IMAGE_BYTES);
                    assert!((MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE).contains(&i.width()));
                    assert!((MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE).contains(&i.height()));
                }
            }
        }
        Err(r) => {
            assert!(!looks_personal(&format!("{r:?}")));
            let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
            assert_clean(&errors::refusal(&r), &sent);
        }
    }
}

#[test]
fn fuzz_verify_request() {
    let keyring = keyring();
    let plain = &payload_seeds()[0];
    let valid = request(&keyring, 3, "acct-fuzz-0001", "req-fuzz-00001", plain);
    let mut no_consent = valid.clone();
    no_consent.consent = None;
    let mut unknown_purpose = valid.clone();
    unknown_purpose.purpose = 7;
    let seeds = [valid, no_consent, unknown_purpose, pb::VerifyRequest::default()]
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    fuzz("verify_request", seeds, 1 << 16, |input| {
        let Ok(message) = pb::VerifyRequest::decode(input) else {
            return; // tonic refuses what does not decode before the handler runs
        };
        let sent = [message.request_id.clone(), message.account_id.clone()];
        match verify_input(message.clone(), &keyring, NOW) {
            Ok(v) => {
                assert_eq!(v.request_id.as_str(), sent[0]);
                assert_eq!(v.account_id.as_str(), sent[1]);
                assert_eq!(Some(v.purpose), purpose_from_pb(message.purpose));
                check_applicant(v.purpose, &v.consent, v.fields);
            }
            Err(status) => assert_clean(&status, &[&sent[0], &sent[1]]),
        }
    });
}

/// A verification id of the shape the gateway hands out (`vf_` and 26 base32 characters).
const CASE_ID: &str = "vf_abcdefghijklmnopqrstuvwxyz";

#[test]
fn fuzz_supplement_request() {
    let keyring = keyring();
    let plain = &payload_seeds()[2];
    let valid = pb::SubmitSupplementRequest {
        verification_id: CASE_ID.into(),
        request_id: "sup-fuzz-00001".into(),
        payload: Some(sealed(&keyring, &Context::supplement(CASE_ID, "sup-fuzz-00001"), plain)),
    };
    let seeds = [valid, pb::SubmitSupplementRequest::default()]
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    fuzz("supplement_request", seeds, 1 << 16, |input| {
        let Ok(message) = pb::SubmitSupplementRequest::decode(input) else {
            return;
        };
        let sent = [message.verification_id.clone(), message.request_id.clone()];
        match supplement_input(message, &keyring, NOW) {
            Ok((vid, rid, _fields)) => {
                assert_eq!(vid.as_str(), sent[0]);
                assert_eq!(rid.as_str(), sent[1]);
            }
            Err(status) => assert_clean(&status, &[&sent[0], &sent[1]]),
        }
    });
}

/// Any plaintext a client seals correctly: it opens exactly when it is an `IdentityPayload`, and
/// the fields then meet the domain checks or are refused cleanly — for `Verify` and supplements.
#[test]
fn fuzz_identity_payload() {
    let keyring = keyring();
    fuzz("identity_payload", payload_seeds(), 1 << 16, |input| {
        let decodes = pb::IdentityPayload::decode(input).is_ok();
        let purpose = [1, 2, 3][input.len() % 3];
        let message = request(&keyring, purpose, "acct-fuzz-0001", "req-fuzz-00001", input);
        match verify_input(message, &keyring, NOW) {
            Ok(v) => {
                assert!(decodes);
                check_applicant(v.purpose, &v.consent, v.fields);
            }
            Err(status) => {
                assert!(!decodes, "a well-sealed IdentityPayload was refused");
                assert_clean(&status, &[]);
            }
        }
        let supplement = pb::SubmitSupplementRequest {
            verification_id: CASE_ID.into(),
            request_id: "sup-1".into(),
            payload: Some(sealed(&keyring, &Context::supplement(CASE_ID, "sup-1"), input)),
        };
        assert_eq!(supplement_input(supplement, &keyring, NOW).is_ok(), decodes);
    });
}

/// Random key ids, `enc`, ciphertexts and bound fields: only an untouched seal opens, to exactly
/// what was sealed. Input: key id, enc, ciphertext, account id, request id, purpose byte.
#[test]
fn fuzz_sealed_opener() {
    let keyring = keyring();
    let mut valid: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut seeds = Vec::new();
    for (i, plain) in payload_seeds().into_iter().enumerate() {
        let (account, rid, purpose) = (format!("acct-{i}"), format!("req-{i}"), (i % 4) as u8);
        let s = sealed(&keyring, &Context::identity(i32::from(purpose), &account, &rid), &plain);
        let input = join(&[
            KEY_ID.as_bytes(),
            &s.enc,
            &s.ciphertext,
            account.as_bytes(),
            rid.as_bytes(),
            &[purpose],
        ]);
        valid.insert(input.clone(), plain);
        seeds.push(input);
    }
    seeds.push(join(&[KEY_ID.as_bytes(), &[0; 32], &[0; 64], b"a", b"r", &[1]])); // all-zero share
    seeds.push(join(&[KEY_ID.as_bytes(), &[1; 31], &[0; 16], b"a", b"r", &[1]])); // short enc
    seeds.push(join(&[b"sk-unknown", &[9; 32], &[], b"", b"", &[]]));
    fuzz("sealed_opener", seeds, 1 << 16, |input| {
        let [key_id, enc, ct, account, rid, purpose] = parts::<6>(input);
        let (key_id, account, rid) = (
            String::from_utf8_lossy(key_id),
            String::from_utf8_lossy(account),
            String::from_utf8_lossy(rid),
        );
        let purpose = purpose.first().copied();
        let context = Context::identity(purpose.map_or(0, i32::from), &account, &rid);
        if let Ok(plain) = keyring.open(&key_id, &context, enc, ct, NOW) {
            // What the opener saw, in the seeds' layout (bytes past the purpose byte are unused).
            let seen = join(&[
                key_id.as_bytes(),
                enc,
                ct,
                account.as_bytes(),
                rid.as_bytes(),
                &[purpose.unwrap_or(0)],
            ]);
            let expected = valid.get(&seen).expect("only an untouched seal opens");
            assert_eq!(&plain[..], &expected[..]);
        }
    });
}
