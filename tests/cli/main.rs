//! The `gatehouse` binary, run for real against temporary data directories.

mod commands;
mod demo;
mod live_search;
mod control;
mod moments;
mod recording;
mod search;
mod support;
mod transfers;
