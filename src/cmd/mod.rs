//! One module per subcommand: each turns its arguments into a validated config, then calls
//! the crates.

pub mod commands;
pub mod export;
pub mod import;
pub(crate) mod moment;
pub mod play;
pub mod record;
pub mod reindex;
pub mod search;
pub mod sessions;
pub mod verify;
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
        Command::Record(args) => record::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::Sessions(args) => sessions::run(&ctx, args),
        Command::Play(args) => play::run(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Search(args) => search::run(&ctx, args),
        Command::Reindex(args) => reindex::run(&ctx, args),
    }
}
