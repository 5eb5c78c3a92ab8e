//! `gatehouse commands FILE.cast|SESSION`: the command lines run in a recording, one JSON
//! object per line.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use gatehouse_indexer::{CommandKind, CommandRecord, SessionIndexer};
use gatehouse_recorder::{Frame, Micros, asciicast};

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Print the commands run in a recording as JSON lines:
/// `{"t", "t_end", "command", "kind", "cwd", "exit", "output_excerpt"}`.
///
/// Times are seconds since the session started; `kind` is "shell" (a command line the
/// shell ran, or the command of `ssh host CMD`) or "program-input" (a line typed into a
/// program: a REPL, a prompt). Input typed while the terminal did not echo (passwords)
/// never appears. The records are the search index's (the same pipeline finds them); a
/// finished `ssh host CMD` session gives its command the session's exit status.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// An asciicast v2/v3 file (best with "i" input events), or a stored session id (or a
    /// unique prefix of it).
    pub source: String,
}

/// Runs `gatehouse commands`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let path = Path::new(&args.source);
    if path.exists() {
        from_cast(path, &mut out)?;
    } else if args.source.ends_with(".cast") {
        anyhow::bail!("{}: no such file", path.display());
    } else {
        let errors = from_store(ctx, &args, &mut out)?;
        out.flush()?;
        if errors > 0 {
            return Ok(ExitCode::FAILURE);
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn from_cast(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut frames = asciicast::open(BufReader::new(file)).with_context(|| path.display().to_string())?;
    let header = frames.header();
    let mut pipeline = SessionIndexer::new(header.cols, header.rows).without_keyframes();
    for frame in frames.by_ref() {
        match frame {
            Ok(frame) => push(&mut pipeline, &frame, out)?,
            Err(err) => {
                // Print what the readable part of the recording holds, then the error.
                finish(pipeline, out)?;
                out.flush()?;
                return Err(err).with_context(|| path.display().to_string());
            }
        }
    }
    finish(pipeline, out)
}

/// Reads a stored session; a damaged segment is reported on stderr (naming it) and the
/// rest is still read. Returns the number of such errors.
fn from_store(ctx: &Ctx, args: &Args, out: &mut impl Write) -> anyhow::Result<usize> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        let id = storage.resolve(&args.source).await?;
        let manifest = storage.manifest(id).await?;
        let mut pipeline = SessionIndexer::for_manifest(&manifest).without_keyframes();
        let mut frames = std::pin::pin!(storage.frames(&manifest, 0));
        let mut errors = 0;
        while let Some(item) = frames.next().await {
            match item {
                Ok(frame) => push(&mut pipeline, &frame, out)?,
                Err(e) => {
                    eprintln!("gatehouse: {e}");
                    errors += 1;
                }
            }
        }
        finish(pipeline, out)?;
        Ok(errors)
    })
}

/// Feeds one frame and prints the commands it completed.
fn push(pipeline: &mut SessionIndexer, frame: &Frame, out: &mut impl Write) -> anyhow::Result<()> {
    pipeline.push(frame);
    for c in pipeline.take().commands {
        print(out, &c.record)?;
    }
    Ok(())
}

/// Prints the commands still open at the end (the last one, without a prompt after it).
fn finish(pipeline: SessionIndexer, out: &mut impl Write) -> anyhow::Result<()> {
    for c in pipeline.finish().batch.commands {
        print(out, &c.record)?;
    }
    Ok(())
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
