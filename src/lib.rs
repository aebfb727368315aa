//! # idgate — a real-name identity verification gateway
//!
//! Sealed personal data in, a verified flag out. The crate's map, with dependencies pointing inward:
//!
//! | module | what it is for | knows nothing of |
//! |---|---|---|
//! | [`domain`] | parsed values that cannot be invalid (ID number, name, phone, image, consent, ids) | I/O, gRPC, Redis |
//! | [`crypto`] | HPKE sealing, at-rest envelopes, key files | gRPC, Redis |
//! | [`decision`] | what a provider outcome means (thresholds) | providers by name |
//! | [`providers`] | the provider trait, the Tencent FaceID adapter, the simulator, routing | gRPC, storage |
//! | [`store`] | case records, idempotency, sealed data at rest, retention | gRPC, plaintext |
//! | [`verify`] | the verification use case | gRPC, protobuf, Redis |
//! | [`material`] | the at-rest encoding of review material | gRPC |
//! | [`transport`] | TLS, caller roles, gRPC services, error → status | business rules |
//! | [`loadtest`] | the load tool: sealed synthetic payloads, schedules, HDR reports, echo baseline | the gateway's internals |
//! | [`gateway`], [`config`], [`pki`], [`telemetry`], [`cli`] | assembling and running the programs | — |
//!
//! Personal data never appears in logs, traces, errors or `Debug` output.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod domain;
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
