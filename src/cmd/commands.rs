//! `gatehouse commands FILE.cast|SESSION`: the command lines run in a recording, one JSON
//! object per line.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_indexer::{CommandKind, CommandRecord, Extractor};
use gatehouse_recorder::{Micros, asciicast};

use super::Ctx;

/// Print the commands run in a recording as JSON lines:
/// `{"t", "t_end", "command", "kind", "cwd", "exit", "output_excerpt"}` (times in seconds
/// since the session started; `kind` is "shell" or "program-input").
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An asciicast v2/v3 file (with "i" input events for best results).
    pub source: PathBuf,
}

/// Runs `gatehouse commands`.
pub fn run(_ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let file = File::open(&args.source).with_context(|| format!("cannot open {}", args.source.display()))?;
    let mut frames = asciicast::open(BufReader::new(file)).with_context(|| format!("{}", args.source.display()))?;
    let header = frames.header();
    let mut extractor = Extractor::new(header.cols, header.rows);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for frame in frames.by_ref() {
        match frame {
            Ok(frame) => {
                for record in extractor.push(&frame) {
                    print(&mut out, &record)?;
                }
            }
            Err(err) => {
                // Print what the readable part of the recording holds, then the error.
                for record in extractor.finish() {
                    print(&mut out, &record)?;
                }
                out.flush()?;
                return Err(err).with_context(|| format!("{}", args.source.display()));
            }
        }
    }
    for record in extractor.finish() {
        print(&mut out, &record)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, r: &CommandRecord) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "t": seconds(r.t),
        "t_end": r.t_end.map(seconds),
        "command": r.command,
        "kind": match r.kind {
            CommandKind::Shell => "shell",
            CommandKind::ProgramInput => "program-input",
        },
        "cwd": r.cwd,
        "exit": r.exit,
        "output_excerpt": r.output_excerpt,
    });
    writeln!(out, "{line}")?;
    Ok(())
}

/// Seconds for display; exact to the microsecond for any realistic session length.
fn seconds(t: Micros) -> f64 {
    t as f64 / 1e6
}
