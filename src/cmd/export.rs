//! `gatehouse export SESSION --format cast|jsonl [--from T] [--until T]`: a stored
//! session, or a stretch of it, → asciicast v2 or JSON lines of frames.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use gatehouse_recorder::asciicast::{Encoder, Header, Version};
use gatehouse_recorder::{Frame, FrameData, Micros};
use serde_json::json;

use super::{Ctx, moment};
use crate::store::{self, StoreArgs};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// asciicast v2: plays in `asciinema play` and asciinema-player.
    Cast,
    /// One JSON object per frame: {"t" (µs), "type", ...}; lossless.
    Jsonl,
}

/// Export a stored session as asciicast v2 or as JSON lines of frames.
///
/// asciicast v2 plays in `asciinema play` and asciinema-player. A damaged segment is reported on stderr, naming it, and the rest
/// is still exported (the exit status is then 1).
///
/// `--from`/`--until` export a stretch (a clip to hand over): as a cast it starts with the
/// screen as it was at `--from` and its times count from there; as JSON lines it holds
/// the frames of the stretch with their recorded times.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Session id, or a unique prefix of it.
    pub session: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "cast")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Start at this offset into the session: +0:01:23.456 (as `search` prints it), 1:23,
    /// 83.5 or 1m23s.
    #[arg(long, value_name = "OFFSET", value_parser = moment::parse)]
    pub from: Option<Micros>,
    /// End after this offset (same forms as --from).
    #[arg(long, value_name = "OFFSET", value_parser = moment::parse)]
    pub until: Option<Micros>,
}

/// Runs `gatehouse export`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let errors = rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        let id = storage.resolve(&args.session).await?;
        let manifest = storage.manifest(id).await?;
        let from = args.from.unwrap_or(0);
        moment::check_range(&manifest, from, args.until)?;
        // Only now, when there is something to write: a refused export leaves an
        // existing file as it was.
        let sink: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut out = BufWriter::new(sink);
        let (mut errors, mut drawn) = (0, false);
        let mut encoder = Encoder::new(Version::V2);
        // A cast of a stretch starts with the screen as it was at its start, at time 0.
        let cast = args.format == Format::Cast;
        if cast {
            let mut header = Header::from_manifest(&manifest);
            let mut first = None;
            if from > 0 {
                header.timestamp = header.timestamp.and_then(|t| t.checked_add(time::Duration::microseconds(from as i64)));
                match moment::screen_at(&storage, &manifest, from).await {
                    Ok((screen, cols, rows)) => {
                        (header.cols, header.rows) = (cols, rows);
                        first = Some(Frame { t: 0, data: FrameData::Output(screen.into()) });
                        drawn = true;
                    }
                    Err(e) => {
                        eprintln!("gatehouse: the screen at {} cannot be rebuilt ({e}); the cast starts without it", moment::format(from));
                        errors += 1;
                    }
                }
            }
            out.write_all(encoder.header(&header).as_bytes())?;
            if let Some(line) = first.and_then(|f| encoder.frame(&f)) {
                out.write_all(line.as_bytes())?;
            }
        }
        // JSON lines keep everything (nothing was drawn for them).
        let mut frames = std::pin::pin!(moment::frames(&storage, &manifest, from, args.until, drawn));
        let mut last_t = 0;
        while let Some(item) = frames.next().await {
            let mut frame = match item {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("gatehouse: {e}");
                    errors += 1;
                    continue;
                }
            };
            match args.format {
                Format::Cast => {
                    frame.t -= from;
                    if let Some(line) = encoder.frame(&frame) {
                        out.write_all(line.as_bytes())?;
                    }
                }
                Format::Jsonl => writeln!(out, "{}", jsonl(&frame))?,
            }
            last_t = frame.t;
        }
        for line in encoder.finish(last_t) {
            if args.format == Format::Cast {
                out.write_all(line.as_bytes())?;
            }
        }
        out.flush()?;
        anyhow::Ok(errors)
    })?;
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One frame as JSON. Bytes that are not UTF-8 on their own (a character split across
/// two frames, binary data) are given as hex, so nothing is lost.
fn jsonl(frame: &Frame) -> serde_json::Value {
    let bytes = |kind: &str, b: &[u8]| match std::str::from_utf8(b) {
        Ok(s) => json!({ "t": frame.t, "type": kind, "data": s }),
        Err(_) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json!({ "t": frame.t, "type": kind, "data_hex": hex })
        }
    };
    match &frame.data {
        FrameData::Output(b) => bytes("output", b),
        FrameData::Input(b) => bytes("input", b),
        FrameData::Resize { cols, rows } => json!({ "t": frame.t, "type": "resize", "cols": cols, "rows": rows }),
        FrameData::Marker(label) => json!({ "t": frame.t, "type": "marker", "label": label }),
        FrameData::Event(e) => json!({ "t": frame.t, "type": "event", "kind": e.kind, "data": e.data }),
    }
}
