//! Side-channel check of the sealed-payload opener: "unknown sealing key id" and "bad ciphertext" must
//! cost the same work (both are answered `PAYLOAD_UNOPENABLE`; docs/api.md §2). Times N opens of each kind
//! of the same ciphertext, interleaved in random order so that machine noise falls on all kinds
//! alike, prints the distributions side by side, and FAILS (exits 1) when the bound is broken.
//!
//! The bound compares within the same run, never absolute times: in every round each refusal without
//! a usable key (unknown id, retired id) is divided by the bad ciphertext timed in that same round,
//! and the median of those N ratios must lie within [1 / `BOUND`, `BOUND`]. A preempted sample spoils
//! one ratio, not the median, so a loaded shared machine does not fail it; an opener that skips the
//! work for an unusable key id (ratio 0.004 without the decoy) or does a noticeable part less fails it.
//!
//! `cargo bench --bench open_timing` (optimised), or quicker to build, `cargo test --bench open_timing`
//! (the dev profile: dependencies at opt-level 1). `IDGATE_OPEN_TIMING_N` overrides N (5000). Not part
//! of `cargo test` (benches are not run by it); CI builds it (`cargo bench --no-run`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches fail loudly by design

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use idgate::crypto::sealing::{self, Context, IdentifiedKey, OpeningKey, SealingKeyring};

/// Sealed payload size: a small face image and the text fields.
const PAYLOAD_BYTES: usize = 16 * 1024;

/// The widest the median per-round ratio of a refusal without a usable key to a bad ciphertext may
/// stray from 1 (either way). Measured 0.999–1.004 (N = 50 to 5 000, dev profile; 1.000 optimised)
/// on the shared 2-core build machine under a load of 6; with the decoy taken out, 0.004.
const BOUND: f64 = 1.10;

/// The kind every other one is compared with, and the kinds that must cost the same as it.
const BASELINE: usize = 0;
const MUST_MATCH: [usize; 2] = [1, 2];

struct Kind {
    name: &'static str,
    key_id: &'static str,
    ciphertext: Vec<u8>,
    /// Whether it opens (checked every time: a bench that measures the wrong outcome proves nothing).
    opens: bool,
    /// One sample per round, in round order.
    samples: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// The median of `values` (sorted in place); NaN for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn main() -> ExitCode {
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
            opens: false,
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "unknown key id",
            key_id: "sk-unknown",
            ciphertext: tampered.clone(),
            opens: false,
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "retired key id (past its grace)",
            key_id: "sk-retired",
            ciphertext: sealed.ciphertext.clone(),
            opens: false,
            samples: Vec::with_capacity(n),
        },
        Kind {
            name: "valid (reference: opens)",
            key_id: "sk-current",
            ciphertext: sealed.ciphertext.clone(),
            opens: true,
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
            assert_eq!(black_box(opened.is_ok()), kind.opens, "{}", kind.name);
        }
    }
    // Paired ratios, before the samples are sorted for the table.
    let ratios: Vec<f64> = MUST_MATCH
        .iter()
        .map(|&k| {
            let mut per_round: Vec<f64> = kinds[k]
                .samples
                .iter()
                .zip(&kinds[BASELINE].samples)
                .map(|(t, base)| t.as_secs_f64() / base.as_secs_f64().max(1e-9))
                .collect();
            median(&mut per_round)
        })
        .collect();

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

    println!(
        "median per-round ratio to \"{}\" (bound [{:.2}, {:.2}]):",
        kinds[BASELINE].name,
        1.0 / BOUND,
        BOUND
    );
    let mut broken = false;
    for (&k, ratio) in MUST_MATCH.iter().zip(&ratios) {
        let within = (1.0 / BOUND..=BOUND).contains(ratio);
        broken |= !within;
        println!(
            "{:<48} {:>9.3} {}",
            kinds[k].name,
            ratio,
            if within { "ok" } else { "BROKEN" }
        );
    }
    if broken {
        eprintln!(
            "open_timing: an unusable key id does not cost the same work as a bad ciphertext \
             (README \"Side channels\"; crypto::sealing's decoy key)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
