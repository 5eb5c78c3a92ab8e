//! Shared helpers for the benchmark programs in `src/bin/`: each prints its figure as a
//! ratio against an anchor measured in the same run.

pub mod commands;
pub mod loadgen;
pub mod proxy_env;
