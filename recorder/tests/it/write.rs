//! The write path: live tap, live readability, recovery of a dead process's spool, the
//! full-spool policies and a store outage (moto behind a relay that is cut and restored).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use gatehouse_fixtures::s3::{Moto, Relay};
use gatehouse_recorder::{
    ErrorKind, Frame, FrameData, Recorder, RecorderConfig, RecordingState, SessionMeta, SpoolPolicy,
    Storage, TAP_CAPACITY,
};

use crate::common::{end, eventually, read_all};
use crate::conformance::sample_frames;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "lock" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn live_tap_delivers_and_a_slow_subscriber_skips_ahead() {
    let spool = tempfile::tempdir().unwrap();
    let recorder = Recorder::open(Storage::from_url("memory://").unwrap(), RecorderConfig::new(spool.path())).await.unwrap();
    let meta = SessionMeta { user: Some("alice".into()), ..Default::default() };
    let mut w = recorder.start(meta.clone()).await.unwrap();
    assert_eq!(recorder.tap().live(), vec![(w.id(), meta)]);
    let mut slow = recorder.tap().subscribe(w.id()).unwrap();
    let total = 2 * TAP_CAPACITY;
    for i in 0..total {
        w.write_frame(Frame::output(i as u64, format!("{i}\n"))).unwrap();
    }
    // The writer went on; the subscriber resumes at the oldest frame still held.
    let first = slow.recv().await.unwrap();
    assert_eq!(first, Frame::output((total - TAP_CAPACITY) as u64, format!("{}\n", total - TAP_CAPACITY)));
    assert_eq!(slow.skipped(), (total - TAP_CAPACITY) as u64);
    let id = w.id();
    w.update_meta(|m| m.target = Some("db1".into()));
    assert_eq!(recorder.tap().live()[0].1.target.as_deref(), Some("db1"));
    w.finish(end()).await.unwrap();
    let mut rest = 0;
    while slow.recv().await.is_some() {
        rest += 1;
    }
    assert_eq!(rest, TAP_CAPACITY - 1, "every held frame, then the end");
    assert!(recorder.tap().live().is_empty());
    assert!(recorder.tap().subscribe(id).is_none());
}

#[tokio::test]
async fn a_live_session_is_readable_from_storage_within_seconds() {
    let spool = tempfile::tempdir().unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let config = RecorderConfig::new(spool.path()).with_seal(1 << 20, Duration::from_millis(500));
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    w.write(FrameData::Output("hello\r\n".into())).unwrap();
    w.update_meta(|m| m.user = Some("bob".into()));
    let id = w.id();
    let landed = eventually(5, async || storage.manifest(id).await.is_ok_and(|m| m.segments.len() == 1)).await;
    assert!(landed, "the first segment did not reach the store within 5 s");
    let m = storage.manifest(id).await.unwrap();
    assert_eq!(m.state, RecordingState::Live);
    assert_eq!(m.meta.user.as_deref(), Some("bob"));
    let frames = read_all(&storage, id).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, FrameData::Output("hello\r\n".into()));
    let m = w.finish(end()).await.unwrap();
    assert_eq!(m.state, RecordingState::Complete);
    assert_eq!(storage.manifest(id).await.unwrap(), m);
}

#[tokio::test]
async fn a_dead_process_spool_is_recovered_as_interrupted() {
    let (spool, spool2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let storage = Storage::from_url("memory://").unwrap();
    let config = RecorderConfig::new(spool.path()).with_seal(2048, Duration::from_secs(60));
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    let mut w = recorder.start(SessionMeta { user: Some("carol".into()), ..Default::default() }).await.unwrap();
    let frames = sample_frames();
    for f in &frames {
        w.write_frame(f.clone()).unwrap();
    }
    let id = w.id();
    // Frames reach the spool file within the flush interval (200 ms), and the sealed
    // segments the store (listed in its manifest within a second); then "kill" the
    // process: take a copy of its spool as it is, and never finish the writer.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(recorder.shutdown().await, "the sealed segments are in the store");
    copy_dir(&spool.path().join(id.to_string()), &spool2.path().join(id.to_string()));
    let uploaded_before = storage.manifest(id).await.unwrap().segments.len();
    assert!(uploaded_before > 0, "some segments were already in the store");
    // A torn last frame, as a kill in the middle of a write leaves it.
    let wal = std::fs::read_dir(spool2.path().join(id.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("the open segment's WAL file");
    std::fs::OpenOptions::new().append(true).open(&wal).unwrap().write_all(&[0, 0x85, 0x01, 0x7f, b'a']).unwrap();
    std::mem::forget(w);

    let recovered = Recorder::open(storage.clone(), RecorderConfig::new(spool2.path())).await.unwrap();
    assert!(recovered.shutdown().await);
    let m = storage.manifest(id).await.unwrap();
    assert_eq!(m.state, RecordingState::Interrupted);
    assert!(m.end_reason.as_deref().unwrap().contains("interrupted"), "{:?}", m.end_reason);
    assert_eq!(m.meta.user.as_deref(), Some("carol"));
    assert_eq!(m.frames, frames.len() as u64);
    assert_eq!(read_all(&storage, id).await, frames);
    assert!(storage.verify(id).await.unwrap().ok(), "the chain continues across the recovery");
    let left: Vec<_> = std::fs::read_dir(spool2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".free") // emptied files kept for reuse
        .collect();
    assert!(left.is_empty(), "the spool holds no session afterwards: {left:?}");
}

/// moto with a bucket, behind a relay; the relay's storage URL.
fn s3() -> (Moto, Relay, Storage) {
    let moto = Moto::start().expect("these tests need moto");
    moto.create_bucket("rec").unwrap();
    let relay = Relay::start(moto.addr()).unwrap();
    let storage = Storage::from_url(&Moto::url(&relay.endpoint(), "rec", "")).unwrap();
    (moto, relay, storage)
}

fn chunk(i: usize) -> FrameData {
    // Pseudo-random bytes (xorshift): incompressible, so sealing never shrinks what the
    // spool holds and it fills by bytes, not by how well zstd does.
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let text: Vec<u8> = (0..512)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    FrameData::Output(text.into())
}

#[tokio::test]
async fn fail_closed_stops_recording_and_refuses_sessions_while_the_spool_is_full() {
    let (_moto, relay, storage) = s3();
    let spool = tempfile::tempdir().unwrap();
    let config = RecorderConfig::new(spool.path())
        .with_seal(4096, Duration::from_secs(60))
        .with_spool_limit(64 << 10)
        .with_policy(SpoolPolicy::FailClosed);
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    relay.cut();
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    let mut written = Vec::new();
    let err = loop {
        let t = written.len() as u64 * 1000;
        match w.write_frame(Frame { t, data: chunk(written.len()) }) {
            Ok(()) => written.push(Frame { t, data: chunk(written.len()) }),
            Err(e) => break e,
        }
        assert!(written.len() < 1000, "the spool limit never hit");
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("fail-closed"), "{err}");
    assert!(written.len() >= 64, "{} frames fitted in a 64 KiB spool", written.len());
    let refused = recorder.start(SessionMeta::default()).await.err().expect("a new session is refused");
    assert_eq!(refused.kind(), ErrorKind::Unavailable);
    assert!(w.write(FrameData::Output("more".into())).is_err(), "the session stays stopped");

    relay.restore().unwrap();
    let id = w.id();
    let m = w.finish(end()).await.unwrap();
    assert_eq!(m.state, RecordingState::Failed);
    assert!(m.losses.iter().any(|l| l.contains("fail-closed")), "{:?}", m.losses);
    assert_eq!(read_all(&storage, id).await, written, "everything accepted before the refusal is stored");
    assert!(recorder.start(SessionMeta::default()).await.is_ok(), "sessions start again once the spool drained");
}

#[tokio::test]
async fn best_effort_keeps_the_session_and_records_the_loss() {
    let (_moto, relay, storage) = s3();
    let spool = tempfile::tempdir().unwrap();
    let config = RecorderConfig::new(spool.path())
        .with_seal(4096, Duration::from_secs(60))
        .with_spool_limit(64 << 10)
        .with_policy(SpoolPolicy::BestEffort);
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    relay.cut();
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    for i in 0..300 {
        w.write_frame(Frame { t: i * 1000, data: chunk(i as usize) }).unwrap();
    }
    relay.restore().unwrap();
    assert!(eventually(20, async || recorder.spool_used() < 16 << 10).await, "spool drained");
    w.write_frame(Frame::output(400_000, "after")).unwrap();
    let id = w.id();
    let m = w.finish(end()).await.unwrap();
    assert_eq!(m.state, RecordingState::Complete);
    let frames = read_all(&storage, id).await;
    // Sealing compresses, so room comes and goes: there may be several gaps.
    let losses: Vec<_> = frames
        .iter()
        .filter_map(|f| match &f.data {
            FrameData::Event(e) if e.kind == "recording.loss" => Some(e.data.clone()),
            _ => None,
        })
        .collect();
    assert!(!losses.is_empty(), "a recording.loss event");
    assert_eq!(m.losses.len(), losses.len(), "{:?}", m.losses);
    let lost: u64 = losses.iter().map(|l| l["frames"].as_u64().unwrap()).sum();
    let kept = frames.iter().filter(|f| matches!(f.data, FrameData::Output(_))).count() as u64;
    assert!(lost > 100, "most of 300 frames x 512 bytes cannot fit a 64 KiB spool: {lost} lost");
    assert_eq!(kept + lost, 301, "every frame is either stored or counted lost");
    assert_eq!(frames.last().unwrap(), &Frame::output(400_000, "after"));
}

#[tokio::test]
async fn a_store_outage_mid_session_loses_nothing() {
    let (_moto, relay, storage) = s3();
    let spool = tempfile::tempdir().unwrap();
    let config = RecorderConfig::new(spool.path()).with_seal(4096, Duration::from_millis(300));
    let recorder = Recorder::open(storage.clone(), config).await.unwrap();
    let mut w = recorder.start(SessionMeta::default()).await.unwrap();
    let id = w.id();
    let mut frames = Vec::new();
    let mut write = |w: &mut gatehouse_recorder::SessionWriter, n: usize| {
        for _ in 0..n {
            let f = Frame { t: frames.len() as u64 * 500, data: chunk(frames.len()) };
            w.write_frame(f.clone()).unwrap();
            frames.push(f);
        }
    };
    write(&mut w, 40);
    assert!(eventually(10, async || storage.manifest(id).await.is_ok_and(|m| !m.segments.is_empty())).await);
    relay.cut();
    write(&mut w, 60);
    tokio::time::sleep(Duration::from_millis(800)).await; // segments seal and fail to upload
    assert!(storage.manifest(id).await.is_err(), "the store is unreachable");
    relay.restore().unwrap();
    write(&mut w, 20);
    let m = w.finish(end()).await.unwrap();
    assert_eq!(m.state, RecordingState::Complete);
    assert_eq!(m.frames, frames.len() as u64);
    assert_eq!(read_all(&storage, id).await, frames);
    assert!(storage.verify(id).await.unwrap().ok());
}

/// `frames` with an event after every 1,000th, at the same time.
fn with_events(frames: Vec<Frame>) -> Vec<Frame> {
    let mut out = Vec::with_capacity(frames.len() + frames.len() / 1000);
    for (i, f) in frames.into_iter().enumerate() {
        let t = f.t;
        out.push(f);
        if i % 1000 == 999 {
            out.push(Frame::event(t, "test.mark", serde_json::json!({ "frame": i })));
        }
    }
    out
}

/// Sessions streaming past the memory budget spill: their open segments keep only the
/// unflushed frames, and the sealers read them back from the spool. With a budget below
/// one flush every segment spills; with one of a few segments some do and some do not.
/// Either way every frame is stored, in order, and the hash chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_streaming_past_the_memory_budget_lose_nothing() {
    let sessions: Vec<Vec<Frame>> =
        (0..3).map(|seed| with_events(gatehouse_fixtures::terminal::realistic_session(seed + 1, 3 << 20).frames)).collect();
    for budget in [16 << 10, 2 << 20] {
        let spool = tempfile::tempdir().unwrap();
        let storage = Storage::from_url("memory://").unwrap();
        let config =
            RecorderConfig::new(spool.path()).with_seal(256 << 10, Duration::from_secs(60)).with_memory_limit(budget);
        let recorder = Recorder::open(storage.clone(), config).await.unwrap();
        let mut writers = Vec::new();
        for _ in &sessions {
            writers.push(recorder.start(SessionMeta::default()).await.unwrap());
        }
        // Written at once from threads of their own, as the proxy's sessions are.
        let writers: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = writers
                .into_iter()
                .zip(&sessions)
                .map(|(mut w, frames)| {
                    s.spawn(move || {
                        for f in frames {
                            w.write_frame(f.clone()).unwrap();
                        }
                        w
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (w, frames) in writers.into_iter().zip(&sessions) {
            let id = w.id();
            let m = w.finish(end()).await.unwrap();
            assert_eq!(m.state, RecordingState::Complete, "budget {budget}");
            assert!(m.segments.len() >= 10, "budget {budget}: {} segments", m.segments.len());
            assert_eq!(m.frames, frames.len() as u64, "budget {budget}");
            assert!(read_all(&storage, id).await == *frames, "budget {budget}: the frames read back differ");
            let report = storage.verify(id).await.unwrap();
            assert!(report.ok(), "budget {budget}: {:?}", report.problems);
        }
        assert!(recorder.shutdown().await);
    }
}

/// More sessions seal at once than the spool keeps write-ahead files mapped (a proxy full
/// of quiet sessions sealing on age): the sealers map the others themselves, and every
/// frame of every session is stored and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_segments_sealing_at_once_than_files_kept_mapped_lose_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let recorder = Recorder::open(storage.clone(), RecorderConfig::new(spool.path())).await.unwrap();
    let sessions: Vec<Vec<Frame>> = (0..100).map(|seed| gatehouse_fixtures::terminal::realistic_session(seed + 1, 16 << 10).frames).collect();
    let mut writers = Vec::new();
    for frames in &sessions {
        let mut w = recorder.start(SessionMeta::default()).await.unwrap();
        for f in frames {
            w.write_frame(f.clone()).unwrap();
        }
        writers.push(w);
    }
    // All finish at once: 100 segments to seal, queued before the sealers get to them.
    let finishing: Vec<_> = writers.into_iter().map(|w| tokio::spawn(async move { (w.id(), w.finish(end()).await.unwrap()) })).collect();
    for (task, frames) in finishing.into_iter().zip(&sessions) {
        let (id, m) = task.await.unwrap();
        assert_eq!(m.state, RecordingState::Complete);
        assert_eq!(m.frames, frames.len() as u64);
        assert!(read_all(&storage, id).await == *frames, "session {id}: the frames read back differ");
        let report = storage.verify(id).await.unwrap();
        assert!(report.ok(), "session {id}: {:?}", report.problems);
    }
    assert!(recorder.shutdown().await);
}
