//! `gatehouse play SESSION [--speed N]`: replay a stored session in the terminal.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use gatehouse_recorder::FrameData;

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Replay a stored session in this terminal at its recorded pace (like `asciinema play`).
///
/// Your terminal should be at least as large as the recording's.
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
        let mut frames = std::pin::pin!(storage.frames(&manifest, 0));
        let mut out = std::io::stdout();
        let (mut prev, mut errors) = (0u64, 0);
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
