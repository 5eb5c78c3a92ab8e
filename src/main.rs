//! The `gatehouse` binary: CLI parsing and wiring, nothing else.

mod cli;
mod cmd;
mod store;
mod config;

use clap::Parser;

fn main() -> std::process::ExitCode {
    gatehouse_recorder::tune_allocator();
    let cli = cli::Cli::parse();
    if cli.command.is_report() {
        end_quietly_when_the_reader_leaves();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gatehouse: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A report's reader going away (`gatehouse search x | head -1`) ends the command
/// quietly, as it ends `grep` or `ls`: SIGPIPE's default action. Rust starts with SIGPIPE
/// ignored, which turns it into an error message (or a `println!` panic).
fn end_quietly_when_the_reader_leaves() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restoring a signal's default action installs no handler; nothing else in
    // the process has changed SIGPIPE's disposition at this point.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
