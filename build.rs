//! Generates the gRPC code of `proto/idgate/v1/idgate.proto` and the descriptor set served by reflection.
//!
//! protoc: `$PROTOC` if set, otherwise the vendored binary, so that a fresh machine builds with nothing
//! installed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("idgate_descriptor.bin"))
        // IdentityPayload holds plaintext PII: no derived Debug (a redacted one is written by hand).
        .skip_debug(["idgate.v1.IdentityPayload"])
        .compile_with_config(config, &["proto/idgate/v1/idgate.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
