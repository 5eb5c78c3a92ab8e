//! The uploader: puts sealed segments and manifests into the store, retrying with
//! exponential backoff for as long as the store is unreachable. Each session has its own
//! queue (a task), so its segments land in order and its manifest only ever lists
//! segments already in the store; sessions upload concurrently.
//!
//! The store's manifest is put at most once per [`MANIFEST_EVERY`] while segments land
//! (and always at the end): its segment list grows with the session, and putting it
//! after every segment of a fast session cost more than the segments themselves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::memory::Memory;
use super::off_runtime;
use super::session::SessionShared;
use super::spool::{self, SegmentNote, Spool};
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{Manifest, RecordingState};
use crate::storage::Storage;

const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between two attempts: an outage's end is noticed within this.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest a segment in the store waits to be listed in the store's manifest.
pub(crate) const MANIFEST_EVERY: Duration = Duration::from_secs(1);

/// Where a sealed segment's bytes are.
pub(crate) enum SegData {
    /// In memory (taking that much of the memory budget); the spool holds its WAL file.
    Memory(Bytes),
    /// In the spool, as `NNNNNNNN.seg`.
    Spooled,
}

pub(crate) enum Upload {
    Segment { shared: Arc<SessionShared>, note: SegmentNote, data: SegData },
    Manifest { shared: Arc<SessionShared> },
    Finish { shared: Arc<SessionShared>, state: RecordingState, done: Option<oneshot::Sender<Manifest>> },
}

impl Upload {
    fn id(&self) -> Uuid {
        match self {
            Upload::Segment { shared, .. } | Upload::Manifest { shared } | Upload::Finish { shared, .. } => shared.id,
        }
    }
}

/// Work queued anywhere on the write path (sealer or uploader) and not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    pub(crate) fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn done(&self) {
        self.done_n(1)
    }

    fn done_n(&self, n: usize) {
        if n > 0 && self.count.fetch_sub(n, Ordering::SeqCst) == n {
            self.idle.notify_waiters();
        }
    }

    /// Waits until nothing is pending; false on timeout.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.count.load(Ordering::SeqCst) == 0;
            }
        }
    }
}

/// Handle to the uploader task.
#[derive(Clone)]
pub(crate) struct Uploader {
    tx: mpsc::UnboundedSender<Upload>,
    pending: Arc<Pending>,
}

/// What every session queue works with.
#[derive(Clone)]
struct Ctx {
    storage: Storage,
    spool: Arc<Spool>,
    pending: Arc<Pending>,
    memory: Arc<Memory>,
}

impl Uploader {
    /// Spawns the dispatcher on the current tokio runtime.
    pub(crate) fn start(storage: Storage, spool: Arc<Spool>, pending: Arc<Pending>, memory: Arc<Memory>) -> Uploader {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(rx, Ctx { storage, spool, pending: pending.clone(), memory }));
        Uploader { tx, pending }
    }

    /// Queues a new job.
    pub(crate) fn send(&self, job: Upload) {
        self.pending.add();
        self.forward(job)
    }

    /// Queues a job handed on by the sealer (counted when it entered the sealer).
    pub(crate) fn forward(&self, job: Upload) {
        if self.tx.send(job).is_err() {
            tracing::error!("uploader stopped; the spool keeps the data for recovery");
            self.pending.done();
        }
    }

    /// Marks a counted job as abandoned (left in the spool for recovery).
    pub(crate) fn done_one(&self) {
        self.pending.done()
    }
}

async fn dispatch(mut rx: mpsc::UnboundedReceiver<Upload>, ctx: Ctx) {
    let mut queues: HashMap<Uuid, mpsc::UnboundedSender<Upload>> = HashMap::new();
    while let Some(job) = rx.recv().await {
        let id = job.id();
        let last = matches!(job, Upload::Finish { .. });
        let queue = queues.entry(id).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(session_queue(rx, ctx.clone()));
            tx
        });
        if queue.send(job).is_err() {
            ctx.pending.done();
        }
        if last {
            queues.remove(&id);
        }
    }
}

/// What a session queue does next.
enum Next {
    Job(Upload),
    /// Time to list the segments uploaded since the last manifest.
    ListingDue,
    Closed,
}

/// One session's uploads, in order. Segments uploaded but not yet listed in the store's
/// manifest stay counted as pending, so [`Pending::wait_idle`] means "all in the store".
async fn session_queue(mut rx: mpsc::UnboundedReceiver<Upload>, ctx: Ctx) {
    let mut unlisted = 0usize;
    let mut session: Option<Arc<SessionShared>> = None;
    // When segments were last listed: the first one is listed at once (a live session
    // becomes readable as soon as it can), later ones at most once per MANIFEST_EVERY.
    let mut last_listing: Option<Instant> = None;
    loop {
        let next = if let Some(at) = last_listing.filter(|_| unlisted > 0) {
            tokio::select! {
                job = rx.recv() => job.map_or(Next::Closed, Next::Job),
                () = tokio::time::sleep_until(at + MANIFEST_EVERY) => Next::ListingDue,
            }
        } else {
            rx.recv().await.map_or(Next::Closed, Next::Job)
        };
        // Jobs done once the next manifest is in the store.
        let (shared, done) = match next {
            Next::Closed => {
                if let Some(shared) = session.filter(|_| unlisted > 0) {
                    put_manifest(&ctx, &shared.snapshot()).await;
                    ctx.pending.done_n(unlisted);
                }
                return;
            }
            Next::ListingDue => {
                last_listing = Some(Instant::now());
                (session.clone().expect("segments were uploaded"), None)
            }
            Next::Job(Upload::Segment { shared, note, data }) => {
                upload_segment(&ctx, shared.clone(), note, data).await;
                unlisted += 1;
                session = Some(shared.clone());
                if last_listing.is_some_and(|at| at.elapsed() < MANIFEST_EVERY) {
                    continue;
                }
                last_listing = Some(Instant::now());
                (shared, None)
            }
            Next::Job(Upload::Manifest { shared }) => {
                unlisted += 1;
                (shared, None)
            }
            Next::Job(Upload::Finish { shared, state, done }) => {
                unlisted += 1;
                let manifest = off_runtime({
                    let shared = shared.clone();
                    move || shared.update(|m| m.state = state)
                })
                .await;
                (shared, Some((manifest, done)))
            }
        };
        match done {
            None => put_manifest(&ctx, &shared.snapshot()).await,
            Some((manifest, done)) => {
                put_manifest(&ctx, &manifest).await;
                let dir = shared.dir.clone();
                off_runtime(move || {
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        tracing::warn!("cannot remove {}: {e}", dir.display());
                    }
                })
                .await;
                if let Some(done) = done {
                    let _ = done.send(manifest);
                }
            }
        }
        ctx.pending.done_n(std::mem::take(&mut unlisted));
    }
}

async fn put_manifest(ctx: &Ctx, manifest: &Manifest) {
    retry(&format!("manifest of {}", manifest.id), None, || ctx.storage.put_manifest(manifest)).await;
}

/// Puts one segment in the store, notes it, and drops its spool file.
async fn upload_segment(ctx: &Ctx, shared: Arc<SessionShared>, note: SegmentNote, data: SegData) {
    let seq = note.info.seq;
    let (bytes, file, held) = match data {
        SegData::Memory(bytes) => {
            let held = bytes.len() as u64;
            (bytes, spool::wal_path(&shared.dir, seq), held)
        }
        SegData::Spooled => {
            let file = spool::seg_path(&shared.dir, seq);
            match tokio::fs::read(&file).await {
                Ok(b) => (Bytes::from(b), file, 0),
                Err(e) => return tracing::error!("sealed segment {} unreadable: {e}", file.display()),
            }
        }
    };
    match layout::segment_path(shared.id, seq) {
        Ok(path) => retry(&format!("segment {path}"), Some(&shared.stalled), || ctx.storage.put(&path, bytes.clone())).await,
        Err(e) => {
            ctx.memory.release(held);
            return tracing::error!("{e}");
        }
    }
    ctx.memory.release(held);
    if let Ok(buf) = bytes.try_into_mut() {
        ctx.memory.recycle(buf.into());
    }
    let spool = ctx.spool.clone();
    off_runtime(move || match shared.note_segment(&note) {
        Ok(()) => spool.discard(&file),
        Err(e) => tracing::error!("segment {seq} of {} is in the store but {e}: its spool file stays for recovery", shared.id),
    })
    .await;
}

/// Runs `op` until it succeeds, backing off exponentially up to [`BACKOFF_MAX`];
/// `stalled` (if given) is set while it fails.
async fn retry<F, Fut>(what: &str, stalled: Option<&AtomicBool>, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut delay = BACKOFF_START;
    for attempt in 1u64.. {
        match op().await {
            Ok(()) => {
                if attempt > 1 {
                    tracing::info!("{what} uploaded after {attempt} attempts");
                    stalled.inspect(|s| s.store(false, Ordering::Relaxed));
                }
                return;
            }
            Err(e) => {
                stalled.inspect(|s| s.store(true, Ordering::Relaxed));
                if attempt == 1 || attempt % 20 == 0 {
                    let hint = if matches!(e, Error::Unavailable(_)) { "; retrying" } else { "; retrying anyway" };
                    tracing::warn!("uploading {what} failed (attempt {attempt}): {e}{hint}");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    }
}
