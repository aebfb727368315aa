pub mod clock;
pub mod crypto;
pub mod providers;

/// Generated gRPC types and services of `proto/idgate/v1` (never edited by hand).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("idgate.v1");
    /// The file descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("idgate_descriptor");
}
