//! Criterion benches of the verification hot path's pieces, each beside a baseline measured in the
//! same run: one ChaCha20-Poly1305 pass over the same bytes (the least any sealed payload must cost).
//! Read the results as ratios to that baseline, not as absolute times (shared, noisy machines).
//!
//! Pieces: HPKE open of a 16 KB and a 200 KB payload, at-rest sealing, ID number parsing, image sniffing,
//! the Tencent request body and its TC3 signature, and one whole ANCHOR `Verify` with a 200 KB face over
//! loopback mutual TLS against a gateway in this process (embedded store, built-in simulator).
//! Keep runs short: `cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 2`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use std::hint::black_box;

use base64::Engine as _;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idgate::crypto::SecretKey32;
use idgate::crypto::envelope::{Kek, KekRing};
use idgate::crypto::sealing::{self, Context, OpeningKey};
use idgate::domain::{Applicant, IdNumber, IdentityFields, Image, Purpose};
use idgate::providers::ProviderRequest;
use idgate::providers::aliyun::signing as acs3;
use idgate::providers::credentials::SecretKey;
use idgate::providers::tencent;
use idgate::providers::tencent::signing;

fn id_number(seq: &str) -> String {
    let body = format!("11010519900307{seq}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(W).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// A PNG header of 640×480 padded to `size` bytes (the checks read headers, not pixels).
fn png(size: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    out.extend_from_slice(&640u32.to_be_bytes());
    out.extend_from_slice(&480u32.to_be_bytes());
    out.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out.resize(size, 0);
    out
}

fn fields(image_bytes: usize) -> IdentityFields {
    let mut f = IdentityFields::default();
    f.name = "王小明".into();
    f.id_number = id_number("123");
    f.phone = "13800138000".into();
    f.face_image = png(image_bytes);
    f
}

fn baseline(c: &mut Criterion, group: &str, bytes: &[u8]) {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = Nonce::from([1u8; 12]);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("baseline_chacha20poly1305", bytes.len()), |b| {
        b.iter(|| {
            cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: black_box(bytes),
                        aad: b"",
                    },
                )
                .unwrap()
        })
    });
    g.finish();
}

fn sealing_open(c: &mut Criterion) {
    for image_kb in [16usize, 200] {
        let plaintext = idgate::material::encode_fields(&fields(image_kb * 1024));
        let key = OpeningKey::generate().unwrap();
        let ctx = Context::identity(3, "acct-1", "req-1");
        let sealed = sealing::seal(key.public_key(), &ctx, &plaintext).unwrap();
        baseline(c, "sealing_open", &plaintext);
        let mut g = c.benchmark_group("sealing_open");
        g.throughput(Throughput::Bytes(plaintext.len() as u64));
        g.bench_function(BenchmarkId::new("hpke_open_and_decode", plaintext.len()), |b| {
            b.iter(|| {
                let pt = key.open(&ctx, &sealed.enc, &sealed.ciphertext).unwrap();
                black_box(idgate::material::decode(&pt).unwrap());
            })
        });
        // The decoding alone: the one-copy decoder against prost's generated one (two copies, see
        // `src/material/wire.rs`), on the same plaintext.
        g.bench_function(BenchmarkId::new("decode_one_copy", plaintext.len()), |b| {
            b.iter(|| black_box(idgate::material::decode(black_box(&plaintext)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("decode_prost", plaintext.len()), |b| {
            b.iter(|| {
                black_box(<idgate::pb::IdentityPayload as prost::Message>::decode(black_box(&plaintext[..])).unwrap())
            })
        });
        g.finish();
    }
}

fn envelope_seal(c: &mut Criterion) {
    let ring = KekRing::new(vec![Kek {
        id: "kek-1".into(),
        created_at_unix: 1,
        key: SecretKey32::random().unwrap(),
    }])
    .unwrap();
    let plaintext = idgate::material::encode_fields(&fields(256 * 1024));
    baseline(c, "envelope_seal", &plaintext);
    let mut g = c.benchmark_group("envelope_seal");
    g.throughput(Throughput::Bytes(plaintext.len() as u64));
    g.bench_function(BenchmarkId::new("data_key_xchacha_and_wrap", plaintext.len()), |b| {
        b.iter(|| black_box(ring.seal("vf_bench", "identity", &plaintext).unwrap()))
    });
    g.finish();
}

fn local_checks(c: &mut Criterion) {
    let today = time::macros::date!(2026 - 11 - 29);
    let number = id_number("123");
    c.bench_function("local_checks/id_number_parse", |b| {
        b.iter(|| IdNumber::parse(black_box(&number), today).unwrap())
    });
    c.bench_function("local_checks/applicant_check_anchor_16k", |b| {
        b.iter_batched(
            || fields(16 * 1024),
            |f| black_box(Applicant::check(Purpose::Anchor, f, today).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn image_sniffing(c: &mut Criterion) {
    let jpeg = idgate::loadtest::payload::jpeg(640, 480, 200 * 1024);
    let png = png(200 * 1024);
    for (kind, bytes) in [("jpeg", jpeg), ("png", png)] {
        c.bench_function(&format!("local_checks/image_parse_{kind}_200k"), |b| {
            b.iter_batched(
                || bytes.clone(),
                |bytes| black_box(Image::parse("face_image", bytes).unwrap()),
                criterion::BatchSize::LargeInput,
            )
        });
    }
}

/// Building and signing a provider request with a 200 KB face, for both vendors, as the adapters do;
/// plus, for comparison in the same run, the scalar base64 + `serde_json` way the Tencent body was
/// first built.
fn provider_request(c: &mut Criterion) {
    #[derive(serde::Serialize)]
    struct FaceBody<'a> {
        #[serde(rename = "IdCard")]
        id_card: &'a str,
        #[serde(rename = "Name")]
        name: &'a str,
        #[serde(rename = "ImageBase64")]
        image_base64: &'a str,
    }
    let face = idgate::loadtest::payload::jpeg(640, 480, 200 * 1024);
    let number = id_number("123");
    let request = ProviderRequest {
        name: "王小明",
        id_number: &number,
        face_image: Some(&face),
    };
    let key = SecretKey::new("bench-secret-key".into());
    let mut g = c.benchmark_group("provider_request");
    g.throughput(Throughput::Bytes(face.len() as u64));
    g.bench_function("tencent_json_body_200k", |b| {
        b.iter(|| black_box(tencent::json_body(black_box(&request), Some(black_box(&face))).unwrap()))
    });
    g.bench_function("reference_scalar_base64_then_serde_json_200k", |b| {
        b.iter(|| {
            let image_base64 = base64::engine::general_purpose::STANDARD.encode(black_box(&face));
            black_box(
                serde_json::to_vec(&FaceBody {
                    id_card: &number,
                    name: "王小明",
                    image_base64: &image_base64,
                })
                .unwrap(),
            )
        })
    });
    let body = tencent::json_body(&request, Some(&face)).unwrap();
    g.bench_function("tencent_tc3_sign_200k", |b| {
        b.iter(|| {
            black_box(
                signing::sign(
                    "AKIDbench",
                    &key,
                    "faceid",
                    "faceid.tencentcloudapi.com",
                    1_764_547_200,
                    black_box(&body),
                )
                .unwrap(),
            )
        })
    });
    let pairs = [
        ("SceneId", "1000000001"),
        ("OuterOrderNo", "0123456789abcdef0123456789abcdef"),
        ("ProductCode", "ID_MIN"),
        ("CertType", "IDENTITY_CARD"),
        ("CertName", "王小明"),
        ("CertNo", number.as_str()),
    ];
    g.bench_function("aliyun_form_body_200k", |b| {
        b.iter(|| {
            black_box(acs3::form_body_with_base64(
                &pairs,
                "FaceContrastPicture",
                black_box(&face),
            ))
        })
    });
    let form = acs3::form_body_with_base64(&pairs, "FaceContrastPicture", &face);
    g.bench_function("aliyun_acs3_sign_200k", |b| {
        b.iter(|| {
            black_box(acs3::authorization(
                "LTAIbench",
                &key,
                &acs3::Signed {
                    host: "cloudauth.aliyuncs.com",
                    action: "ContrastFaceVerify",
                    version: "2019-03-07",
                    date: "2026-12-02T00:00:00Z",
                    nonce: "0123456789abcdef",
                    content_type: acs3::CONTENT_TYPE,
                    body: black_box(&form),
                },
            ))
        })
    });
    g.finish();
}

/// One whole ANCHOR `Verify` (200 KB face) through the real server over loopback mutual TLS: the gateway
/// built as `serve --dev` builds it, in this process. Each request is sealed before it is timed; each has
/// its own account and ID number (simulator outcome: verified).
fn full_verify(c: &mut Criterion) {
    use idgate::gateway::{Gateway, Plan};
    use idgate::loadtest::payload::{Factory, Identities};
    use idgate::pb;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (client, factory, stop) = rt.block_on(async {
        let mut config = idgate::config::Config::default();
        config.limits.verifications_per_account_per_hour = 0;
        config.limits.verifications_per_id_per_day = 0;
        let clock: std::sync::Arc<dyn idgate::clock::Clock> = std::sync::Arc::new(idgate::clock::SystemClock);
        let listen: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let plan = Plan::dev(config, Some(listen), &dir.path().join("dev"), clock.now_unix()).unwrap();
        let gateway = Gateway::build(plan, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve(listener, async {
            let _ = stopped.await;
        }));
        let channel = idgate::client::connect(&addr.to_string(), &dir.path().join("dev"), "onboarding")
            .await
            .unwrap();
        let mut client = pb::verification_service_client::VerificationServiceClient::new(channel);
        let key = client
            .get_sealing_key(pb::GetSealingKeyRequest {})
            .await
            .unwrap()
            .into_inner();
        let factory = Factory {
            key,
            purpose: pb::Purpose::Anchor,
            identities: Identities {
                mix: "1:0:0".parse().unwrap(),
                seed: u64::from_be_bytes(idgate::crypto::random::bytes().unwrap()),
            },
            face: idgate::loadtest::payload::jpeg(640, 480, 200 * 1024),
            run_id: "bench".into(),
            consent_unix: clock.now_unix(),
        };
        (client, factory, stop)
    });
    let next = std::cell::Cell::new(0u64);
    c.bench_function("full_verify/anchor_200k_loopback_mtls", |b| {
        b.to_async(&rt).iter_batched(
            || {
                next.set(next.get() + 1);
                factory.request(next.get()).unwrap()
            },
            |request| {
                let mut client = client.clone();
                async move {
                    let answer = client.verify(request).await.unwrap().into_inner();
                    assert_eq!(answer.status, pb::Status::Verified as i32);
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let _ = stop.send(());
}

criterion_group!(
    benches,
    sealing_open,
    envelope_seal,
    local_checks,
    image_sniffing,
    provider_request,
    full_verify
);
criterion_main!(benches);
