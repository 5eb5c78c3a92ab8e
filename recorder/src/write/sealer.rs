//! Sealer threads: compress a full segment, write its header (with the previous
//! segment's hash), and queue the upload. A session always goes to the same thread, so
//! its segments seal in order and the hash chain is built sequentially.
//!
//! The segment normally arrives as the columns the writer built in memory, and the
//! sealed bytes go to the uploader in memory too: the spool file (the WAL) is then the
//! only copy on disk, and stays until the store has the segment. When the memory budget
//! is used up, a segment arrives empty (*spilled*) and is read back from its WAL file
//! (through the file's mapping, which the spool's pool usually still holds);
//! and a sealed segment that cannot wait in memory (budget, or the store refusing the
//! session's uploads) is written to the spool as `NNNNNNNN.seg`, compressed, which
//! replaces its WAL file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::memory::Memory;
use super::session::SessionShared;
use super::spool::{self, SegmentNote, Spool};
use super::uploader::{SegData, Upload, Uploader};
use super::wal;
use crate::columns::{BODY_HEADER, Columns, Stats};
use crate::manifest::{Manifest, RecordingState, SegmentInfo};
use crate::segment;

pub(crate) enum SealJob {
    /// Segment `seq`: its columns (`None`: spilled, read them from the WAL file) and the
    /// memory budget they hold.
    Seal { shared: Arc<SessionShared>, seq: u64, cols: Option<Columns>, held: u64 },
    Finish { shared: Arc<SessionShared>, state: RecordingState, done: Option<oneshot::Sender<Manifest>> },
}

impl SealJob {
    fn shared(&self) -> &Arc<SessionShared> {
        match self {
            SealJob::Seal { shared, .. } | SealJob::Finish { shared, .. } => shared,
        }
    }
}

/// A sealed segment, ready for the store.
pub(crate) struct Sealed {
    pub bytes: Vec<u8>,
    pub note: SegmentNote,
    pub hash: [u8; 32],
    /// The uncompressed body's buffer, free for reuse.
    pub body: Vec<u8>,
}

/// Seals the frames in `cols` into `out`; `None` if there are none.
pub(crate) fn seal(
    cols: Columns,
    session: Uuid,
    seq: u64,
    prev_hash: [u8; 32],
    zstd: &mut zstd::bulk::Compressor<'_>,
    out: Vec<u8>,
) -> Option<Sealed> {
    if cols.frames() == 0 {
        return None;
    }
    let (body, stats) = cols.finish();
    let (bytes, note, hash) = seal_parts(&[&body], stats, session, seq, prev_hash, zstd, out);
    Some(Sealed { bytes, note, hash, body })
}

/// Seals a segment whose output column is in its write-ahead file's output region (WAL
/// format 4): compressed straight from the file's mapping (see [`map_wal`]; with the
/// body header patched in front of the output), then the split meta and other columns.
/// `Err(out)`: the file could not be mapped or is shorter than its output (damage), and
/// the caller reads what it holds instead (and reports why it cannot).
#[allow(clippy::too_many_arguments)]
fn seal_external(
    spool: &Spool,
    wal_path: &Path,
    cols: Columns,
    session: Uuid,
    seq: u64,
    prev_hash: [u8; 32],
    zstd: &mut zstd::bulk::Compressor<'_>,
    out: Vec<u8>,
    tail: &mut Vec<u8>,
) -> Result<Option<Sealed>, Vec<u8>> {
    if cols.frames() == 0 {
        return Ok(None);
    }
    let meta_len = cols.finish_tail(tail);
    let (out_len, stats) = (cols.ext_out, cols.stats);
    let at = wal::OUT_AT;
    let mut out = Some(out);
    let sealed = map_wal(spool, wal_path, |map| {
        if map.len() < at + out_len {
            return None;
        }
        map[at - 8..at - 4].copy_from_slice(&(out_len as u32).to_le_bytes());
        map[at - 4..at].copy_from_slice(&(meta_len as u32).to_le_bytes());
        let parts = [&map[at - BODY_HEADER..at + out_len], &tail[..]];
        Some(seal_parts(&parts, stats, session, seq, prev_hash, zstd, out.take().expect("sealed once")))
    });
    match sealed {
        Ok(Some((bytes, note, hash))) => Ok(Some(Sealed { bytes, note, hash, body: Vec::new() })),
        Ok(None) | Err(_) => Err(out.expect("not sealed")),
    }
}

/// The segment object for a body given in `parts` (see `segment::seal_into`), with its
/// hash and the note the manifest gets.
#[allow(clippy::too_many_arguments)]
fn seal_parts(
    parts: &[&[u8]],
    stats: Stats,
    session: Uuid,
    seq: u64,
    prev_hash: [u8; 32],
    zstd: &mut zstd::bulk::Compressor<'_>,
    mut out: Vec<u8>,
) -> (Vec<u8>, SegmentNote, [u8; 32]) {
    let raw_len: usize = parts.iter().map(|p| p.len()).sum();
    let header = segment::Header {
        format: segment::FORMAT,
        session,
        seq,
        first_t: stats.first_t,
        last_t: stats.last_t,
        frames: stats.frames,
        raw_len: raw_len as u32,
        prev_hash,
    };
    segment::seal_into(&header, parts, zstd, &mut out);
    let hash = segment::hash(&out);
    let info = SegmentInfo {
        seq,
        first_t: stats.first_t,
        last_t: stats.last_t,
        frames: u64::from(stats.frames),
        raw_bytes: raw_len as u64,
        stored_bytes: out.len() as u64,
        hash: segment::hex(&hash),
    };
    (out, SegmentNote { info, bytes_in: stats.bytes_in, bytes_out: stats.bytes_out }, hash)
}

/// Reads a spool file's frames (up to a torn or damaged tail, which is logged): for
/// recovery, which finds files no mapping holds.
pub(crate) fn read_wal(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<(Columns, Option<String>)> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    let mut cols = Columns::default();
    let damage = wal::read(buf, &mut cols);
    Ok((cols, damage))
}

/// A spilled segment's frames, read back from its WAL file into a recycled segment
/// buffer (see [`map_wal`]).
fn read_spilled(spool: &Spool, memory: &Memory, path: &Path) -> std::io::Result<(Columns, Option<String>)> {
    let mut cols = Columns::with_buffer(memory.buffer(memory.buffer_size()));
    let damage = map_wal(spool, path, |bytes| wal::read(bytes, &mut cols))?;
    Ok((cols, damage))
}

/// Runs `f` on a retired WAL file's whole mapping, writable: the pool's, while it keeps
/// the file mapped, else one made for the purpose. Either way `f` touches only the pages
/// it reads, all in the page cache since the segment wrote them: reading the file
/// instead would copy its whole capacity (5 MiB with the default segments) and fill its
/// unwritten pages with zeros first, for a segment that may hold a few kilobytes. With
/// hundreds of quiet sessions sealing on age, that was most of the sealers' work.
///
/// The pool keeps a limited number of files mapped; a busy proxy seals more at once.
/// Nothing truncates a WAL file before its sealer discards it, so the mapping stays
/// valid while `f` runs.
fn map_wal<R>(spool: &Spool, path: &Path, f: impl FnOnce(&mut [u8]) -> R) -> std::io::Result<R> {
    let mut f = Some(f);
    if let Some(r) = spool.with_retired_wal_mut(path, |map| (f.take().expect("called once"))(map)) {
        return Ok(r);
    }
    let f = f.expect("not called");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(f(&mut []));
    }
    // SAFETY: the spool's own file, which nothing truncates while its segment is being
    // sealed (see above).
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
    Ok(f(&mut map[..]))
}

/// Handle to the sealer threads.
pub(crate) struct Sealer {
    txs: Vec<mpsc::Sender<SealJob>>,
}

/// What every sealer thread works with.
struct Ctx {
    spool: Arc<Spool>,
    memory: Arc<Memory>,
    uploader: Uploader,
}

impl Sealer {
    pub(crate) fn start(threads: usize, level: i32, spool: Arc<Spool>, memory: Arc<Memory>, uploader: Uploader) -> Sealer {
        let txs = (0..threads)
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let ctx = Ctx { spool: spool.clone(), memory: memory.clone(), uploader: uploader.clone() };
                std::thread::Builder::new()
                    .name(format!("gatehouse-sealer-{i}"))
                    .spawn(move || run(rx, level, &ctx))
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

fn run(rx: mpsc::Receiver<SealJob>, level: i32, ctx: &Ctx) {
    let mut zstd = crate::segment::compressor(level);
    let mut tail = Vec::new();
    let mut scratch = Vec::new();
    for job in rx {
        match job {
            SealJob::Finish { shared, state, done } => ctx.uploader.forward(Upload::Finish { shared, state, done }),
            SealJob::Seal { shared, seq, cols, held } => {
                let sealed = seal_one(&shared, seq, cols, ctx, &mut zstd, &mut tail, &mut scratch);
                ctx.memory.release(held);
                match sealed {
                    Some((note, data)) => ctx.uploader.forward(Upload::Segment { shared, note, data }),
                    None => ctx.uploader.done_one(),
                }
            }
        }
    }
}

/// Seals one segment. `None`: nothing to upload (empty, or left in the spool for
/// recovery after an I/O error).
///
/// The segment is compressed into `scratch`, the thread's own buffer (its pages stay
/// mapped and hot), and the store gets an exact-size copy: handing the store a recycled
/// megabyte-sized buffer instead drained the recycled buffers, so every other segment
/// was built in fresh memory, page-faulted in (a fault per 4 KiB of raw data: 10% of
/// the ingest benchmark's CPU) to hold a compressed segment a tenth of its size.
fn seal_one(
    shared: &SessionShared,
    seq: u64,
    cols: Option<Columns>,
    ctx: &Ctx,
    zstd: &mut zstd::bulk::Compressor<'_>,
    tail: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Option<(SegmentNote, SegData)> {
    let wal = spool::wal_path(&shared.dir, seq);
    let cols = match cols {
        Some(cols) => cols,
        None => match read_spilled(&ctx.spool, &ctx.memory, &wal) {
            Ok((cols, damage)) => {
                if let Some(damage) = damage {
                    // Only a bug or a disk fault gets here: the writer appends whole chunks.
                    tracing::error!("{}: {damage}; sealing the {} frames before it", wal.display(), cols.frames());
                }
                cols
            }
            Err(e) => {
                tracing::error!("cannot read {}: {e}; left for recovery", wal.display());
                return None;
            }
        },
    };
    let prev = *shared.chain.lock().expect("chain lock");
    let out = std::mem::take(scratch);
    let sealed = if cols.external {
        match seal_external(&ctx.spool, &wal, cols, shared.id, seq, prev, zstd, out, tail) {
            Ok(sealed) => sealed,
            Err(out) => match read_spilled(&ctx.spool, &ctx.memory, &wal) {
                Ok((cols, damage)) => {
                    if let Some(damage) = damage {
                        tracing::error!("{}: {damage}; sealing the {} frames before it", wal.display(), cols.frames());
                    }
                    seal(cols, shared.id, seq, prev, zstd, out)
                }
                Err(e) => {
                    tracing::error!("cannot read {}: {e}; left for recovery", wal.display());
                    *scratch = out;
                    return None;
                }
            },
        }
    } else {
        seal(cols, shared.id, seq, prev, zstd, out)
    };
    let Some(sealed) = sealed else {
        ctx.spool.discard(&wal);
        return None;
    };
    ctx.memory.recycle(sealed.body);
    *shared.chain.lock().expect("chain lock") = sealed.hash;
    let len = sealed.bytes.len() as u64;
    let in_memory = !shared.stalled.load(Ordering::Relaxed) && ctx.memory.try_take(len);
    let data = in_memory.then(|| Bytes::copy_from_slice(&sealed.bytes));
    let written = in_memory || write_with_retries(&ctx.spool, &spool::seg_path(&shared.dir, seq), &sealed.bytes);
    *scratch = sealed.bytes;
    // A huge segment (one huge frame) must not pin its buffer for good.
    scratch.shrink_to(4 * ctx.memory.buffer_size());
    if let Some(data) = data {
        return Some((sealed.note, SegData::Memory(data)));
    }
    if !written {
        // The WAL is still there: recovery at the next start seals it again. The chain
        // head moved on regardless, as the next segment links to this one's hash.
        return None;
    }
    ctx.spool.add(len);
    ctx.spool.discard(&wal);
    Some((sealed.note, SegData::Spooled))
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
