//! Recorder ingest: frames → spool → sealed, compressed, hash-chained segments in a store,
//! against plain zstd-3 and gzip-6 asciicast on the same bytes, in the same run.
//!
//! Workload: `fixtures::terminal::realistic_session` (the indexer's benchmark and tests
//! use the same generator), 4 sessions with different seeds recorded concurrently, one
//! writer thread each, as a proxy would: an administrator at a bash prompt typing
//! commands a key at a time (a frame per keystroke and one per echo), `ls`/`find` over one
//! file system, `dmesg`, logs, compiler output, `systemctl status`, `top`, `vim` and
//! `less` full-screen redraws, UTF-8/CJK prose, resizes.
//!
//! Output is cut into 1–4096-byte chunks like SSH channel data.
//!
//! - **anchor A, zstd-3 alone**: the sessions' payload bytes (output + input), compressed
//!   in 1 MiB blocks by `zstd::bulk` at level 3 — the compression the recorder must do
//!   anyway, with nothing else.
//! - **anchor B, gzip-6 asciicast**: each session encoded as asciicast v2 and gzipped at
//!   level 6 (what storing `.cast.gz` files would cost).
//! - **recorder**: `Recorder` with its default config (4 MiB / 5 s segments, zstd level 1,
//!   a spool on disk, 200 ms flushes) writing to a `memory://` store; `write_frame` for
//!   every frame (frames handed over by value, as the proxy does), then `finish`:
//!   everything sealed, hash-chained and uploaded. The store is emptied after each run,
//!   once the clock stopped (see [`empty`]). One recorder serves every run, after
//!   a first run that is not measured, as a proxy keeps one for its lifetime: the runs
//!   measure it at work, with its buffers and spool files in reuse, not its start-up.
//!
//! Throughput is payload bytes per CPU-second of the whole process (user + system, all
//! threads, `CLOCK_PROCESS_CPUTIME_ID`), i.e. per core. Stored bytes are the segment
//! objects plus manifests. Runs alternate; the best of each is kept. Targets: ≥ 300 MB/s
//! per core, stored ≤ 1/6 of raw. Usage: `recorder_ingest [MiB of payload, default 128]`
//! (`GATEHOUSE_BENCH_RECORDER_ONLY=1` skips the anchors, to profile the recorder alone;
//! `GATEHOUSE_BENCH_RUNS=N` measures N runs instead of 3; `GATEHOUSE_BENCH_GLIBC_DEFAULTS=1`
//! leaves glibc's allocator as it comes, without `recorder::tune_allocator`).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse_fixtures::terminal::realistic_session;
use gatehouse_recorder::asciicast::{Encoder, Header, Version};
use gatehouse_recorder::{Frame, FrameData, Recorder, RecorderConfig, SessionEnd, SessionMeta, Storage};

/// Sessions recorded at once.
const SESSIONS: u64 = 4;

/// Wall and CPU time of a run, and the bytes it produced.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
    stored: u64,
    /// CPU time of the `write_frame` calls alone (the recorder's own threads seal and upload).
    writers: Duration,
    /// Minor page faults: memory touched for the first time, which the kernel zeroes.
    faults: u64,
}

impl Run {
    fn best(self, other: Run) -> Run {
        if other.cpu < self.cpu { other } else { self }
    }
}

/// CPU time used by this process so far (all threads, also those that ended; user +
/// system), from the kernel's nanosecond clock.
fn cpu_time() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// CPU nanoseconds spent in `write_frame` calls, all writer threads of the current run.
static WRITER_NS: AtomicU64 = AtomicU64::new(0);

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Minor page faults of this process so far, all threads.
fn faults() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    usage.minor_page_faults() as u64
}

fn measure(f: impl FnOnce() -> u64) -> Run {
    // Only this run's writers: the unmeasured warm-up run's are still counted otherwise.
    WRITER_NS.store(0, Ordering::Relaxed);
    let (wall0, cpu0, faults0) = (Instant::now(), cpu_time(), faults());
    let stored = f();
    let writers = Duration::from_nanos(WRITER_NS.swap(0, Ordering::Relaxed));
    Run { wall: wall0.elapsed(), cpu: cpu_time() - cpu0, stored, writers, faults: faults() - faults0 }
}

fn payload(frames: &[Frame]) -> impl Iterator<Item = &[u8]> {
    frames.iter().filter_map(|f| match &f.data {
        FrameData::Output(b) | FrameData::Input(b) => Some(&b[..]),
        _ => None,
    })
}

fn zstd_alone(sessions: &[Vec<Frame>]) -> u64 {
    let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
    let mut stored = 0;
    for frames in sessions {
        let mut block = Vec::with_capacity(1 << 20);
        for bytes in payload(frames) {
            block.extend_from_slice(bytes);
            if block.len() >= 1 << 20 {
                stored += zstd.compress(&block).unwrap().len() as u64;
                block.clear();
            }
        }
        stored += zstd.compress(&block).unwrap().len() as u64;
    }
    stored
}

fn gzip_asciicast(sessions: &[Vec<Frame>], cols: u16, rows: u16) -> u64 {
    let mut stored = 0;
    for frames in sessions {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let mut enc = Encoder::new(Version::V2);
        gz.write_all(enc.header(&Header::new(cols, rows)).as_bytes()).unwrap();
        for f in frames {
            if let Some(line) = enc.frame(f) {
                gz.write_all(line.as_bytes()).unwrap();
            }
        }
        stored += gz.finish().unwrap().len() as u64;
    }
    stored
}

/// Records `sessions` with `recorder`; their emptied frame lists go to `spent`, to be
/// freed after the clock stops (the harness's input lists are not the recorder's work).
fn record(rt: &tokio::runtime::Runtime, recorder: &Recorder, sessions: Vec<Vec<Frame>>, spent: &mut Vec<Vec<Frame>>) -> u64 {
    rt.block_on(async {
        let mut writers = Vec::new();
        for _ in &sessions {
            writers.push(recorder.start(SessionMeta::default()).await.unwrap());
        }
        // One thread per session, as the proxy's session tasks would be.
        let writers: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = writers
                .into_iter()
                .zip(sessions)
                .enumerate()
                .map(|(i, (mut w, mut frames))| {
                    // Named, so a profile tells the writers from the workload generation.
                    let thread = std::thread::Builder::new().name(format!("writer-{i}"));
                    thread
                        .spawn_scoped(s, move || {
                            let t0 = thread_cpu();
                            for f in frames.drain(..) {
                                w.write_frame(f).unwrap();
                            }
                            WRITER_NS.fetch_add((thread_cpu() - t0).as_nanos() as u64, Ordering::Relaxed);
                            (w, frames)
                        })
                        .unwrap()
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let writers: Vec<_> = writers.into_iter().map(|(w, frames)| {
            spent.push(frames);
            w
        }).collect();
        let mut stored = 0;
        for w in writers {
            let m = w.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap();
            assert_eq!(m.state, gatehouse_recorder::RecordingState::Complete);
            stored += m.segments.iter().map(|s| s.stored_bytes).sum::<u64>();
            stored += serde_json::to_vec_pretty(&m).unwrap().len() as u64;
        }
        stored
    })
}

/// Deletes every object of the `memory://` store, after the clock stopped. A real store
/// (S3, files) does not keep the segments in this process: the recorder frees each
/// segment's buffer once it is uploaded, and the next one reuses that memory. The
/// in-memory store keeps them all, so without this every run would take 21 MiB of fresh
/// pages from the kernel (zeroed, at 1.5–6 µs a page on this virtual machine): a cost
/// of the harness, as the frame lists freed after the clock stops are.
fn empty(rt: &tokio::runtime::Runtime, storage: &Storage) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let store = storage.object_store();
    rt.block_on(async {
        let paths: Vec<_> = store.list(None).map_ok(|m| m.location).try_collect().await.unwrap();
        for p in paths {
            store.delete(&p).await.unwrap();
        }
    });
}

fn main() {
    // As the `gatehouse` binary does.
    if std::env::var_os("GATEHOUSE_BENCH_GLIBC_DEFAULTS").is_none() {
        gatehouse_recorder::tune_allocator();
    }
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(128);
    let per = (mib << 20) / SESSIONS as usize;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sessions: Vec<Vec<Frame>> = (0..SESSIONS).map(|seed| realistic_session(seed + 1, per).frames).collect();
    let (cols, rows) = (80, 24);
    let raw: u64 = sessions.iter().flat_map(|f| payload(f)).map(|b| b.len() as u64).sum();
    let frames: usize = sessions.iter().map(Vec::len).sum();
    println!(
        "workload: {SESSIONS} sessions, {frames} frames, {:.1} MiB of payload (output + input), {:.0} bytes/frame",
        raw as f64 / 1048576.0,
        raw as f64 / frames as f64
    );
    // One recorder for every run, as a proxy has one for its lifetime, warmed up by a
    // first run that is not measured: the runs measure the recorder at work, not its
    // start (its buffers and spool files are reused from segment to segment).
    let spool = tempfile::tempdir().unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let recorder = rt.block_on(Recorder::open(storage.clone(), RecorderConfig::new(spool.path()))).unwrap();
    record(&rt, &recorder, sessions.clone(), &mut Vec::new());
    empty(&rt, &storage);
    let none = Run { wall: Duration::MAX, cpu: Duration::MAX, stored: 0, writers: Duration::ZERO, faults: 0 };
    let (mut z, mut g, mut r) = (none, none, none);
    // `GATEHOUSE_BENCH_RECORDER_ONLY=1` skips the anchors: for profiling the recorder.
    let anchors = std::env::var_os("GATEHOUSE_BENCH_RECORDER_ONLY").is_none();
    // `GATEHOUSE_BENCH_RUNS=N` measures N runs instead of 3: a profile then sees the
    // recorder at work more than its warm-up.
    let runs: usize = std::env::var("GATEHOUSE_BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    for _ in 0..runs {
        if anchors {
            z = z.best(measure(|| zstd_alone(&sessions)));
            g = g.best(measure(|| gzip_asciicast(&sessions, cols, rows)));
        }
        // The writers take their frames by value, as the proxy hands over its buffers;
        // the copies are made before the clock starts.
        let input = sessions.clone();
        let mut spent = Vec::new();
        r = r.best(measure(|| record(&rt, &recorder, input, &mut spent)));
        drop(spent);
        empty(&rt, &storage);
    }
    assert!(rt.block_on(recorder.shutdown()));
    let mbs = |d: Duration| raw as f64 / d.as_secs_f64() / 1e6;
    let line = |name: &str, run: Run| {
        println!(
            "{name:<28} {:>7.1} MB/s per core ({:>5.0} ms CPU, {:>5.0} ms wall)  stored {:>9} bytes = 1/{:.1} of raw",
            mbs(run.cpu),
            run.cpu.as_secs_f64() * 1e3,
            run.wall.as_secs_f64() * 1e3,
            run.stored,
            raw as f64 / run.stored as f64
        );
    };
    line("anchor A: zstd-3 alone", z);
    line("anchor B: gzip-6 asciicast", g);
    line("recorder (spool+seal+store)", r);
    println!(
        "  of which write_frame calls (frame to columns, spool writes): {:.0} ms CPU; in all {:.0} ns per frame, {:.1} M frames/s per core",
        r.writers.as_secs_f64() * 1e3,
        r.cpu.as_secs_f64() * 1e9 / frames as f64,
        frames as f64 / r.cpu.as_secs_f64() / 1e6
    );
    println!(
        "  page faults (memory touched for the first time, zeroed by the kernel): {}, {:.1} MiB; the memory:// store held the {:.1} MiB stored until the run ended",
        r.faults,
        r.faults as f64 * 4096.0 / 1048576.0,
        r.stored as f64 / 1048576.0
    );
    println!(
        "recorder vs zstd-3 alone: speed {:.2}x, size {:.2}x;  vs gzip-6 asciicast: speed {:.2}x, size {:.2}x",
        z.cpu.as_secs_f64() / r.cpu.as_secs_f64(),
        r.stored as f64 / z.stored as f64,
        g.cpu.as_secs_f64() / r.cpu.as_secs_f64(),
        r.stored as f64 / g.stored as f64
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: ingest >= 300 MB/s per core: {:.0} MB/s, {};  stored <= 1/6 of raw: 1/{:.1}, {}",
        mbs(r.cpu),
        verdict(mbs(r.cpu) >= 300.0),
        raw as f64 / r.stored as f64,
        verdict(r.stored * 6 <= raw)
    );
}
