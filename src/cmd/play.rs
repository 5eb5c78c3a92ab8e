//! `gatehouse play SESSION [--speed N] [--from T] [--until T]`: replay a stored session
//! in the terminal, from any moment: the screen as it was then is drawn first (from the
//! session's keyframes, see `gatehouse_indexer::screen_at`), and the replay goes on from
//! there.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use gatehouse_recorder::{FrameData, Micros};

use super::{Ctx, moment};
use crate::store::{self, StoreArgs};

/// Replay a stored session in this terminal at its recorded pace (like `asciinema play`).
///
/// Your terminal should be at least as large as the recording's. `--from` starts at any
/// moment, e.g. the offset `gatehouse search` printed for a hit: the screen as it was then
/// is drawn first, and the replay goes on from there.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Session id, or a unique prefix of it.
    pub session: String,
    /// Playback speed: 2 plays twice as fast.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Cap pauses at this many seconds.
    #[arg(long, value_name = "SECS")]
    pub idle_limit: Option<f64>,
    /// Start at this offset into the session: +0:01:23.456 (as `search` prints it), 1:23,
    /// 83.5 or 1m23s.
    #[arg(long, value_name = "OFFSET", value_parser = moment::parse)]
    pub from: Option<Micros>,
    /// Stop after this offset (same forms as --from).
    #[arg(long, value_name = "OFFSET", value_parser = moment::parse)]
    pub until: Option<Micros>,
}

/// Runs `gatehouse play`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number, not {}", args.speed);
    }
    let idle = args.idle_limit.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let errors = rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        let manifest = storage.manifest(storage.resolve(&args.session).await?).await?;
        let from = args.from.unwrap_or(0);
        moment::check_range(&manifest, from, args.until)?;
        let mut out = std::io::stdout();
        let (mut errors, mut drawn) = (0, false);
        if from > 0 {
            match moment::screen_at(&storage, &manifest, from).await {
                Ok((screen, _, _)) => {
                    out.write_all(&screen)?;
                    drawn = true;
                }
                Err(e) => {
                    eprintln!("gatehouse: the screen at {} cannot be rebuilt ({e}); playing on from there\r", moment::format(from));
                    errors += 1;
                }
            }
            out.flush()?;
        }
        let mut frames = std::pin::pin!(moment::frames(&storage, &manifest, from, args.until, drawn));
        let mut prev = from;
        let start = tokio::time::Instant::now();
        let mut due = Duration::ZERO;
        while let Some(item) = frames.next().await {
            let frame = match item {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("\r\ngatehouse: {e}\r");
                    errors += 1;
                    continue;
                }
            };
            // Pace against a running deadline, not per-frame sleeps, so time never drifts.
            let mut gap = Duration::from_micros(frame.t.saturating_sub(prev)).div_f64(args.speed);
            if let Some(limit) = idle {
                gap = gap.min(limit);
            }
            prev = frame.t;
            due += gap;
            tokio::time::sleep_until(start + due).await;
            if let FrameData::Output(bytes) = &frame.data {
                out.write_all(bytes)?;
                out.flush()?;
            }
        }
        anyhow::Ok(errors)
    })?;
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
