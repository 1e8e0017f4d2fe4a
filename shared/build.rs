//! Generates the protobuf types from `proto/messages.proto` with protox (pure Rust, so no
//! `protoc` binary is needed on a fresh machine).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = proto_dir.join("messages.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let descriptors = protox::compile([&file], [&proto_dir])?;
    prost_build::Config::new()
        // Boxed: inline, the rare extension would make every Payload a third larger.
        .boxed(".pm.WorkItemCreated.restored")
        .compile_fds(descriptors)?;
    Ok(())
}
