//! One conformance suite over `Arc<dyn ObjectStore>`, run against memory, local disk and
//! a real S3 server (moto): record, list, read from a time, verify, then damage segments
//! (flip a byte, truncate, delete) and check each is named while the rest still reads.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gatehouse_fixtures::s3::Moto;
use gatehouse_recorder::{
    ErrorKind, Frame, FrameData, Manifest, Recorder, RecorderConfig, RecordingState, SessionEnd, SessionFilter,
    SessionMeta, Storage,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// A session's worth of frames of every kind, ~40 KiB, so 4 KiB segments make several.
pub fn sample_frames() -> Vec<Frame> {
    let mut frames = vec![Frame::resize(0, 100, 30)];
    let mut t = 1_000;
    for i in 0..400u64 {
        t += 997 * (i % 7) + 13;
        let data = match i % 10 {
            0 => FrameData::Input(format!("ls -la /var/log/{i}\r").into_bytes().into()),
            5 => FrameData::Marker(format!("step {i}")),
            9 => FrameData::Event(gatehouse_recorder::Event {
                kind: "file.write".into(),
                data: serde_json::json!({ "path": format!("/tmp/{i}"), "bytes": i }),
            }),
            _ => FrameData::Output(
                format!("\x1b[01;34mdir{i}\x1b[0m  файл{i}.txt  日本語{i}  \x1b[32mok\x1b[0m\r\n").into_bytes().into(),
            ),
        };
        frames.push(Frame { t, data });
    }
    frames
}

pub fn config(spool: &std::path::Path) -> RecorderConfig {
    RecorderConfig::new(spool).with_seal(4096, Duration::from_secs(60)).with_drain_timeout(Duration::from_secs(60))
}

/// Records `frames` as one session with `meta` and returns its final manifest.
pub async fn record(storage: &Storage, spool: &std::path::Path, meta: SessionMeta, frames: &[Frame]) -> Manifest {
    let recorder = Recorder::open(storage.clone(), config(spool)).await.unwrap();
    let mut w = recorder.start(meta).await.unwrap();
    for f in frames {
        w.write_frame(f.clone()).unwrap();
    }
    let m = w.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap();
    assert!(recorder.shutdown().await);
    m
}

async fn read_all(storage: &Storage, m: &Manifest, from: u64) -> (Vec<Frame>, Vec<gatehouse_recorder::Error>) {
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    let mut stream = std::pin::pin!(storage.frames(m, from));
    while let Some(item) = stream.next().await {
        match item {
            Ok(f) => frames.push(f),
            Err(e) => errors.push(e),
        }
    }
    (frames, errors)
}

fn meta(user: &str, target: &str) -> SessionMeta {
    SessionMeta { user: Some(user.into()), target: Some(target.into()), cols: Some(100), rows: Some(30), ..Default::default() }
}

async fn suite(store: Arc<dyn ObjectStore>) {
    let storage = Storage::from_object_store(store.clone());
    let spool = tempfile::tempdir().unwrap();
    let frames = sample_frames();

    // Record two sessions; read them back whole and from a time.
    let m = record(&storage, spool.path(), meta("alice", "db1"), &frames).await;
    let other = record(&storage, spool.path(), SessionMeta { account: Some("postgres".into()), ..meta("bob", "web1") }, &frames[..10]).await;
    assert_eq!(m.state, RecordingState::Complete);
    assert_eq!(m.frames, frames.len() as u64);
    assert!(m.segments.len() >= 5, "4 KiB segments: {} of them", m.segments.len());
    assert_eq!(m.chain_head.as_ref(), Some(&m.segments.last().unwrap().hash));
    assert_eq!(m.exit_status, Some(0));
    assert_eq!(m.duration, frames.last().unwrap().t);
    let out: u64 = frames.iter().map(|f| if let FrameData::Output(b) = &f.data { b.len() as u64 } else { 0 }).sum();
    assert_eq!(m.bytes_out, out);
    assert_eq!(storage.manifest(m.id).await.unwrap(), m);
    let (all, errors) = read_all(&storage, &m, 0).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(all, frames);
    let from = frames[200].t;
    let (tail, _) = read_all(&storage, &m, from).await;
    assert_eq!(tail, frames.iter().filter(|f| f.t >= from).cloned().collect::<Vec<_>>());

    // Listing and filters.
    let listed = storage.list_sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), vec![m.id, other.id]);
    let by_user = SessionFilter { user: Some("bob".into()), ..Default::default() };
    assert_eq!(storage.list_sessions(&by_user).await.unwrap(), vec![other.clone()]);
    let by_target = SessionFilter { target: Some("db1".into()), ..Default::default() };
    assert_eq!(storage.list_sessions(&by_target).await.unwrap().len(), 1);
    let by_account = SessionFilter { account: Some("postgres".into()), ..Default::default() };
    assert_eq!(storage.list_sessions(&by_account).await.unwrap(), vec![other.clone()]);
    let complete = SessionFilter { state: Some(RecordingState::Complete), ..Default::default() };
    assert_eq!(storage.list_sessions(&complete).await.unwrap().len(), 2);
    let interrupted = SessionFilter { state: Some(RecordingState::Interrupted), user: Some("bob".into()), ..Default::default() };
    assert!(storage.list_sessions(&interrupted).await.unwrap().is_empty());
    let later = SessionFilter { since: Some(other.started_at), ..Default::default() };
    assert_eq!(storage.list_sessions(&later).await.unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), vec![other.id]);
    let earlier = SessionFilter { until: Some(other.started_at), ..Default::default() };
    assert_eq!(storage.list_sessions(&earlier).await.unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), vec![m.id]);
    assert_eq!(storage.resolve(&m.id.to_string()[..30]).await.unwrap(), m.id);
    assert_eq!(storage.resolve("ffff").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(storage.verify(m.id).await.unwrap().ok());

    // Damage three segments, one way each.
    let seg = |seq: u64| -> Path {
        let day = m.started_at.date();
        Path::from(format!("sessions/{:04}/{:02}/{:02}/{}/{seq:08}.seg", day.year(), u8::from(day.month()), day.day(), m.id))
    };
    let mut flipped = store.get(&seg(1)).await.unwrap().bytes().await.unwrap().to_vec();
    flipped[150] ^= 0x01;
    store.put(&seg(1), PutPayload::from(flipped)).await.unwrap();
    let whole = store.get(&seg(2)).await.unwrap().bytes().await.unwrap();
    store.put(&seg(2), PutPayload::from(whole.slice(..whole.len() - 10))).await.unwrap();
    store.delete(&seg(3)).await.unwrap();

    let (survivors, errors) = read_all(&storage, &m, 0).await;
    let damaged: Vec<u64> = vec![1, 2, 3];
    let expected: Vec<Frame> = m
        .segments
        .iter()
        .filter(|s| !damaged.contains(&s.seq))
        .flat_map(|s| frames.iter().filter(move |f| f.t >= s.first_t && f.t <= s.last_t).cloned())
        .collect();
    // Frames at a segment boundary with equal times could belong to either side; the
    // sample's times are strictly increasing, so this selection is exact.
    assert_eq!(survivors, expected);
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (e, seq) in errors.iter().zip(&damaged) {
        assert!(e.to_string().contains(seg(*seq).as_ref()), "error does not name {}: {e}", seg(*seq));
    }
    assert_eq!(errors[0].kind(), ErrorKind::Corrupt);
    assert_eq!(errors[1].kind(), ErrorKind::Corrupt);
    assert_eq!(errors[2].kind(), ErrorKind::NotFound);

    let report = storage.verify(m.id).await.unwrap();
    assert!(!report.ok());
    assert_eq!(report.problems.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![Some(1), Some(2), Some(3)]);
    assert_eq!(report.frames as usize, survivors.len());
    // The other session is untouched.
    assert!(storage.verify(other.id).await.unwrap().ok());
}

#[tokio::test]
async fn memory() {
    suite(Arc::new(object_store::memory::InMemory::new())).await;
}

#[tokio::test]
async fn local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    suite(Storage::from_url(&url).unwrap().object_store()).await;
}

#[tokio::test]
async fn s3_moto() {
    let moto = Moto::start().expect("the S3 conformance run needs moto");
    moto.create_bucket("recordings").unwrap();
    let storage = Storage::from_url(&Moto::url(&moto.endpoint(), "recordings", "team/a")).unwrap();
    suite(storage.object_store()).await;
}
