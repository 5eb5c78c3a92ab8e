//! `gatehouse import FILE.cast`: an asciicast v2/v3 recording → a stored session.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_recorder::{FrameData, SessionEnd, asciicast};
use time::OffsetDateTime;

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Import an asciicast v2 or v3 file as a stored session.
///
/// Output, input, resizes, markers and the exit status are kept. The whole file is checked first: a bad cast is reported with its line number
/// and nothing is stored. Prints the new session's id.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The gatehouse user to file the session under.
    #[arg(long)]
    pub user: Option<String>,
    /// The target name to file the session under.
    #[arg(long)]
    pub target: Option<String>,
    /// The .cast file.
    pub file: PathBuf,
}

fn open(path: &Path) -> anyhow::Result<asciicast::Decoder<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    asciicast::open(BufReader::new(file)).with_context(|| path.display().to_string())
}

/// Runs `gatehouse import`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    // Pass 1: validate, so a bad line never leaves half a session behind.
    let mut frames = 0u64;
    for frame in open(&args.file)? {
        frame.with_context(|| args.file.display().to_string())?;
        frames += 1;
    }
    let mut cast = open(&args.file)?;
    let header = cast.header().clone();
    let mut meta = header.meta();
    meta.protocol = Some("import".into());
    meta.user = args.user.clone();
    meta.target = args.target.clone();
    if meta.title.is_none() {
        meta.title = args.file.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    let started_at = header.timestamp.unwrap_or_else(OffsetDateTime::now_utc);

    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let manifest = rt.block_on(async {
        let recorder = store::open_recorder(ctx, storage.clone()).await?;
        let mut writer = recorder.start_at(meta, started_at).await?;
        let mut exit_status = None;
        for frame in cast.by_ref() {
            let frame = frame.with_context(|| args.file.display().to_string())?;
            if let FrameData::Event(e) = &frame.data
                && e.kind == "exit"
            {
                exit_status = e.data.get("status").and_then(|s| s.as_i64()).map(|s| s as i32);
            }
            writer.write_frame(frame)?;
        }
        let manifest = writer.finish(SessionEnd { reason: "imported".into(), exit_status }).await?;
        recorder.shutdown().await;
        anyhow::Ok(manifest)
    })?;
    eprintln!("gatehouse: imported {} ({frames} frames) as session {}", args.file.display(), manifest.id);
    println!("{}", manifest.id);
    Ok(ExitCode::SUCCESS)
}
