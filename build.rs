//! Generates the gRPC code of `proto/idgate/v1/idgate.proto` and the descriptor set served by reflection,
//! and that of `proto/idgate/loadtest/v1/echo.proto` (the load tool's baseline; not in that descriptor set,
//! so the gateway's reflection never lists it).
//!
//! protoc: `$PROTOC` if set, otherwise the vendored binary, so that a fresh machine builds with nothing
//! installed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let config = || -> Result<tonic_prost_build::Config, Box<dyn std::error::Error>> {
        let mut config = tonic_prost_build::Config::new();
        if std::env::var_os("PROTOC").is_none() {
            config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
        }
        Ok(config)
    };
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("idgate_descriptor.bin"))
        // IdentityPayload holds plaintext PII: no derived Debug (a redacted one is written by hand).
        .skip_debug(["idgate.v1.IdentityPayload"])
        // The sealed ciphertext (up to 17 MiB) is decoded as a `Bytes` slice of tonic's decode buffer
        // instead of being copied into a fresh `Vec`. It is ciphertext, so nothing needs wiping; the
        // plaintext fields of `IdentityPayload` stay `Vec`/`String`, wiped on drop (see
        // `material::wire` for why they must not become `Bytes`).
        .bytes(".idgate.v1.SealedPayload.ciphertext")
        // A message that does not decode is INVALID_ARGUMENT / MESSAGE_MALFORMED (docs/api.md §4), not INTERNAL.
        .codec_path("crate::transport::codec::WireCodec")
        .compile_with_config(config()?, &["proto/idgate/v1/idgate.proto"], &["proto"])?;
    tonic_prost_build::configure().compile_with_config(
        config()?,
        &["proto/idgate/loadtest/v1/echo.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
