//! The uploader: puts sealed segments and manifests into the store, retrying with
//! exponential backoff for as long as the store is unreachable. Each session has its own
//! queue (a task), so its segments land in order and its manifest only ever lists
//! segments already in the store; sessions upload concurrently.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::session::SessionShared;
use super::spool::{self, Spool};
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{Manifest, RecordingState, SegmentInfo};
use crate::storage::Storage;

const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between two attempts: an outage's end is noticed within this.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(crate) enum Upload {
    Segment { shared: Arc<SessionShared>, info: SegmentInfo, bytes_in: u64, bytes_out: u64 },
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
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
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

impl Uploader {
    /// Spawns the dispatcher on the current tokio runtime.
    pub(crate) fn start(storage: Storage, spool: Arc<Spool>, pending: Arc<Pending>) -> Uploader {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(rx, storage, spool, pending.clone()));
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

async fn dispatch(mut rx: mpsc::UnboundedReceiver<Upload>, storage: Storage, spool: Arc<Spool>, pending: Arc<Pending>) {
    let mut queues: HashMap<Uuid, mpsc::UnboundedSender<Upload>> = HashMap::new();
    while let Some(job) = rx.recv().await {
        let id = job.id();
        let last = matches!(job, Upload::Finish { .. });
        let queue = queues.entry(id).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(session_queue(rx, storage.clone(), spool.clone(), pending.clone()));
            tx
        });
        if queue.send(job).is_err() {
            pending.done();
        }
        if last {
            queues.remove(&id);
        }
    }
}

async fn session_queue(mut rx: mpsc::UnboundedReceiver<Upload>, storage: Storage, spool: Arc<Spool>, pending: Arc<Pending>) {
    while let Some(job) = rx.recv().await {
        match job {
            Upload::Segment { shared, info, bytes_in, bytes_out } => {
                upload_segment(&storage, &spool, &shared, info, bytes_in, bytes_out).await
            }
            Upload::Manifest { shared } => {
                let manifest = shared.snapshot();
                retry(&format!("manifest of {}", shared.id), || storage.put_manifest(&manifest)).await;
            }
            Upload::Finish { shared, state, done } => {
                let manifest = shared.update(|m| m.state = state);
                retry(&format!("manifest of {}", shared.id), || storage.put_manifest(&manifest)).await;
                if let Err(e) = std::fs::remove_dir_all(&shared.dir) {
                    tracing::warn!("cannot remove {}: {e}", shared.dir.display());
                }
                if let Some(done) = done {
                    let _ = done.send(manifest);
                }
            }
        }
        pending.done();
    }
}

async fn upload_segment(
    storage: &Storage,
    spool: &Spool,
    shared: &SessionShared,
    info: SegmentInfo,
    bytes_in: u64,
    bytes_out: u64,
) {
    let file = spool::seg_path(&shared.dir, info.seq);
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!("sealed segment {} unreadable: {e}", file.display());
            return;
        }
    };
    let path = match layout::segment_path(shared.id, info.seq) {
        Ok(p) => p,
        Err(e) => return tracing::error!("{e}"),
    };
    retry(&format!("segment {path}"), || storage.put(&path, bytes.clone())).await;
    let manifest = shared.update(|m| {
        // Idempotent: recovery may re-upload a segment whose upload was not yet noted.
        match m.segments.iter().position(|s| s.seq == info.seq) {
            Some(i) => m.segments[i] = info.clone(),
            None => {
                m.frames += info.frames;
                m.bytes_in += bytes_in;
                m.bytes_out += bytes_out;
                m.duration = m.duration.max(info.last_t);
                m.segments.push(info.clone());
            }
        }
        m.chain_head = m.segments.last().map(|s| s.hash.clone());
    });
    retry(&format!("manifest of {}", shared.id), || storage.put_manifest(&manifest)).await;
    spool.discard(&file);
}

/// Runs `op` until it succeeds, backing off exponentially up to [`BACKOFF_MAX`].
async fn retry<F, Fut>(what: &str, mut op: F)
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
                }
                return;
            }
            Err(e) => {
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
