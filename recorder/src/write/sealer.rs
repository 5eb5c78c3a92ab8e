//! Sealer threads: read a full segment's rows back from its spool file, turn them into
//! columns, compress, write the header (with the previous segment's hash), store the
//! result as `NNNNNNNN.seg` in the spool, drop the WAL file, and queue the upload. A
//! session always goes to the same thread, so its segments seal in order and the hash
//! chain is built sequentially. Reading the WAL back (from the page cache) instead of
//! handing buffers over keeps the writers' memory to their unflushed bytes: the spool on
//! disk, not RAM, is the buffer when compression falls behind.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::session::SessionShared;
use super::spool::{self, Spool};
use super::uploader::{Upload, Uploader};
use crate::columns::{self, RowStats};
use crate::manifest::{Manifest, RecordingState, SegmentInfo};
use crate::segment;

pub(crate) enum SealJob {
    Seal { shared: Arc<SessionShared>, seq: u64 },
    Finish { shared: Arc<SessionShared>, state: RecordingState, done: Option<oneshot::Sender<Manifest>> },
}

impl SealJob {
    fn shared(&self) -> &Arc<SessionShared> {
        match self {
            SealJob::Seal { shared, .. } | SealJob::Finish { shared, .. } => shared,
        }
    }
}

/// A sealed segment, ready for the spool and the store (its bytes are in the
/// [`Buffers`]' `segment`).
pub(crate) struct Sealed {
    pub info: SegmentInfo,
    pub hash: [u8; 32],
    pub stats: RowStats,
}

/// Buffers a sealer reuses from one segment to the next: a megabyte or so each, which
/// would otherwise be allocated and faulted in for every segment.
#[derive(Default)]
pub(crate) struct Buffers {
    pub rows: Vec<u8>,
    body: Vec<u8>,
    columns: columns::Scratch,
    pub segment: Vec<u8>,
}

/// Seals the spooled rows in `buf.rows` (up to a torn or damaged tail) into
/// `buf.segment`; `None` if they hold no frame.
pub(crate) fn seal_rows(
    buf: &mut Buffers,
    session: Uuid,
    seq: u64,
    prev_hash: [u8; 32],
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> Option<Sealed> {
    let stats = columns::from_rows_into(&buf.rows, &mut buf.body, &mut buf.columns);
    if stats.frames == 0 {
        return None;
    }
    let body = &buf.body;
    let header = segment::Header {
        session,
        seq,
        first_t: stats.first_t,
        last_t: stats.last_t,
        frames: stats.frames,
        raw_len: body.len() as u32,
        prev_hash,
    };
    segment::seal_into(&header, body, zstd, &mut buf.segment);
    let bytes = &buf.segment;
    let hash = segment::hash(bytes);
    let info = SegmentInfo {
        seq,
        first_t: stats.first_t,
        last_t: stats.last_t,
        frames: u64::from(stats.frames),
        raw_bytes: body.len() as u64,
        stored_bytes: bytes.len() as u64,
        hash: segment::hex(&hash),
    };
    Some(Sealed { info, hash, stats })
}

/// Handle to the sealer threads.
pub(crate) struct Sealer {
    txs: Vec<mpsc::Sender<SealJob>>,
}

impl Sealer {
    pub(crate) fn start(threads: usize, level: i32, spool: Arc<Spool>, uploader: Uploader) -> Sealer {
        let txs = (0..threads)
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let (spool, uploader) = (spool.clone(), uploader.clone());
                std::thread::Builder::new()
                    .name(format!("gatehouse-sealer-{i}"))
                    .spawn(move || run(rx, level, &spool, &uploader))
                    .expect("spawn sealer thread");
                tx
            })
            .collect();
        Sealer { txs }
    }

    pub(crate) fn send(&self, job: SealJob) {
        let shard = job.shared().id.as_u128() as usize % self.txs.len();
        if self.txs[shard].send(job).is_err() {
            tracing::error!("sealer thread gone; the segment stays in the spool for recovery");
        }
    }
}

fn run(rx: mpsc::Receiver<SealJob>, level: i32, spool: &Spool, uploader: &Uploader) {
    let mut zstd = zstd::bulk::Compressor::new(level).expect("valid zstd level");
    let mut buf = Buffers::default();
    for job in rx {
        match job {
            SealJob::Finish { shared, state, done } => uploader.forward(Upload::Finish { shared, state, done }),
            SealJob::Seal { shared, seq } => match seal_one(&shared, seq, spool, &mut zstd, &mut buf) {
                Some((info, stats)) => uploader.forward(Upload::Segment {
                    shared,
                    info,
                    bytes_in: stats.bytes_in,
                    bytes_out: stats.bytes_out,
                }),
                None => uploader.done_one(),
            },
        }
    }
}

/// Seals one WAL file into a `.seg` in the spool. `None`: nothing to upload (empty, or
/// left in place for recovery after an I/O error).
fn seal_one(
    shared: &SessionShared,
    seq: u64,
    spool: &Spool,
    zstd: &mut zstd::bulk::Compressor<'_>,
    buf: &mut Buffers,
) -> Option<(SegmentInfo, RowStats)> {
    let wal = spool::wal_path(&shared.dir, seq);
    if let Err(e) = read_into(&wal, &mut buf.rows) {
        tracing::error!("cannot read {}: {e}; left for recovery", wal.display());
        return None;
    }
    let prev = *shared.chain.lock().expect("chain lock");
    let Some(sealed) = seal_rows(buf, shared.id, seq, prev, zstd) else {
        spool.discard(&wal);
        return None;
    };
    if let Some(damage) = &sealed.stats.damage {
        // Only a bug or a disk fault gets here: the writer appends whole frames.
        tracing::error!("{}: {damage}; sealing the {} frames before it", wal.display(), sealed.stats.frames);
    }
    let path = spool::seg_path(&shared.dir, seq);
    if !write_with_retries(spool, &path, &buf.segment) {
        return None; // the WAL is still there: recovery at the next start seals it again
    }
    *shared.chain.lock().expect("chain lock") = sealed.hash;
    spool.add(buf.segment.len() as u64);
    spool.discard(&wal);
    Some((sealed.info, sealed.stats))
}

/// Reads a whole file into `buf`, reusing its allocation.
pub(crate) fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// A full disk may free up (the uploader deletes segments as they land): retry a few
/// times before giving up on this segment.
fn write_with_retries(spool: &Spool, path: &Path, bytes: &[u8]) -> bool {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=6 {
        match spool.write_segment(path, bytes) {
            Ok(()) => return true,
            Err(e) if attempt == 6 => tracing::error!("giving up writing {}: {e}", path.display()),
            Err(e) => tracing::warn!("writing {} failed (attempt {attempt}): {e}", path.display()),
        }
        std::thread::sleep(delay);
        delay *= 2;
    }
    false
}
