//! Criterion benches of the verification hot path's pieces, each beside a baseline measured in the
//! same run: one ChaCha20-Poly1305 pass over the same bytes (the least any sealed payload must cost).
//! Read the results as ratios to that baseline, not as absolute times (shared, noisy machines).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use std::hint::black_box;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idgate::crypto::SecretKey32;
use idgate::crypto::envelope::{Kek, KekRing};
use idgate::crypto::sealing::{self, Context, OpeningKey};
use idgate::domain::{Applicant, IdNumber, IdentityFields, Purpose};

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
    for image_kb in [16usize, 256] {
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

criterion_group!(benches, sealing_open, envelope_seal, local_checks);
criterion_main!(benches);
