use gatehouse_fixtures::terminal::realistic_session;
use gatehouse_indexer::tables::EventRow;
use gatehouse_indexer::{ErrorKind, load_keyframes, reindex, replay_to, screen_at};
use gatehouse_query::{Filters, SearchRequest, Searcher};
use gatehouse_recorder::Frame;
use time::macros::datetime;

use crate::common::{Env, files_under, meta};

fn count(searcher: &Searcher, kind: &str) -> usize {
    let r = SearchRequest { filters: Filters { kind: Some(kind.into()), ..Filters::default() }, ..SearchRequest::default() };
    searcher.count(&r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_twice_gives_the_same_index_tables_and_keyframes() {
    let env = Env::new().await;
    let w1 = realistic_session(31, 1_200_000);
    let w2 = realistic_session(32, 100_000);
    let m1 = env.record(meta("alice", "web-01", &w1), datetime!(2026-11-01 09:00 UTC), &w1.frames).await;
    env.record(meta("bob", "db-primary", &w2), datetime!(2026-11-02 10:00 UTC), &w2.frames).await;
    let mut auth = EventRow::control_plane(datetime!(2026-11-02 08:00 UTC), "auth");
    auth.user = Some("mallory".into());
    auth.outcome = Some("failure".into());

    let first = reindex(&env.storage, &env.index_dir(), vec![auth.clone()], &()).await.unwrap();
    assert_eq!(first.sessions, 2);
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    let searcher = Searcher::open(&env.index_dir()).unwrap();
    let typed = w1.commands.len() + w2.commands.len();
    assert_eq!(count(&searcher, "command"), typed, "every typed command indexed once");
    let lines = count(&searcher, "screen");
    assert_eq!(lines as u64, first.lines);
    let files = files_under(&env.store_dir().join("tables"));
    assert_eq!(first.tables.sessions, 2);
    assert_eq!(first.tables.commands, first.commands);
    assert!(files.iter().any(|f| f.starts_with("commands/date=2026-11-01/part-00000.parquet")), "{files:?}");
    let keyframes = files_under(&env.store_dir().join("keyframes"));
    assert_eq!(keyframes.len(), 2, "{keyframes:?}");

    // A part left from live indexing (older than the run) is folded in, not duplicated.
    let stale = env.store_dir().join("tables/commands/date=2026-11-01/s-leftover.parquet");
    std::fs::copy(env.store_dir().join("tables/commands/date=2026-11-01/part-00000.parquet"), &stale).unwrap();

    let second = reindex(&env.storage, &env.index_dir(), vec![auth], &()).await.unwrap();
    assert_eq!(second.tables.parts_removed, 1);
    assert!(!stale.exists());
    assert_eq!(files_under(&env.store_dir().join("tables")), files);
    assert_eq!(files_under(&env.store_dir().join("keyframes")), keyframes);
    assert_eq!((second.commands, second.lines, second.keyframes), (first.commands, first.lines, first.keyframes));
    let searcher = Searcher::open(&env.index_dir()).unwrap();
    assert_eq!(count(&searcher, "command"), typed, "no duplicates after a second run");
    assert_eq!(count(&searcher, "screen"), lines);

    // Seeking through the stored keyframes gives the screen a full replay gives.
    let kf = load_keyframes(&env.storage.object_store(), &m1).await.unwrap();
    assert!(kf.len() >= 2, "{} keyframes", kf.len());
    let end = w1.frames.last().unwrap().t;
    for t in [0, end / 7, end / 3, end / 2, kf[1].t, end * 4 / 5, end] {
        let fast = screen_at(&env.storage, &m1, &kf, t).await.unwrap();
        let slow = replay_to(&env.storage, &m1, t).await.unwrap();
        assert_eq!(fast.screen().state_formatted(), slow.screen().state_formatted(), "t={t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_segment_is_reported_and_everything_else_is_indexed() {
    let env = Env::with_seal(8 * 1024).await;
    let w = realistic_session(41, 80_000);
    let m = env.record(meta("carol", "cache-3", &w), datetime!(2026-11-03 12:00 UTC), &w.frames).await;
    assert!(m.segments.len() >= 4, "{} segments", m.segments.len());
    let segs: Vec<String> = files_under(&env.store_dir()).into_iter().filter(|f| f.ends_with(".seg")).collect();
    let victim = env.store_dir().join(&segs[1]);
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();

    let report = reindex(&env.storage, &env.index_dir(), Vec::new(), &()).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("00000001.seg"), "{:?}", report.problems);
    assert!(report.problems[0].contains(&m.id.to_string()));
    let searcher = Searcher::open(&env.index_dir()).unwrap();
    // Commands typed after the damaged segment are still found.
    let last = w.commands.last().unwrap();
    let r = SearchRequest { query: Some(last.clone()), literal_substring: true, limit: 10, ..SearchRequest::default() };
    assert!(!searcher.search(&r).unwrap().is_empty(), "{last} not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_inside_recordings_reach_the_tables() {
    let env = Env::new().await;
    let w = realistic_session(51, 20_000);
    let mut frames = w.frames.clone();
    let t = frames.last().unwrap().t;
    frames.push(Frame::event(t, "file.write", serde_json::json!({"path": "/etc/hosts", "bytes": 120, "outcome": "allowed"})));
    env.record(meta("dave", "web-01", &w), datetime!(2026-11-04 12:00 UTC), &frames).await;
    let report = reindex(&env.storage, &env.index_dir(), Vec::new(), &()).await.unwrap();
    assert_eq!(report.events, 1);
    assert_eq!(report.tables.events, 1);
    // The index belongs to this run: a second writer is refused with a clear error.
    let index = gatehouse_indexer::index::SearchIndex::open(&env.index_dir()).unwrap();
    let _held = index.sink(1, 15 << 20).unwrap();
    let err = reindex(&env.storage, &env.index_dir(), Vec::new(), &()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("another gatehouse process"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_into_an_s3_store() {
    use futures::TryStreamExt as _;
    use gatehouse_fixtures::s3::Moto;
    use gatehouse_recorder::{Recorder, RecorderConfig, SessionEnd, Storage};

    let moto = Moto::start().expect("this test needs moto");
    moto.create_bucket("rec").unwrap();
    let storage = Storage::from_url(&Moto::url(&moto.endpoint(), "rec", "site/a")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let recorder = Recorder::open(storage.clone(), RecorderConfig::new(tmp.path().join("spool"))).await.unwrap();
    let w = realistic_session(71, 1_100_000);
    let mut writer = recorder.start_at(meta("erin", "web-01", &w), datetime!(2026-11-05 08:00 UTC)).await.unwrap();
    for f in &w.frames {
        writer.write_frame(f.clone()).unwrap();
    }
    let m = writer.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap();
    recorder.shutdown().await;

    let store = storage.object_store();
    let listing = || async {
        let mut names: Vec<String> = store
            .list(Some(&object_store::path::Path::from("tables")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        names.sort();
        names
    };
    let index_dir = tmp.path().join("index");
    let first = reindex(&storage, &index_dir, Vec::new(), &()).await.unwrap();
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert_eq!(first.commands as usize, w.commands.len());
    let tables = listing().await;
    assert!(tables.iter().any(|p| p.starts_with("tables/commands/date=2026-11-05/part-00000.parquet")), "{tables:?}");
    let second = reindex(&storage, &index_dir, Vec::new(), &()).await.unwrap();
    assert_eq!(second.tables.parts_removed, 0);
    assert_eq!(listing().await, tables);

    let kf = load_keyframes(&store, &m).await.unwrap();
    assert!(!kf.is_empty());
    let t = kf[0].t + 1;
    let fast = screen_at(&storage, &m, &kf, t).await.unwrap();
    let slow = replay_to(&storage, &m, t).await.unwrap();
    assert_eq!(fast.screen().state_formatted(), slow.screen().state_formatted());
}
