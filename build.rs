//! Generates the wire protocol's Rust code (prost messages, tonic clients and servers)
//! from `proto/ebbtide/v1/ebbtide.proto`, with the `protoc` that `protoc-bin-vendored`
//! ships: nothing is downloaded and no system `protoc` is needed.

use std::io;

const PROTO: &str = "proto/ebbtide/v1/ebbtide.proto";

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed={PROTO}");
    println!("cargo:rerun-if-changed=build.rs");
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(config, &[PROTO], &["proto"])
}
