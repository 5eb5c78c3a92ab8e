//! Live indexing for `gatehouse serve`: sessions are indexed from the recorder's live tap
//! as their frames arrive, so a command is searchable within about a second of Enter: the
//! extractor holds a command's record until the next command starts (its end time and
//! output excerpt may still change), so meanwhile the command is indexed provisionally and
//! replaced when its record comes (commits every [`COMMIT_INTERVAL`]; readers reload on
//! commit).
//!
//! When a session ends, its live documents are replaced by an authoritative pass over the
//! stored recording (the tap may skip frames under load, and may have started after the
//! session's first frames), which also stores its keyframes and writes its table parts
//! (`s-<session-id>.parquet`). Control-plane events handed to [`LiveIndexer::add_events`]
//! are written as `cp-<id>.parquet` parts on the same beat.
//!
//! Tasks: one that discovers new live sessions (told of each start by the tap, and
//! listing the live ones every [`POLL_INTERVAL`] for any it missed),
//! one per live session, and one writer that owns the index's single writer and commits.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use gatehouse_recorder::{Manifest, Recorder, RecordingState, SessionMeta, Storage, TapReceiver};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::Result;
use crate::index::{IndexSink, SearchIndex, SessionContext};
use crate::keyframe::store_keyframes;
use crate::pipeline::{Batch, SessionCommand, SessionIndexer};
use crate::tables::{EventRow, write_control_plane_events, write_session_tables};

/// How often pending documents are committed (the bound on search freshness, plus the
/// time the next prompt takes to show).
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// How often the tap's list of live sessions is checked for ones the start
/// announcements missed (those already running when indexing began, or announced while
/// the indexer lagged behind): frames written before a session is noticed are indexed by
/// the final pass only. Starts are announced as they happen, so this is a fallback, and
/// an idle proxy should not wake for it often.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait for an ended session's recording to be complete in storage.
const FINAL_WAIT: Duration = Duration::from_secs(60);
/// Indexing memory budget of the live writer.
const LIVE_HEAP: usize = 64 << 20;
/// Messages queued for the writer: a few seconds of a busy session's findings.
const QUEUE: usize = 1024;

enum Msg {
    Add { ctx: Arc<SessionContext>, batch: Batch, line_seq: u64 },
    Provisional { ctx: Arc<SessionContext>, command: SessionCommand },
    DeleteSession(Uuid),
    Events(Vec<EventRow>),
}

/// The running live indexer. Dropping it stops discovery; [`LiveIndexer::shutdown`]
/// also commits what is pending.
pub struct LiveIndexer {
    tx: mpsc::Sender<Msg>,
    stop: watch::Sender<bool>,
    discover: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl LiveIndexer {
    /// Starts indexing every session the recorder records. Takes the index's writer
    /// (`Unavailable` if another process holds it). Call inside a tokio runtime.
    pub fn spawn(recorder: &Recorder, storage: Storage, index: &SearchIndex) -> Result<LiveIndexer> {
        let sink = index.sink(1, LIVE_HEAP)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stopped) = watch::channel(false);
        let writer = tokio::spawn(write_loop(sink, rx, storage.clone(), stopped.clone()));
        let discover = tokio::spawn(discover_loop(recorder.clone(), storage, tx.clone(), stopped));
        Ok(LiveIndexer { tx, stop, discover, writer })
    }

    /// Queues control-plane events (auth attempts, access decisions) for the `events`
    /// table.
    pub async fn add_events(&self, rows: Vec<EventRow>) {
        if !rows.is_empty() {
            let _ = self.tx.send(Msg::Events(rows)).await;
        }
    }

    /// A handle that queues control-plane events from another task.
    pub fn event_sink(&self) -> EventSink {
        EventSink(self.tx.clone())
    }

    /// Stops following sessions, commits what is pending and releases the index writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.discover.await;
        drop(self.tx);
        let _ = self.writer.await;
    }
}

/// Queues control-plane events for the live indexer's `events` table parts (cheap to clone).
#[derive(Clone)]
pub struct EventSink(mpsc::Sender<Msg>);

impl EventSink {
    /// Queues rows; `false` once the live indexer has stopped.
    pub async fn send(&self, rows: Vec<EventRow>) -> bool {
        rows.is_empty() || self.0.send(Msg::Events(rows)).await.is_ok()
    }
}

/// Owns the index writer: applies messages in order, commits on a beat.
async fn write_loop(mut sink: IndexSink, mut rx: mpsc::Receiver<Msg>, storage: Storage, mut stopped: watch::Receiver<bool>) {
    let mut beat = tokio::time::interval(COMMIT_INTERVAL);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events: Vec<EventRow> = Vec::new();
    let store = storage.object_store();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Add { ctx, batch, mut line_seq }) => {
                    if let Err(e) = sink.add(&ctx, &batch, &mut line_seq) {
                        tracing::error!(session = %ctx.session, "live indexing failed: {e}");
                    }
                }
                Some(Msg::Provisional { ctx, command }) => {
                    if let Err(e) = sink.add_provisional(&ctx, &command) {
                        tracing::error!(session = %ctx.session, "live indexing failed: {e}");
                    }
                }
                Some(Msg::DeleteSession(id)) => sink.delete_session(id),
                Some(Msg::Events(rows)) => events.extend(rows),
                None => break,
            },
            _ = beat.tick() => {
                sink = commit(sink).await;
                if !events.is_empty() && let Err(e) = write_control_plane_events(&store, std::mem::take(&mut events)).await {
                    tracing::error!("writing control-plane events failed: {e}");
                }
            }
            _ = stopped.changed() => {
                // Shutting down: apply what is queued, then stop (sessions still being
                // followed are indexed by the next start or reindex).
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Add { ctx, batch, mut line_seq } => {
                            let _ = sink.add(&ctx, &batch, &mut line_seq);
                        }
                        Msg::Provisional { ctx, command } => {
                            let _ = sink.add_provisional(&ctx, &command);
                        }
                        Msg::DeleteSession(id) => sink.delete_session(id),
                        Msg::Events(rows) => events.extend(rows),
                    }
                }
                break;
            }
        }
    }
    sink = commit(sink).await;
    if !events.is_empty() && let Err(e) = write_control_plane_events(&store, events).await {
        tracing::error!("writing control-plane events failed: {e}");
    }
    drop(sink);
}

/// Commits off the async threads (a commit writes segment files and syncs).
async fn commit(mut sink: IndexSink) -> IndexSink {
    if !sink.has_uncommitted() {
        return sink;
    }
    let joined = tokio::task::spawn_blocking(move || {
        let r = sink.commit();
        (sink, r)
    })
    .await;
    match joined {
        Ok((sink, Ok(()))) => sink,
        Ok((sink, Err(e))) => {
            tracing::error!("committing the search index failed: {e}");
            sink
        }
        Err(e) => panic!("index commit task panicked: {e}"),
    }
}

/// Finds sessions that went live and starts following each once.
async fn discover_loop(recorder: Recorder, storage: Storage, tx: mpsc::Sender<Msg>, mut stopped: watch::Receiver<bool>) {
    // Starts are announced as they happen, so a session that ends before anyone could list
    // it (a quick exec) is still indexed by its final pass; the list of live sessions
    // covers those that were running already, and a lag in the announcements.
    let mut starts = recorder.tap().starts();
    let mut known: HashSet<Uuid> = HashSet::new();
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        let started = tokio::select! {
            _ = tick.tick() => None,
            s = starts.recv() => match s {
                Ok(s) => Some(s),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("live indexing missed {n} session starts; sessions that ended meanwhile wait for `reindex`");
                    None
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stopped.changed() => return,
        };
        let news: Vec<(Uuid, SessionMeta)> = match started {
            Some(s) => vec![s],
            None => {
                let live = recorder.tap().live();
                known.retain(|id| live.iter().any(|(l, _)| l == id));
                live
            }
        };
        for (id, meta) in news {
            if known.insert(id) {
                // `None`: it has ended already; the final pass reads it from storage.
                let rx = recorder.tap().subscribe(id);
                tokio::spawn(follow(id, meta, rx, storage.clone(), tx.clone()));
            }
        }
    }
}

/// The start time a UUIDv7 carries (ms precision): live documents' times until the final
/// pass replaces them with the manifest's exact start.
fn id_time(id: Uuid) -> OffsetDateTime {
    let (secs, nanos) = id.get_timestamp().map_or((0, 0), |ts| ts.to_unix());
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Follows one live session, then replaces its documents by the final pass.
async fn follow(id: Uuid, meta: SessionMeta, rx: Option<TapReceiver>, storage: Storage, tx: mpsc::Sender<Msg>) {
    if let Some(rx) = rx
        && !follow_live(id, &meta, rx, &tx).await
    {
        return;
    }
    match wait_complete(&storage, id).await {
        Some(manifest) => {
            if let Err(e) = final_pass(&storage, &manifest, &tx).await {
                tracing::error!(session = %id, "indexing the finished session failed: {e}");
            }
        }
        None => tracing::warn!(session = %id, "recording not complete in storage; keeping its live index entries"),
    }
}

/// Indexes a live session's frames as they come, until it ends; false if the index is
/// gone.
async fn follow_live(id: Uuid, meta: &SessionMeta, mut rx: TapReceiver, tx: &mpsc::Sender<Msg>) -> bool {
    let ctx = Arc::new(SessionContext {
        session: id,
        started_at: id_time(id),
        user: meta.user.clone(),
        account: meta.account.clone(),
        target: meta.target.clone(),
        source_addr: meta.source_addr.clone(),
    });
    let mut pipeline = SessionIndexer::for_meta(meta);
    let mut line_seq = 0;
    let mut shown: Option<gatehouse_recorder::Micros> = None; // Enter time of the provisional command
    while let Some(frame) = rx.recv().await {
        pipeline.push(&frame);
        let batch = pipeline.take();
        if !batch.is_empty() {
            let n = batch.lines.len() as u64;
            if !batch.commands.is_empty() {
                shown = None; // the sink drops the provisional command with these
            }
            if tx.send(Msg::Add { ctx: ctx.clone(), batch, line_seq }).await.is_err() {
                return false;
            }
            line_seq += n;
        }
        if let Some(command) = pipeline.running()
            && shown != Some(command.record.t)
        {
            shown = Some(command.record.t);
            if tx.send(Msg::Provisional { ctx: ctx.clone(), command }).await.is_err() {
                return false;
            }
        }
    }
    if rx.skipped() > 0 {
        tracing::debug!(session = %id, skipped = rx.skipped(), "live tap skipped frames; the final pass covers them");
    }
    true
}

/// The session's manifest once it is no longer live in storage.
async fn wait_complete(storage: &Storage, id: Uuid) -> Option<Manifest> {
    let deadline = tokio::time::Instant::now() + FINAL_WAIT;
    let mut wait = Duration::from_millis(50);
    while tokio::time::Instant::now() < deadline {
        if let Ok(m) = storage.manifest(id).await
            && m.state != RecordingState::Live
        {
            return Some(m);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    None
}

/// Re-indexes a finished session from storage, replacing its live documents; stores its
/// keyframes and table parts.
async fn final_pass(storage: &Storage, manifest: &Manifest, tx: &mpsc::Sender<Msg>) -> Result<()> {
    let ctx = Arc::new(SessionContext::of(manifest));
    let _ = tx.send(Msg::DeleteSession(manifest.id)).await;
    let mut pipeline = SessionIndexer::for_manifest(manifest);
    let (mut commands, mut events) = (Vec::new(), Vec::new());
    let mut line_seq = 0;
    let frames = storage.frames(manifest, 0);
    futures::pin_mut!(frames);
    let mut n = 0u64;
    let mut flush = |batch: Batch, line_seq: &mut u64| {
        commands.extend(batch.commands.iter().cloned());
        events.extend(batch.events.iter().cloned());
        let msg = Msg::Add { ctx: ctx.clone(), line_seq: *line_seq, batch };
        *line_seq += match &msg {
            Msg::Add { batch, .. } => batch.lines.len() as u64,
            _ => 0,
        };
        msg
    };
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(frame) => pipeline.push(&frame),
            Err(e) => tracing::warn!(session = %manifest.id, "{e}"),
        }
        n += 1;
        if n.is_multiple_of(4096) {
            let _ = tx.send(flush(pipeline.take(), &mut line_seq)).await;
        }
    }
    let out = pipeline.finish();
    let _ = tx.send(flush(out.batch, &mut line_seq)).await;
    let store = storage.object_store();
    store_keyframes(&store, manifest, &out.keyframes).await?;
    write_session_tables(&store, manifest, &commands, &events).await?;
    Ok(())
}
