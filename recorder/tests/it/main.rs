//! The recorder's integration tests, one module per theme.

mod asciicast;
mod common;
mod conformance;
mod write;

/// Path of a file under `tests/data/`.
pub fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}
