//! # idgate — a real-name identity verification gateway
//!
//! Sealed personal data in, a verified flag out. The crate's map, with dependencies pointing inward:
//!
//! | module | what it is for | must never |
//! |---|---|---|
//! | [`domain`] | parsed values that cannot be invalid (ID number, name, phone, image, consent, ids, refusal reasons, the codes stored with a case) | do I/O, read the clock, print PII |
//! | [`crypto`] | HPKE sealing, at-rest envelopes, key files, time-boxed KEKs (epochs, destruction dates, scheduled upkeep), blind indexes and keyed tags (fingerprints, record MACs), randomness | know gRPC or Redis, print key material, wrap with a KEK past its epoch or use one past its destruction date |
//! | [`clock`] | time as an input (system and manual clocks; the monotonic clock of breakers and back-offs) | — |
//! | [`live`] | a value a reload replaces while calls keep the one they started with (key rings, deny list) | print what it holds |
//! | [`decision`] | what a provider outcome means (the [`decision::Outcome`] type adapters produce, thresholds, review reasons); the abuse limits and the anchor-accounts-per-ID claim both paths apply | know a provider by name |
//! | [`providers`] | the provider trait; Tencent FaceID and Alibaba Cloud adapters, and what they share (the API secret, [`providers::credentials`]; redaction of vendor codes, [`providers::sanitize`]); images as SIMD base64 in vendor bodies ([`providers::image_base64`]); circuit breakers and routing; the chain built from configuration ([`providers::setup`]); the simulator of both protocols and the one `--dev` starts ([`providers::sim::dev`]) | retry a billed call blindly, put PII in an error |
//! | [`store`] | the storage interfaces, one per concern (cases, retention, audit log, limits, key maintenance, review queue; [`store::Store`] is the first five together; the one rule for leases, [`store::lease_holds`]); [`store::memory`] (embedded) and [`store::redis`] (standalone and Cluster), each a folder with one file per interface and, for Redis, its Lua scripts beside it; [`store::setup`] connects the one `[store]` names | see plaintext, decide anything |
//! | [`verify`] | the verification use case: checks, idempotency bound to content, rate limits, providers, decision, store; reading and watching a case | know gRPC, protobuf or Redis |
//! | [`review`] | the manual-review use case: reviewer keys, leases, four-eyes, re-sealing to the reviewer | hand out plaintext |
//! | [`supplements`] | the supplement use case: an applicant adds ID-card and handheld photos to a pending case | store plaintext, touch another client's case |
//! | [`erasure`] | erasure on request: a subject's pending cases lose their data and end `ERASED` | touch another client's case under `Own` scope |
//! | [`consent`] | withdrawal of consent: all (an erasure) or only the biometric part (faces destroyed, cases on to document review) | touch another client's case, record personal data |
//! | [`retention`] | the retention sweep: expire due pending cases, forget old records | keep personal data past its deadline |
//! | [`key_rotation`] | re-wrapping data keys under the current KEK after a rotation (while it is in its epoch) | open a case's body, drop a key it cannot move |
//! | [`audit`] | the audit trail every use case records through, and its paged listing for operators | record personal data or key material |
//! | [`material`] | the at-rest encoding of review material: identity material and face sealed apart, each under its own field name and data key; records of one envelope still read; decoding an opened payload with one copy per field | keep unknown fields a client sent, or a face in the identity material |
//! | [`transport`] | TLS 1.3 + mTLS, caller roles, gRPC services (ids parsed at the edge), load shedding, large payloads opened off the async runtime, error → status and the one list of reason codes | hold business rules |
//! | [`metrics`] | OpenTelemetry instruments | carry PII in a name or label |
//! | [`loadtest`] | the load tool (with the `tools` feature, on by default): sealed synthetic payloads, schedules, HDR reports, echo baseline | depend on the gateway's internals |
//! | [`client`] | the client side of the gateway for the tools (CLI, load tool, tests): an mTLS channel as one of the dev PKI's identities, the gateway's certificate checked against the target's name, a sealed `VerifyRequest` | log or format the identity it seals, trust a certificate for a name the target does not give |
//! | [`gateway`] | assembling a gateway from configuration, one step per room: plan and dev defaults, keys, store, providers, use cases, readiness and gauges, background upkeep, server | hold a business rule, guess a setting outside `--dev` |
//! | [`privacy_report`] | the data map for the privacy office: recipients, protection and lifetimes of personal data, derived from the configuration | print a secret or a figure typed in by hand |
//! | `fuzz_api` | entry points for the stable-toolchain fuzz harness (`tests/fuzz.rs`) into parsers of untrusted bytes private to their modules; hidden from the docs, not an API | add behaviour, print what it is given |
//! | [`config`], [`pki`], [`telemetry`] | typed layered configuration; the dev PKI; logging and OTLP set-up | print a secret |
//! | [`cli`] | one file per subcommand (`serve`, `verify`, `review` and `review --web`, `loadtest`, `provider-sim`, `keys`, `dev-certs`, `config`, `privacy report`, `consent withdraw`; the review consoles, `loadtest`, `provider-sim` and `dev-certs` with the `tools` feature) | hold logic the library should, be imported by the library |
//!
//! Personal data never appears in logs, traces, errors or `Debug` output.

pub mod audit;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod decision;
pub mod domain;
pub mod erasure;
#[doc(hidden)]
pub mod fuzz_api;
pub mod gateway;
pub mod key_rotation;
pub mod live;
#[cfg(feature = "tools")]
pub mod loadtest;
pub mod material;
pub mod metrics;
pub mod pki;
pub mod privacy_report;
pub mod providers;
pub mod retention;
pub mod review;
pub mod store;
pub mod supplements;
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
