//! # idgate — a real-name identity verification gateway
//!
//! Sealed personal data in, a verified flag out. The crate's map, with dependencies pointing inward:
//!
//! | module | what it is for | must never |
//! |---|---|---|
//! | [`domain`] | parsed values that cannot be invalid (ID number, name, phone, image, consent, ids, refusal reasons) | do I/O, read the clock, print PII |
//! | [`crypto`] | HPKE sealing, at-rest envelopes, key files, blind indexes and keyed tags (fingerprints, record MACs), randomness | know gRPC or Redis, print key material |
//! | [`clock`] | time as an input (system and manual clocks) | — |
//! | [`decision`] | what a provider outcome means (thresholds, review reasons) | know a provider by name |
//! | [`providers`] | the provider trait; Tencent FaceID and Alibaba Cloud adapters; circuit breakers and routing; the simulator of both protocols | retry a billed call blindly, put PII in an error |
//! | [`store`] | the storage interface; [`store::memory`] (embedded) and [`store::redis`] (standalone and Cluster, review queue in `redis_review.rs`) | see plaintext, decide anything |
//! | [`verify`] | the verification use case: checks, idempotency bound to content, providers, decision, store | know gRPC, protobuf or Redis |
//! | [`review`] | the manual-review use case: leases, four-eyes, re-sealing to the reviewer, supplements, audit listing | hand out plaintext |
//! | [`material`] | the at-rest encoding of review material | keep unknown fields a client sent |
//! | [`transport`] | TLS 1.3 + mTLS, caller roles, gRPC services, load shedding, error → status | hold business rules |
//! | [`metrics`] | OpenTelemetry instruments | carry PII in a name or label |
//! | [`loadtest`] | the load tool: sealed synthetic payloads, schedules, HDR reports, echo baseline | depend on the gateway's internals |
//! | [`gateway`] | assembling a gateway from configuration (keys, store, providers, use cases, server) | — |
//! | [`config`], [`pki`], [`telemetry`] | typed layered configuration; the dev PKI; logging and OTLP set-up | print a secret |
//! | [`cli`] | one file per subcommand (`serve`, `verify`, `review` and `review --web`, `loadtest`, `provider-sim`, `keys`, `dev-certs`, `config`) | hold logic the library should |
//!
//! Personal data never appears in logs, traces, errors or `Debug` output.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod domain;
#[doc(hidden)]
pub mod fuzz_api;
pub mod gateway;
pub mod loadtest;
pub mod material;
pub mod metrics;
pub mod pki;
pub mod providers;
pub mod review;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod verify;

/// Generated gRPC types and services of `proto/idgate/v1` (never edited by hand).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("idgate.v1");
    /// The file descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("idgate_descriptor");
}
