//! One module per subcommand: each turns its arguments into a validated config, then calls
//! the crates.

pub mod commands;
mod control_util;
pub mod rule;
pub mod target;
pub mod user;
pub mod demo;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// What every subcommand gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The data directory.
    pub data_dir: PathBuf,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx { data_dir: cli.data_dir };
    match cli.command {
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Commands(args) => commands::run(&ctx, args),
        Command::User(args) => user::run(&ctx, args),
        Command::Target(args) => target::run(&ctx, args),
        Command::Rule(args) => rule::run(&ctx, args),
    }
}
