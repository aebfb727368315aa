//! The gRPC edge: TLS, caller identity and roles, and the services, which only convert between
//! protobuf and domain types and call the use cases.
//!
//! Must never log a request message, put input into a status message, or hold business rules.

pub mod admission;
pub mod auth;
pub mod codec;
pub mod errors;
pub mod offload;
pub mod readiness;
pub mod reasons;
pub mod revocation;
pub mod rpc_layer;
pub mod server;
pub mod services;
pub mod shedding;
pub mod tls;
