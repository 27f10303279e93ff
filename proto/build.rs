//! Compiles `reward/v1/reward.proto` into Rust (messages, client and server) and writes the
//! descriptor set that gRPC reflection serves. protoc comes from `protoc-bin-vendored`, so no system
//! package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC to find the compiler.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("reward_descriptor.bin"))
        .compile_protos(&["reward/v1/reward.proto"], &["."])?;
    println!("cargo:rerun-if-changed=reward/v1/reward.proto");
    Ok(())
}
