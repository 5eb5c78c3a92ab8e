//! Indexer throughput: the whole per-session pipeline against bare `vt100` on the same
//! bytes, in the same run.
//!
//! Workload: `fixtures::terminal::realistic_session` — a bash session with typed commands
//! (a frame per keystroke and its echo), coloured listings and logs, UTF-8/CJK text, long
//! wrapping lines, `\r` progress bars, full-screen `top`/`vim`/`less` redraws with scroll
//! regions, `clear`, resizes; output cut into 1–4096-byte chunks like SSH channel data.
//!
//! - **anchor**: `vt100::Parser::process` on every output frame, `set_size` on resizes.
//! - **pipeline**: `SessionIndexer::push` on every frame, then `finish()`: command
//!   extraction (which owns the one vt100 parser), the newline/ESC scan and screen reads for
//!   screen text with de-duplication, the VT boundary tracking, keyframe capture (with its
//!   self-check) every 5 s of session time or 256 KiB of output.
//! - also reported: the extractor alone (`Extractor::push`), to show where time goes.
//!
//! Frames are generated before timing; runs alternate and the best of each is kept.
//! Figure: throughput ratio = anchor time / pipeline time (target ≥ 0.8).

use std::time::{Duration, Instant};

use gatehouse_fixtures::terminal::realistic_session;
use gatehouse_indexer::{Extractor, SessionIndexer, apply_frame};
use gatehouse_recorder::Frame;

fn anchor(frames: &[Frame], cols: u16, rows: u16) -> Duration {
    let start = Instant::now();
    let mut parser = vt100::Parser::new(rows.try_into().unwrap(), cols.try_into().unwrap(), 0);
    for f in frames {
        apply_frame(&mut parser, f);
    }
    std::hint::black_box(parser.screen().cursor_position());
    start.elapsed()
}

fn pipeline(frames: &[Frame], cols: u16, rows: u16, keyframes: bool) -> (Duration, gatehouse_indexer::PipelineStats) {
    let start = Instant::now();
    let mut p = SessionIndexer::new(cols, rows);
    if !keyframes {
        p = p.without_keyframes();
    }
    for f in frames {
        p.push(f);
    }
    let out = p.finish();
    let elapsed = start.elapsed();
    std::hint::black_box(&out.batch);
    (elapsed, out.stats)
}

fn extractor(frames: &[Frame], cols: u16, rows: u16) -> Duration {
    let start = Instant::now();
    let mut e = Extractor::new(cols, rows);
    let mut n = 0;
    for f in frames {
        n += e.push(f).len();
    }
    n += e.finish().len();
    std::hint::black_box(n);
    start.elapsed()
}

fn main() {
    let mb: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let w = realistic_session(42, mb << 20);
    let bytes = w.output_bytes() as f64;
    println!("workload: {} frames, {:.1} MiB of output, {} typed commands", w.frames.len(), bytes / 1048576.0, w.commands.len());
    let (mut best_anchor, mut best_pipe, mut best_extract) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut best_no_kf = Duration::MAX;
    let mut stats = None;
    for _ in 0..5 {
        best_anchor = best_anchor.min(anchor(&w.frames, w.cols, w.rows));
        let (d, s) = pipeline(&w.frames, w.cols, w.rows, true);
        best_pipe = best_pipe.min(d);
        stats = Some(s);
        best_no_kf = best_no_kf.min(pipeline(&w.frames, w.cols, w.rows, false).0);
        best_extract = best_extract.min(extractor(&w.frames, w.cols, w.rows));
    }
    let mbps = |d: Duration| bytes / d.as_secs_f64() / 1048576.0;
    let s = stats.expect("ran");
    println!("anchor   bare vt100::Parser::process : {:>8.1} ms  {:>7.1} MiB/s", best_anchor.as_secs_f64() * 1e3, mbps(best_anchor));
    println!("extractor alone (Extractor::push)    : {:>8.1} ms  {:>7.1} MiB/s", best_extract.as_secs_f64() * 1e3, mbps(best_extract));
    println!("pipeline without keyframes           : {:>8.1} ms  {:>7.1} MiB/s", best_no_kf.as_secs_f64() * 1e3, mbps(best_no_kf));
    println!("pipeline SessionIndexer push+finish  : {:>8.1} ms  {:>7.1} MiB/s", best_pipe.as_secs_f64() * 1e3, mbps(best_pipe));
    println!(
        "pipeline found: {} commands, {} distinct screen lines ({} whole-screen reads), {} keyframes",
        s.commands, s.lines, s.screen_reads, s.keyframes
    );
    println!(
        "throughput ratio (anchor time / pipeline time): {:.3}  (target >= 0.8)",
        best_anchor.as_secs_f64() / best_pipe.as_secs_f64()
    );
}
