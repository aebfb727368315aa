//! Parsers of single values and documents: ID number, name, phone, image sniffing, both providers'
//! answers, the review-material encoding, the at-rest envelope body, and configuration.

use idgate::crypto::envelope::Body;
use idgate::domain::{IdNumber, Image, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, MAX_NAME_CHARS, MIN_IMAGE_SIDE, Name, Phone};
use idgate::fuzz_api::{Interpreted, aliyun_answer, config_from_toml, tencent_answer};
use idgate::providers::Outcome;

pub use super::common::{id_number, png};
use super::harness::{fuzz, join, looks_personal, parts};
use super::wire::today;

/// SOI, JFIF APP0, a baseline SOF0 of `w`×`h`, EOI.
pub fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    out.extend(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    out.extend([0xff, 0xc0, 0x00, 0x11, 0x08]);
    out.extend(h.to_be_bytes());
    out.extend(w.to_be_bytes());
    out.extend([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xd9]);
    out
}

fn text_seeds(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn fuzz_id_number() {
    let seeds = text_seeds(&[
        &id_number("19900307", "123"),
        "11010519491231002x",
        "",
        "110105202612020011",
    ]);
    fuzz("id_number", seeds, 64, |input| {
        let s = String::from_utf8_lossy(input);
        match IdNumber::parse(&s, today()) {
            Ok(id) => {
                // It re-formats to itself (upper-case X) and parses again to the same number.
                assert_eq!(id.as_str(), s.to_ascii_uppercase());
                let again = IdNumber::parse(id.as_str(), today()).expect("re-parse");
                assert_eq!(again.as_str(), id.as_str());
                assert!(id.birth_date() <= today());
                assert_eq!(id.sequence_code(), id.as_str()[14..17].parse::<u16>().expect("digits"));
            }
            Err(r) => assert!(
                s.len() < 6 || !format!("{r:?}").contains(&*s),
                "input echoed in a refusal"
            ),
        }
    });
}

#[test]
fn fuzz_name() {
    let seeds = text_seeds(&[
        "测试员·甲",
        "𠀀㐀",
        "阿卜杜热合曼・麦麦提",
        " 张三\u{3000}",
        "张··三",
        "Alice",
    ]);
    fuzz("name", seeds, 256, |input| {
        let s = String::from_utf8_lossy(input);
        match Name::parse(&s) {
            Ok(name) => {
                let n = name.as_str().chars().count();
                assert!(n <= MAX_NAME_CHARS);
                assert_eq!(n, s.trim().chars().count());
                // Normalizing is idempotent.
                assert_eq!(Name::parse(name.as_str()).expect("re-parse").as_str(), name.as_str());
            }
            Err(r) => assert!(!looks_personal(&format!("{r:?}"))),
        }
    });
}

#[test]
fn fuzz_phone() {
    let seeds = text_seeds(&["13800138000", "+86 138-0013-8000", "8613800138000", "", "+8612345"]);
    fuzz("phone", seeds, 64, |input| {
        let s = String::from_utf8_lossy(input);
        match Phone::parse(&s) {
            Ok(phone) => {
                assert_eq!(phone.as_str().len(), 11);
                assert!(phone.as_str().bytes().all(|b| b.is_ascii_digit()));
                let digits: String = s.chars().filter(char::is_ascii_digit).collect();
                assert!(digits.ends_with(phone.as_str()));
                assert_eq!(Phone::parse(phone.as_str()).expect("re-parse").as_str(), phone.as_str());
            }
            Err(r) => assert!(!looks_personal(&format!("{r:?}"))),
        }
    });
}

#[test]
fn fuzz_image() {
    let mut truncated = jpeg(640, 480);
    truncated.truncate(20);
    let seeds = vec![
        png(640, 480),
        jpeg(640, 480),
        png(100_000, 100_000),
        truncated,
        b"GIF89a".to_vec(),
    ];
    fuzz("image", seeds, 1 << 12, |input| {
        if let Ok(image) = Image::parse("face_image", input.to_vec()) {
            assert_eq!(image.as_bytes(), input);
            assert!(image.as_bytes().len() <= MAX_IMAGE_BYTES);
            assert!((MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE).contains(&image.width()));
            assert!((MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE).contains(&image.height()));
            let magic: &[u8] = match image.kind().as_str() {
                "png" => b"\x89PNG\r\n\x1a\n",
                _ => b"\xff\xd8\xff",
            };
            assert!(input.starts_with(magic));
        }
    });
}

const STATUSES: [u16; 8] = [200, 200, 200, 400, 429, 500, 503, 302];

/// Input: a status selector byte, an action selector byte, the body.
fn provider_target(name: &str, actions: [&str; 2], bodies: &[&str], interpret: fn(&str, u16, &[u8]) -> Interpreted) {
    let seeds = bodies.iter().map(|b| join(&[&[0], &[0], b.as_bytes()])).collect();
    fuzz(name, seeds, 1 << 12, |input| {
        let [status, action, body] = parts::<3>(input);
        let status = STATUSES[usize::from(status.first().copied().unwrap_or(0)) % STATUSES.len()];
        let action = actions[usize::from(action.first().copied().unwrap_or(0)) % 2];
        let (result, request_id) = interpret(action, status, body);
        assert!(
            !looks_personal(&format!("{result:?} {request_id:?}")),
            "personal data in an answer"
        );
        if let Some(id) = &request_id {
            assert!(id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()));
        }
        match result {
            Ok(Outcome::FaceCompared { similarity }) => {
                assert!((0.0..=100.0).contains(&similarity));
                assert_eq!(status, 200);
            }
            Ok(Outcome::Match) => assert_eq!(status, 200),
            _ => {}
        }
    });
}

#[test]
fn fuzz_tencent_answer() {
    provider_target(
        "tencent_answer",
        ["IdCardVerification", "ImageRecognitionV2"],
        &[
            r#"{"Response":{"Result":"0","Description":"ok","RequestId":"abc-1"}}"#,
            r#"{"Response":{"Result":"Success","Sim":92.5,"RequestId":"r"}}"#,
            r#"{"Response":{"Error":{"Code":"FailedOperation.IdNameMisMatch","Message":"张三 110105194912310021"}}}"#,
            r#"{"Response":{"Result":"-5"}}"#,
        ],
        tencent_answer,
    );
}

#[test]
fn fuzz_aliyun_answer() {
    provider_target(
        "aliyun_answer",
        ["Id2MetaVerify", "CompareFaceVerify"],
        &[
            r#"{"RequestId":"130A2C10-B9EE-4D84-88E3-5384FF039795","Code":"200","Message":"success","ResultObject":{"BizCode":"1"}}"#,
            r#"{"Code":"200","ResultObject":{"Passed":"T","SubCode":"200","VerifyScore":92.5}}"#,
            r#"{"Code":"11010519491231002X","RequestId":"<script>","Message":"张三"}"#,
            r#"{"Code":"Throttling.User","Message":"m"}"#,
        ],
        aliyun_answer,
    );
}

/// An opened payload's protobuf: what decodes re-encodes to a fixed point.
#[test]
fn fuzz_material() {
    let mut fields = idgate::domain::IdentityFields::default();
    fields.name = "测试员·甲".into();
    fields.id_number = id_number("19900307", "123");
    fields.face_image = png(640, 480);
    let seeds = vec![
        idgate::material::encode_fields(&fields).to_vec(),
        vec![0x0a, 0x02, 0xc3, 0x28],
    ];
    fuzz("material", seeds, 1 << 12, |input| {
        // The hand-written decoder accepts exactly what prost's generated one does, to the same fields.
        let by_prost = <idgate::pb::IdentityPayload as prost::Message>::decode(input).ok();
        let decoded = idgate::material::decode(input);
        assert_eq!(decoded.is_some(), by_prost.is_some());
        if let (Some(fields), Some(p)) = (&decoded, &by_prost) {
            assert_eq!(
                (fields.name.as_str(), fields.id_number.as_str()),
                (p.name.as_str(), p.id_number.as_str())
            );
            assert_eq!(
                (fields.phone.as_str(), &fields.face_image),
                (p.phone.as_str(), &p.face_image)
            );
            assert_eq!(
                (&fields.id_card_front, &fields.id_card_back, &fields.handheld_id_photo),
                (&p.id_card_front, &p.id_card_back, &p.handheld_id_photo)
            );
        }
        if let Some(fields) = decoded {
            let once = idgate::material::encode_fields(&fields);
            let again = idgate::material::decode(&once).expect("re-decode");
            assert_eq!(*idgate::material::encode_fields(&again), *once);
        }
    });
}

/// A stored envelope body: what parses serializes back to the same bytes.
#[test]
fn fuzz_envelope_body() {
    let mut seed = vec![1u8];
    seed.extend([0xab; 32 + 24 + 40]);
    fuzz("envelope_body", vec![seed, vec![2; 80], vec![1]], 512, |input| {
        if let Ok(body) = Body::from_bytes(input) {
            assert_eq!(body.to_bytes(), input);
        }
    });
}

/// Configuration text: what loads serializes to TOML that loads to the same configuration.
#[test]
fn fuzz_config() {
    let seeds = text_seeds(&[
        "",
        "[store]\nurl = \"redis://127.0.0.1:6379\"\n[retention]\npending_review_ttl_seconds = 259200\n",
        "[review]\nlease_seconds = 300\napprovals_required = 2\n",
        "[[providers]]\nname = \"tencent-primary\"\nkind = \"tencent-faceid\"\nendpoint = \"https://faceid.tencentcloudapi.com\"\nsecret_id = \"AKID\"\nsecret_key = \"s\"\ntimeout_ms = 1500\nmax_concurrency = 64\n",
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\n[decision]\n",
        "[limits]\nverifications_per_account_per_hour = -1\n",
    ]);
    fuzz("config", seeds, 2048, |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(config) = config_from_toml(&text) {
            let written = toml::to_string(&config).expect("a loaded configuration serializes");
            let again = config_from_toml(&written).expect("what it serializes to loads");
            assert_eq!(format!("{again:?}"), format!("{config:?}"));
        }
    });
}
