//! The `gatehouse` binary, run for real against temporary data directories.

mod control;
mod recording;
