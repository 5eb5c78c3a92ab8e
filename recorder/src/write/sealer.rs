//! Sealer threads: compress a full segment, write its header (with the previous
//! segment's hash), store it as `NNNNNNNN.seg` in the spool, drop the WAL file, and queue
//! the upload. A session always goes to the same thread, so its segments seal in order
//! and the hash chain is built sequentially.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::session::SessionShared;
use super::spool::{self, Spool};
use super::uploader::{Upload, Uploader};
use crate::frame::Micros;
use crate::manifest::{Manifest, RecordingState, SegmentInfo};
use crate::segment;

/// Raw bytes of sealed-but-not-compressed segments the writers may hand over in memory;
/// past it, the sealer re-reads the WAL from disk. 64 segments of 1 MiB keep every
/// sealer busy without letting a burst of sessions grow memory without bound.
const MEMORY_BUDGET: usize = 64 << 20;

pub(crate) enum SealJob {
    Seal {
        shared: Arc<SessionShared>,
        seq: u64,
        raw: Option<Vec<u8>>,
        raw_len: usize,
        first_t: Micros,
        last_t: Micros,
        frames: u32,
        bytes_in: u64,
        bytes_out: u64,
    },
    Finish {
        shared: Arc<SessionShared>,
        state: RecordingState,
        done: Option<oneshot::Sender<Manifest>>,
    },
}

impl SealJob {
    fn shared(&self) -> &Arc<SessionShared> {
        match self {
            SealJob::Seal { shared, .. } | SealJob::Finish { shared, .. } => shared,
        }
    }
}

/// Handle to the sealer threads.
pub(crate) struct Sealer {
    txs: Vec<mpsc::Sender<SealJob>>,
    in_memory: Arc<AtomicUsize>,
}

impl Sealer {
    pub(crate) fn start(threads: usize, level: i32, spool: Arc<Spool>, uploader: Uploader) -> Sealer {
        let in_memory = Arc::new(AtomicUsize::new(0));
        let txs = (0..threads)
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let (spool, uploader, in_memory) = (spool.clone(), uploader.clone(), in_memory.clone());
                std::thread::Builder::new()
                    .name(format!("gatehouse-sealer-{i}"))
                    .spawn(move || run(rx, level, &spool, &uploader, &in_memory))
                    .expect("spawn sealer thread");
                tx
            })
            .collect();
        Sealer { txs, in_memory }
    }

    /// Whether a segment of `len` raw bytes may travel in memory.
    pub(crate) fn carry(&self, len: usize) -> bool {
        let before = self.in_memory.fetch_add(len, Ordering::Relaxed);
        if before + len > MEMORY_BUDGET {
            self.in_memory.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub(crate) fn send(&self, job: SealJob) {
        let shard = job.shared().id.as_u128() as usize % self.txs.len();
        if self.txs[shard].send(job).is_err() {
            tracing::error!("sealer thread gone; the segment stays in the spool for recovery");
        }
    }
}

fn run(rx: mpsc::Receiver<SealJob>, level: i32, spool: &Spool, uploader: &Uploader, in_memory: &AtomicUsize) {
    let mut zstd = zstd::bulk::Compressor::new(level).expect("valid zstd level");
    for job in rx {
        match job {
            SealJob::Finish { shared, state, done } => uploader.forward(Upload::Finish { shared, state, done }),
            SealJob::Seal { shared, seq, raw, raw_len, first_t, last_t, frames, bytes_in, bytes_out } => {
                let wal = spool::wal_path(&shared.dir, seq);
                let raw = match raw {
                    Some(raw) => {
                        in_memory.fetch_sub(raw_len, Ordering::Relaxed);
                        raw
                    }
                    None => match std::fs::read(&wal) {
                        Ok(raw) => raw,
                        Err(e) => {
                            tracing::error!("cannot read {}: {e}; left for recovery", wal.display());
                            uploader.done_one();
                            continue;
                        }
                    },
                };
                let header = segment::Header {
                    session: shared.id,
                    seq,
                    first_t,
                    last_t,
                    frames,
                    raw_len: raw.len() as u32,
                    prev_hash: *shared.chain.lock().expect("chain lock"),
                };
                let bytes = segment::seal(&header, &raw, &mut zstd);
                let hash = segment::hash(&bytes);
                let path = spool::seg_path(&shared.dir, seq);
                if !write_with_retries(&path, &bytes) {
                    // The WAL is still there: recovery at the next start seals it again.
                    uploader.done_one();
                    continue;
                }
                *shared.chain.lock().expect("chain lock") = hash;
                spool.add(bytes.len() as u64);
                spool.release(spool::remove(&wal));
                let info = SegmentInfo {
                    seq,
                    first_t,
                    last_t,
                    frames: u64::from(frames),
                    raw_bytes: raw.len() as u64,
                    stored_bytes: bytes.len() as u64,
                    hash: segment::hex(&hash),
                };
                uploader.forward(Upload::Segment { shared, info, bytes_in, bytes_out });
            }
        }
    }
}

/// A full disk may free up (the uploader deletes segments as they land): retry a few
/// times before giving up on this segment.
fn write_with_retries(path: &std::path::Path, bytes: &[u8]) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=6 {
        match spool::write_segment(path, bytes) {
            Ok(()) => return true,
            Err(e) if attempt == 6 => tracing::error!("giving up writing {}: {e}", path.display()),
            Err(e) => tracing::warn!("writing {} failed (attempt {attempt}): {e}", path.display()),
        }
        std::thread::sleep(delay);
        delay *= 2;
    }
    false
}
