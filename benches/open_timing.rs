//! Side-channel check of the sealed-payload opener: "unknown sealing key id" and "bad ciphertext" must
//! cost the same work (both are answered `PAYLOAD_UNOPENABLE`; docs/api.md §2). Times N opens of each kind
//! of the same ciphertext, interleaved in random order so that machine noise falls on all kinds
//! alike, and prints the distributions side by side. A measurement to read, not an assertion
//! (shared, noisy machines).
//!
//! `cargo bench --bench open_timing` (optimised), or quicker to build, `cargo test --bench open_timing`
//! (the dev profile: dependencies at opt-level 1). `IDGATE_OPEN_TIMING_N` overrides N (5000).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use std::hint::black_box;
use std::time::{Duration, Instant};

use idgate::crypto::sealing::{self, Context, IdentifiedKey, OpeningKey, SealingKeyring};

/// Sealed payload size: a small face image and the text fields.
const PAYLOAD_BYTES: usize = 16 * 1024;

struct Kind {
    name: &'static str,
    key_id: &'static str,
    ciphertext: Vec<u8>,
    samples: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let n: usize = std::env::var("IDGATE_OPEN_TIMING_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let now = 10_000;
    let current = OpeningKey::generate().unwrap();
    let public = *current.public_key();
    let keyring = SealingKeyring::new(
        vec![
            IdentifiedKey {
                id: "sk-current".into(),
                created_at_unix: now - 100,
                key: current,
            },
            IdentifiedKey {
                id: "sk-retired".into(),
                created_at_unix: now - 1_000,
                key: OpeningKey::generate().unwrap(),
            },
        ],
        10, // the previous key's grace ended long ago
    )
    .unwrap();
    let context = Context::identity(1, "acct-1", "req-1");
    let sealed = sealing::seal(&public, &context, &vec![0x5a; PAYLOAD_BYTES]).unwrap();
    let mut tampered = sealed.ciphertext.clone();
    tampered[PAYLOAD_BYTES / 2] ^= 1;

    let mut kinds = [
        Kind {
            name: "bad ciphertext (current key, one bit flipped)",
            key_id: "sk-current",
            ciphertext: tampered.clone(),
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "unknown key id",
            key_id: "sk-unknown",
            ciphertext: tampered.clone(),
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "retired key id (past its grace)",
            key_id: "sk-retired",
            ciphertext: sealed.ciphertext.clone(),
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "valid (reference: opens)",
            key_id: "sk-current",
            ciphertext: sealed.ciphertext.clone(),
            samples: Vec::with_capacity(n),
        },
    ];
    // Warm-up, then interleaved rounds.
    for kind in &kinds {
        for _ in 0..50 {
            let _ = black_box(keyring.open(kind.key_id, &context, &sealed.enc, &kind.ciphertext, now));
        }
    }
    // Each round runs the kinds in a fresh random order, so that no kind always follows the same one
    // (a kind run right after a full open would pay for its cache misses).
    let mut order: Vec<usize> = (0..kinds.len()).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..n {
        for i in (1..order.len()).rev() {
            // xorshift64: a shuffle, not a secret.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for &k in &order {
            let kind = &mut kinds[k];
            let started = Instant::now();
            let opened = keyring.open(black_box(kind.key_id), &context, &sealed.enc, &kind.ciphertext, now);
            kind.samples.push(started.elapsed());
            black_box(opened.is_ok());
        }
    }
    println!(
        "HPKE open of a {} KiB payload, N = {n} each, microseconds:",
        PAYLOAD_BYTES / 1024
    );
    println!("{:<48} {:>9} {:>9} {:>9} {:>9}", "kind", "p50", "p90", "p99", "mean");
    for kind in kinds.iter_mut() {
        kind.samples.sort();
        let mean = kind.samples.iter().sum::<Duration>() / kind.samples.len() as u32;
        println!(
            "{:<48} {:>9} {:>9} {:>9} {:>9}",
            kind.name,
            micros(percentile(&kind.samples, 0.50)),
            micros(percentile(&kind.samples, 0.90)),
            micros(percentile(&kind.samples, 0.99)),
            micros(mean)
        );
    }
}
