//! The fuzz driver for the stable toolchain: replays the checked-in corpus of a target
//! (`tests/fuzz/corpus/<target>/`), then runs mutated cases (bit flips, byte sets, inserts,
//! deletions, duplications, splices, interesting integers) drawn from the corpus and the target's
//! built-in seeds. Deterministic for a given `IDGATE_FUZZ_SEED`.
//!
//! `IDGATE_FUZZ_CASES` (default 1000: a few seconds for all targets in a debug build) sets the
//! number of mutated cases per target, or `IDGATE_FUZZ_SECONDS` a time budget per target instead;
//! `IDGATE_FUZZ_SEED` the generator's seed (default fixed, so CI runs are reproducible). A case
//! that panics is written to `target/fuzz-crashes/<target>/` and the test fails naming the file
//! (copy it into the corpus as a regression seed once fixed). It never prints a case's bytes.
//!
//! The longer run (docs/testing.md, "Fuzzing"):
//! `IDGATE_FUZZ_SECONDS=60 IDGATE_FUZZ_SEED=$RANDOM cargo test --test fuzz -- --nocapture`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

/// Separates the parts of a multi-part input (a byte that no seed uses inside a part).
pub const SEP: u8 = 0x1e;

/// xorshift64*: small, fast, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How many mutated cases a target runs: a count, or as many as fit in a time budget.
enum Budget {
    Cases(u64),
    Time(std::time::Duration),
}

fn budget() -> Budget {
    match std::env::var("IDGATE_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()) {
        Some(seconds) => Budget::Time(std::time::Duration::from_secs(seconds)),
        None => Budget::Cases(env_number("IDGATE_FUZZ_CASES", 1000)),
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// The checked-in corpus of `target`, sorted by file name.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(&p).expect("corpus file"))
        .collect()
}

const INTERESTING: [u32; 10] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 100_000, 8193];

/// One random edit of `input`, with `pool` for splicing; the result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>], max_len: usize) {
    let len = input.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            input.drain(at..at + n);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let copy = input[at..at + n].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, copy);
        }
        5 if !pool.is_empty() => {
            let other = &pool[rng.below(pool.len())];
            let from = rng.below(other.len() + 1);
            let at = rng.below(len + 1);
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        6 if len >= 4 => {
            let at = rng.below(len - 3);
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let bytes = if rng.below(2) == 0 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            input[at..at + 4].copy_from_slice(&bytes);
        }
        7 if len > 0 => input.truncate(rng.below(len)),
        8 => {
            let at = rng.below(len + 1);
            input.insert(at, SEP);
        }
        _ => {
            let at = rng.below(len + 1);
            let c = [b'0', b'9', b'X', b'x', b' ', 0, 0xff, 0xc2, 0xb7][rng.below(9)];
            input.insert(at, c);
        }
    }
    input.truncate(max_len);
}

/// Runs `check` on every corpus file and built-in seed of `target`, then on mutated inputs within
/// the [`budget`]; prints executions and time (visible with `--nocapture`).
pub fn fuzz(target: &str, seeds: Vec<Vec<u8>>, max_len: usize, check: impl Fn(&[u8])) {
    let started = Instant::now();
    let mut pool = corpus(target);
    pool.extend(seeds);
    assert!(!pool.is_empty(), "{target}: no seeds");
    let run = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/fuzz-crashes")
                .join(target);
            std::fs::create_dir_all(&dir).expect("crash dir");
            let path = dir.join(format!("crash-{:016x}", fnv(input)));
            std::fs::write(&path, input).expect("crash file");
            panic!("{target}: a case panicked; input saved as {}", path.display());
        }
    };
    for input in &pool {
        run(input);
    }
    let seed = env_number("IDGATE_FUZZ_SEED", 0x001d_6a7e) ^ fnv(target.as_bytes());
    let mut rng = Rng::new(seed);
    let budget = budget();
    let mut n = 0u64;
    while match budget {
        Budget::Cases(cases) => n < cases,
        Budget::Time(limit) => started.elapsed() < limit,
    } {
        n += 1;
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut input, &pool, max_len);
        }
        run(&input);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz {target}: {} executions ({} corpus + seeds, {n} mutated) in {:.2?}, {:.0}/s",
        pool.len() as u64 + n,
        pool.len(),
        elapsed,
        (pool.len() as u64 + n) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Splits a multi-part input at [`SEP`]; missing parts are empty.
pub fn parts<const N: usize>(input: &[u8]) -> [&[u8]; N] {
    let mut out = [&input[..0]; N];
    let mut it = input.splitn(N, |&b| b == SEP);
    for slot in &mut out {
        *slot = it.next().unwrap_or(&[]);
    }
    out
}

/// Joins parts with [`SEP`] (for seeds).
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&SEP)
}

/// True if `text` holds something shaped like personal data: any CJK ideograph, or a run of 11 or
/// more digits (a phone or an ID number).
pub fn looks_personal(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if ('\u{3400}'..='\u{9fff}').contains(&c) || ('\u{20000}'..='\u{3134f}').contains(&c) {
            return true;
        }
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 11 {
            return true;
        }
    }
    false
}
