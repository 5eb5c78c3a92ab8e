//! Live indexing: a command is searchable within 2 s of Enter, and the finished session is
//! re-indexed from storage without duplicates.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_indexer::index::SearchIndex;
use gatehouse_indexer::{ErrorKind, LiveIndexer, reindex};
use gatehouse_query::{Filters, SearchRequest, Searcher};
use gatehouse_recorder::{FrameData, SessionEnd, SessionMeta};

use crate::common::{Env, files_under};

const PROMPT: &str = "\x1b[?2004h\x1b[01;32mops@web-01\x1b[00m:\x1b[01;34m~\x1b[00m$ ";

fn find(searcher: &Searcher, command: &str) -> usize {
    searcher.reload().unwrap();
    let r = SearchRequest {
        query: Some(format!("\"{command}\"")),
        filters: Filters { kind: Some("shell".into()), ..Filters::default() },
        limit: 10,
        ..SearchRequest::default()
    };
    searcher.search(&r).unwrap().iter().filter(|h| h.text == command).count()
}

/// A recorder with a live indexer on it, and a searcher of that index.
async fn live_env() -> (Env, LiveIndexer, Searcher) {
    let env = Env::new().await;
    let index = SearchIndex::open_or_create(&env.index_dir()).unwrap();
    let live = LiveIndexer::spawn(&env.recorder, env.storage.clone(), &index).unwrap();
    let searcher = Searcher::new(index).unwrap();
    (env, live, searcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_searchable_within_two_seconds_of_enter() {
    let (env, live, searcher) = live_env().await;
    // serve holds the index: an offline rebuild is refused, clearly.
    let err = reindex(&env.storage, &env.index_dir(), Vec::new(), &()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    let meta = SessionMeta { user: Some("ops".into()), target: Some("web-01".into()), cols: Some(80), rows: Some(24), ..SessionMeta::default() };
    let mut w = env.recorder.start(meta).await.unwrap();
    let id = w.id();
    let out = |w: &mut gatehouse_recorder::SessionWriter, s: &str| w.write(FrameData::Output(Bytes::copy_from_slice(s.as_bytes()))).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // the shell starting
    out(&mut w, PROMPT);
    let mut latencies = Vec::new();
    // The first command runs long (its prompt comes only after it was found), the second
    // returns at once.
    for (command, long) in [("sleep 30 # live-marker-123", true), ("systemctl status nginx", false)] {
        for c in command.chars() {
            w.write(FrameData::Input(Bytes::from(c.to_string()))).unwrap();
            out(&mut w, &c.to_string());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        w.write(FrameData::Input(Bytes::from_static(b"\r"))).unwrap();
        let enter = Instant::now();
        out(&mut w, "\r\n\x1b[?2004l\r");
        if !long {
            out(&mut w, "some output\r\n");
            out(&mut w, PROMPT);
        }
        loop {
            if find(&searcher, command) == 1 {
                latencies.push(enter.elapsed());
                break;
            }
            assert!(enter.elapsed() < Duration::from_secs(2), "{command} not searchable 2 s after Enter");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if long {
            out(&mut w, PROMPT);
        }
    }
    eprintln!("searchable after Enter: {latencies:?}");

    // The session ends: its documents are replaced from storage, its keyframes and table
    // parts written; still exactly one hit per command.
    w.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap();
    let part = format!("s-{id}.parquet");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files_under(&env.store_dir().join("tables")).iter().any(|f| f.ends_with(&part)) {
        assert!(Instant::now() < deadline, "final pass did not write {part}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(files_under(&env.store_dir().join("keyframes")).iter().any(|f| f.contains(&id.to_string())));
    tokio::time::sleep(Duration::from_millis(1200)).await; // a commit beat after the final pass
    assert_eq!(find(&searcher, "sleep 30 # live-marker-123"), 1);
    assert_eq!(find(&searcher, "systemctl status nginx"), 1);
    live.shutdown().await;
}

/// Sessions that end before the live indexer could have listed them (a quick `ssh host
/// CMD`) are still indexed: it learns of every start as it happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_end_at_once_are_indexed_too() {
    let (env, live, searcher) = live_env().await;
    tokio::time::sleep(Duration::from_millis(100)).await; // the indexer running
    let commands: Vec<String> = (0..20).map(|i| format!("echo quick-exec-{i}")).collect();
    for command in &commands {
        let meta = SessionMeta { user: Some("ops".into()), command: Some(command.clone()), ..SessionMeta::default() };
        let mut w = env.recorder.start(meta).await.unwrap();
        let exec = gatehouse_recorder::Event { kind: "exec".into(), data: serde_json::json!({ "command": command }) };
        w.write(FrameData::Event(exec)).unwrap();
        w.write(FrameData::Output(Bytes::from(command.replace("echo ", "") + "\r\n"))).unwrap();
        w.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let missing: Vec<&String> = commands.iter().filter(|c| find(&searcher, c) != 1).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never indexed: {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    live.shutdown().await;
}
