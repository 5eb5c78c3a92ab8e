//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;

/// gatehouse: a privileged-access gateway that records every session and makes it
/// searchable, replayable and reportable.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
pub struct Cli {
    /// Data directory: spool, control-plane database, index, and the default `file://` store.
    #[arg(long, global = true, env = "GATEHOUSE_DATA_DIR", default_value = "gatehouse-data")]
    pub data_dir: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SSH proxy with the recorder (and later the indexer and web UI).
    Serve(cmd::serve::Args),
    /// Run everything with embedded defaults, a demo user and a built-in demo target.
    Demo(cmd::demo::Args),
    /// Print the commands run in a recording (FILE.cast or a stored SESSION) as JSON lines.
    Commands(cmd::commands::Args),
    /// Manage users: passwords, public keys, groups, TOTP, lockouts.
    User(cmd::user::Args),
    /// Manage targets: address, labels, accounts and credentials, host-key pins.
    Target(cmd::target::Args),
    /// Manage allow rules: users/@groups -> targets (by name or label) -> accounts.
    Rule(cmd::rule::Args),
    Record(cmd::record::Args),
    Import(cmd::import::Args),
    Export(cmd::export::Args),
    Sessions(cmd::sessions::Args),
    Play(cmd::play::Args),
    Verify(cmd::verify::Args),
    /// Search commands and screen text (newest first).
    Search(cmd::search::Args),
    /// Rebuild the search index, keyframes and Parquet tables from the recordings.
    Reindex(cmd::reindex::Args),
}

impl Command {
    /// A command that reads and prints, and may end wherever its reader stops reading
    /// (see `main`). Not the servers (a peer that goes away must not end them), nor the
    /// commands that write recordings or the index (`record`, `import`, `reindex`),
    /// which finish their writes whoever reads what they print.
    pub fn is_report(&self) -> bool {
        match self {
            Command::Search(_)
            | Command::Sessions(_)
            | Command::Export(_)
            | Command::Commands(_)
            | Command::Play(_)
            | Command::Verify(_)
            | Command::User(_)
            | Command::Target(_)
            | Command::Rule(_) => true,
            Command::Serve(_) | Command::Demo(_) | Command::Record(_) | Command::Import(_) | Command::Reindex(_) => false,
        }
    }
}

#[allow(dead_code)]
fn _unused(_: &cmd::Ctx) {}
