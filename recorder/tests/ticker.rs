//! The spool's ticker thread, watched through `/proc`: it wakes when a flush or seal is
//! due, not on a fixed period. A binary of its own: a ticker is found as the thread that
//! was not there before its recorder opened, which other tests opening recorders in the
//! same process would confuse (`cargo nextest` runs every test alone anyway; `cargo test`
//! does not).

#[path = "it/common.rs"]
mod common;

use std::time::Duration;

use gatehouse_recorder::{FrameData, Recorder, RecorderConfig, SessionMeta, Storage};

use common::{end, eventually, read_all};

/// Threads of this process named `gatehouse-spool-ticker` (the name is cut to 15 bytes),
/// by thread id, with their voluntary context switches (each sleep and wake-up is one).
fn tickers() -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(status)) = (std::fs::read_to_string(dir.join("comm")), std::fs::read_to_string(dir.join("status")))
        else {
            continue;
        };
        if comm.trim() != "gatehouse-spool" {
            continue;
        }
        let switches = status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).unwrap().trim().parse().unwrap();
        out.insert(dir.file_name().unwrap().to_str().unwrap().parse().unwrap(), switches);
    }
    out
}

/// Tests that watch a ticker thread run one at a time: a ticker is found as the one
/// thread that was not there before its recorder opened (see `recorder_with_ticker`).
static ONE_TICKER_TEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A recorder on a fresh spool and a `memory://` store, sealing segments at 1 MiB or
/// `seal_age`, and the thread id of its ticker; the guard keeps other ticker tests waiting
/// until it is dropped. A thread names itself once it runs, which may be a moment after
/// it was spawned.
async fn recorder_with_ticker(
    seal_age: Duration,
) -> (tokio::sync::MutexGuard<'static, ()>, tempfile::TempDir, Storage, Recorder, u32) {
    let one_at_a_time = ONE_TICKER_TEST.lock().await;
    let spool = tempfile::tempdir().unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let before = tickers();
    let config = RecorderConfig::new(spool.path()).with_seal(1 << 20, seal_age);
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    let mut tid = None;
    assert!(
        eventually(2, async || {
            tid = tickers().into_keys().find(|t| !before.contains_key(t));
            tid.is_some()
        })
        .await,
        "the recorder's ticker thread"
    );
    (one_at_a_time, spool, storage, recorder, tid.unwrap())
}

/// Voluntary context switches of ticker `tid` during `d`.
async fn wakeups(tid: u32, d: Duration) -> u64 {
    let before = tickers()[&tid];
    tokio::time::sleep(d).await;
    tickers()[&tid] - before
}

/// While someone types (a frame every 20 ms), the ticker wakes about once per flush
/// interval (200 ms), not on a fixed short period, and every frame still lands.
#[tokio::test]
async fn a_typed_session_wakes_the_ticker_about_once_per_flush_interval() {
    let (_one_at_a_time, _spool, storage, recorder, tid) = recorder_with_ticker(Duration::from_secs(60)).await;
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    let id = w.id();
    w.write(FrameData::Output("$ ".into())).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = tickers()[&tid];
    for i in 0..100u32 {
        w.write(FrameData::Input(vec![b'a' + (i % 26) as u8].into())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let woke = tickers()[&tid] - start;
    // Two seconds of typing at one flush per 200 ms: about 10 passes (a 50 ms period
    // made 40). Sleeps overshoot on a loaded machine, which only lowers the count.
    assert!((2..=16).contains(&woke), "the ticker woke {woke} times in two seconds of typing");
    w.finish(end()).await.unwrap();
    assert_eq!(read_all(&storage, id).await.len(), 101);
    drop(recorder);
}

/// With no session holding frames the ticker sleeps (an idle proxy makes no wake-ups);
/// a session's first frame wakes it, so the segment is still flushed and sealed for its
/// age; once that segment is sealed it sleeps again.
#[tokio::test]
async fn the_ticker_sleeps_while_nothing_is_pending_and_wakes_for_a_frame() {
    let (_one_at_a_time, _spool, storage, recorder, tid) = recorder_with_ticker(Duration::from_millis(400)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = wakeups(tid, Duration::from_secs(1)).await;
    assert!(idle <= 1, "an idle ticker woke {idle} times in a second");
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    let id = w.id();
    let busy = {
        w.write(FrameData::Output("after a quiet while\r\n".into())).unwrap();
        wakeups(tid, Duration::from_millis(300)).await
    };
    assert!(busy >= 1, "the ticker did not wake for a frame to flush");
    // Neither `finish` nor a full segment: only the ticker seals this one, for its age.
    let landed = eventually(5, async || storage.manifest(id).await.is_ok_and(|m| m.segments.len() == 1)).await;
    assert!(landed, "the segment was not sealed for its age within 5 s");
    assert_eq!(read_all(&storage, id).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = wakeups(tid, Duration::from_secs(1)).await;
    assert!(again <= 1, "the ticker woke {again} times in a second after the segment was sealed");
    w.finish(end()).await.unwrap();
    drop(recorder);
}
