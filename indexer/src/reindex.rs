//! `gatehouse reindex`: rebuilds the search index, the keyframes and the Parquet tables
//! from the recordings. Idempotent: the index is emptied and refilled, keyframe objects
//! and table parts are overwritten under the same names, and table parts not rewritten
//! are removed — running it twice leaves the same documents, rows and files.

use std::path::Path;

use futures::StreamExt as _;
use gatehouse_recorder::{Manifest, SessionFilter, Storage};

use crate::error::{ErrorKind, Result};
use crate::index::{SearchIndex, SessionContext};
use crate::keyframe::store_keyframes;
use crate::pipeline::{Batch, RecordedEvent, SessionCommand, SessionIndexer};
use crate::tables::{EventRow, TablesRebuild, TablesReport};

/// Progress of a rebuild, reported as it goes (the CLI draws a bar from it).
pub trait Progress {
    /// The rebuild found `sessions` sessions holding `bytes` of output in all.
    fn start(&self, sessions: u64, bytes: u64);
    /// One session is done; it held `bytes` of output.
    fn session_done(&self, session: &Manifest, bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn start(&self, _: u64, _: u64) {}
    fn session_done(&self, _: &Manifest, _: u64) {}
}

/// What a rebuild did.
#[derive(Debug, Default, Clone)]
pub struct ReindexReport {
    /// Sessions indexed.
    pub sessions: u64,
    /// Commands indexed.
    pub commands: u64,
    /// Distinct screen lines indexed.
    pub lines: u64,
    /// Recording events found.
    pub events: u64,
    /// Keyframes stored.
    pub keyframes: u64,
    /// The tables written.
    pub tables: TablesReport,
    /// Problems that did not stop the rebuild (a corrupt segment...), one line each,
    /// naming the session and what failed. What could be read was indexed.
    pub problems: Vec<String>,
}

/// Indexing memory budget of a rebuild.
const REBUILD_HEAP: usize = 256 << 20;
/// Hand findings to the index writer every this many frames (bounds memory on huge sessions).
const TAKE_EVERY: u64 = 4096;

/// Rebuilds everything derived from the recordings in `storage`: the index in
/// `index_dir`, keyframes and tables in the store. `control_plane_events` (auth attempts,
/// access decisions) go into the `events` table beside the recordings' events.
pub async fn reindex(
    storage: &Storage,
    index_dir: &Path,
    control_plane_events: Vec<EventRow>,
    progress: &dyn Progress,
) -> Result<ReindexReport> {
    let index = match SearchIndex::open_or_create(index_dir) {
        Err(e) if e.kind() == ErrorKind::Corrupt => SearchIndex::recreate(index_dir)?,
        other => other?,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let mut sink = index.sink(threads, REBUILD_HEAP)?;
    sink.delete_all()?;

    let mut manifests = storage.list_sessions(&SessionFilter::default()).await?;
    manifests.sort_by_key(|m| (m.started_at, m.id));
    progress.start(manifests.len() as u64, manifests.iter().map(|m| m.bytes_out).sum());

    let store = storage.object_store();
    let mut tables = TablesRebuild::new(store.clone(), control_plane_events);
    let mut report = ReindexReport::default();
    for manifest in &manifests {
        let ctx = SessionContext::of(manifest);
        let mut pipeline = SessionIndexer::for_manifest(manifest);
        let (mut commands, mut events): (Vec<SessionCommand>, Vec<RecordedEvent>) = (Vec::new(), Vec::new());
        let mut line_seq = 0;
        let mut keep = |batch: Batch, sink: &mut crate::index::IndexSink, line_seq: &mut u64| -> Result<()> {
            sink.add(&ctx, &batch, line_seq)?;
            commands.extend(batch.commands);
            events.extend(batch.events);
            Ok(())
        };
        let frames = storage.frames(manifest, 0);
        futures::pin_mut!(frames);
        let mut n = 0u64;
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(frame) => pipeline.push(&frame),
                Err(e) => report.problems.push(format!("session {}: {e}", manifest.id)),
            }
            n += 1;
            if n.is_multiple_of(TAKE_EVERY) {
                keep(pipeline.take(), &mut sink, &mut line_seq)?;
            }
        }
        let out = pipeline.finish();
        keep(out.batch, &mut sink, &mut line_seq)?;
        store_keyframes(&store, manifest, &out.keyframes).await?;
        tables.add_session(manifest, &commands, &events).await?;
        report.sessions += 1;
        report.commands += out.stats.commands;
        report.lines += out.stats.lines;
        report.events += events.len() as u64;
        report.keyframes += out.stats.keyframes;
        progress.session_done(manifest, manifest.bytes_out);
    }
    sink.finish()?;
    report.tables = tables.finish().await?;
    Ok(report)
}
