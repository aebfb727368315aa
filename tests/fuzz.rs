//! Fuzz targets for every parser of untrusted bytes, on the stable toolchain (no `cargo fuzz`: it
//! needs nightly). Each target replays its checked-in corpus and runs mutated cases; see
//! `harness.rs` for the driver and `IDGATE_FUZZ_CASES` / `IDGATE_FUZZ_SEED` for longer runs.
//!
//! Every target asserts that nothing panics, and where it makes sense a round trip or an invariant.
//! Nothing here prints an input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/mod.rs"]
mod common;
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/parsers.rs"]
mod parsers;
#[path = "fuzz/store.rs"]
mod store;
#[path = "fuzz/wire.rs"]
mod wire;
