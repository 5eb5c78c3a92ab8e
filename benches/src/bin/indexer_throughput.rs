//! Indexer throughput: the whole per-session pipeline against bare `vt100` on the same
//! bytes, in the same run.
//!
//! Workload: `fixtures::terminal::realistic_session` — a bash session with typed commands
//! (a frame per keystroke and its echo), coloured listings and logs, UTF-8/CJK text, long
//! wrapping lines, `\r` progress bars, full-screen `top`/`vim`/`less` redraws with scroll
//! regions, `clear`, resizes, a password typed without echo; output cut into 1–4096-byte
//! chunks like SSH channel data. Frames are generated before timing.
//!
//! Measured loops (each over every frame of the workload):
//! - **anchor**: a fresh `vt100::Parser`; `process` on every output frame, `set_size` on
//!   resizes (`gatehouse_indexer::apply_frame`).
//! - **pipeline**: a fresh `SessionIndexer`, `push` on every frame, then `finish()`:
//!   command extraction (`Extractor::push`, which owns the session's one vt100 parser),
//!   the printed-text scan and de-duplication of screen lines, whole-screen reads while a
//!   full-screen program runs, the VT boundary tracking, keyframe capture every 512 KiB.
//! - also reported, to show where time goes: the extractor alone, and the pipeline without
//!   keyframes.
//!
//! A second workload is the recorded corpus in `fixtures/corpus/casts` (real bash and zsh
//! sessions, including vim/less/top), each cast run as its own session; its figure is the
//! sum over the casts.
//!
//! Time is the measuring thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: the machine is
//! shared, wall time is not), best of N alternating runs. Figure: throughput ratio =
//! anchor time / pipeline time (target ≥ 0.8). Usage: `indexer_throughput [MiB] [runs] [anchor|extractor|pipeline]`
//! (the third argument runs only that loop, for profiling).

use std::time::Duration;

use gatehouse_fixtures::terminal::realistic_session;
use gatehouse_indexer::{Extractor, PipelineStats, SessionIndexer, apply_frame};
use gatehouse_recorder::Frame;

fn cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = cpu_time();
    let out = f();
    (cpu_time() - start, out)
}

fn anchor(frames: &[Frame], cols: u16, rows: u16) -> Duration {
    timed(|| {
        let mut parser = vt100::Parser::new(rows.try_into().unwrap(), cols.try_into().unwrap(), 0);
        for f in frames {
            apply_frame(&mut parser, f);
        }
        std::hint::black_box(parser.screen().cursor_position());
    })
    .0
}

fn pipeline(frames: &[Frame], cols: u16, rows: u16, keyframes: bool) -> (Duration, PipelineStats) {
    timed(|| {
        let mut p = SessionIndexer::new(cols, rows);
        if !keyframes {
            p = p.without_keyframes();
        }
        for f in frames {
            p.push(f);
        }
        let out = p.finish();
        std::hint::black_box(&out.batch);
        out.stats
    })
}

fn extractor(frames: &[Frame], cols: u16, rows: u16) -> Duration {
    timed(|| {
        let mut e = Extractor::new(cols, rows);
        let mut n = 0;
        for f in frames {
            n += e.push(f).len();
        }
        n += e.finish().len();
        std::hint::black_box(n);
    })
    .0
}

/// The recorded corpus: (cols, rows, frames) per cast.
fn corpus() -> Vec<(u16, u16, Vec<Frame>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/corpus/casts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).map_or_else(|_| Vec::new(), |d| d.flatten().map(|e| e.path()).collect());
    paths.retain(|p| p.extension().is_some_and(|e| e == "cast"));
    paths.sort();
    paths
        .iter()
        .filter_map(|p| {
            let file = std::io::BufReader::new(std::fs::File::open(p).ok()?);
            let decoder = gatehouse_recorder::asciicast::open(file).ok()?;
            let (cols, rows) = (decoder.header().cols, decoder.header().rows);
            Some((cols, rows, decoder.filter_map(Result::ok).collect()))
        })
        .collect()
}

fn corpus_figures(casts: &[(u16, u16, Vec<Frame>)], runs: usize) {
    let bytes: usize = casts
        .iter()
        .flat_map(|(_, _, f)| f)
        .map(|f| match &f.data {
            gatehouse_recorder::FrameData::Output(b) => b.len(),
            _ => 0,
        })
        .sum();
    let (mut a, mut p, mut e) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..runs * 4 {
        a = a.min(casts.iter().map(|(c, r, f)| anchor(f, *c, *r)).sum());
        p = p.min(casts.iter().map(|(c, r, f)| pipeline(f, *c, *r, true).0).sum());
        e = e.min(casts.iter().map(|(c, r, f)| extractor(f, *c, *r)).sum());
    }
    println!(
        "recorded corpus: {} casts, {:.2} MiB of output: anchor {:.1} ms, extractor alone {:.1} ms, pipeline {:.1} ms CPU; throughput ratio {:.3}",
        casts.len(),
        bytes as f64 / 1048576.0,
        a.as_secs_f64() * 1e3,
        e.as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        a.as_secs_f64() / p.as_secs_f64()
    );
}

/// Prints hashes of everything the pipeline found in one session: commands, screen lines,
/// events, keyframes.
fn digest(name: &str, cols: u16, rows: u16, frames: &[Frame]) {
    use std::hash::{Hash as _, Hasher as _};
    let mut p = SessionIndexer::new(cols, rows);
    for f in frames {
        p.push(f);
    }
    let out = p.finish();
    let hash = |f: &dyn Fn(&mut std::hash::DefaultHasher)| {
        let mut h = std::hash::DefaultHasher::new();
        f(&mut h);
        h.finish()
    };
    let commands = hash(&|h| out.batch.commands.iter().for_each(|c| format!("{c:?}").hash(h)));
    let lines = hash(&|h| out.batch.lines.iter().for_each(|l| (l.t, &l.text).hash(h)));
    let events = hash(&|h| out.batch.events.iter().for_each(|e| format!("{e:?}").hash(h)));
    let keyframes = hash(&|h| out.keyframes.iter().for_each(|k| format!("{k:?}").hash(h)));
    println!(
        "{name}: {:?}; commands {commands:016x} lines {lines:016x} events {events:016x} keyframes {keyframes:016x}",
        out.stats
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    // A third argument (`anchor`, `pipeline`, `extractor`) runs only that loop, for `perf`;
    // `digest` prints what the pipeline found, hashed, to compare two builds.
    let only = args.next();
    let w = realistic_session(42, mb << 20);
    if only.as_deref() == Some("digest") {
        digest("workload", w.cols, w.rows, &w.frames);
        for (i, (cols, rows, frames)) in corpus().iter().enumerate() {
            digest(&format!("cast {i}"), *cols, *rows, frames);
        }
        return;
    }
    if let Some(only) = only {
        for _ in 0..runs {
            let d = match only.as_str() {
                "anchor" => anchor(&w.frames, w.cols, w.rows),
                "extractor" => extractor(&w.frames, w.cols, w.rows),
                _ => pipeline(&w.frames, w.cols, w.rows, true).0,
            };
            println!("{only}: {:.1} ms CPU", d.as_secs_f64() * 1e3);
        }
        return;
    }
    let bytes = w.output_bytes() as f64;
    println!(
        "workload: {} frames, {:.1} MiB of output, {} typed commands, {:.0} s of session time",
        w.frames.len(),
        bytes / 1048576.0,
        w.commands.len(),
        w.frames.last().map_or(0.0, |f| f.t as f64 / 1e6)
    );
    let mut best = [Duration::MAX; 4];
    let mut stats = PipelineStats::default();
    for _ in 0..runs {
        best[0] = best[0].min(anchor(&w.frames, w.cols, w.rows));
        let (d, s) = pipeline(&w.frames, w.cols, w.rows, true);
        best[1] = best[1].min(d);
        stats = s;
        best[2] = best[2].min(pipeline(&w.frames, w.cols, w.rows, false).0);
        best[3] = best[3].min(extractor(&w.frames, w.cols, w.rows));
    }
    let line = |name: &str, d: Duration| {
        println!("{name:<40}: {:>8.1} ms CPU  {:>7.1} MiB/s", d.as_secs_f64() * 1e3, bytes / d.as_secs_f64() / 1048576.0)
    };
    line("anchor: bare vt100::Parser::process", best[0]);
    line("extractor alone (Extractor::push)", best[3]);
    line("pipeline without keyframes", best[2]);
    line("pipeline: SessionIndexer push + finish", best[1]);
    println!(
        "pipeline found: {} commands, {} distinct screen lines ({} whole-screen reads), {} keyframes",
        stats.commands, stats.lines, stats.screen_reads, stats.keyframes
    );
    let ratio = |d: Duration| best[0].as_secs_f64() / d.as_secs_f64();
    println!("ratio extractor alone: {:.3}; pipeline without keyframes: {:.3}", ratio(best[3]), ratio(best[2]));
    println!("throughput ratio (anchor time / pipeline time): {:.3}  (target >= 0.8)", ratio(best[1]));
    let casts = corpus();
    if !casts.is_empty() {
        corpus_figures(&casts, runs);
    }
}
