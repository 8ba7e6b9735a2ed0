//! Generates the control plane's gRPC code from `proto/fabric.proto`, with
//! the `protoc` that the `protoc-bin-vendored` crate carries: nothing to
//! install.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/fabric.proto";
    println!("cargo:rerun-if-changed={proto}");
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
