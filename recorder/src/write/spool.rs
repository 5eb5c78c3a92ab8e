//! The local write-ahead spool: one directory per session holding
//!
//! - `lock`: held (advisory `flock`) by the process writing the session, so start-up
//!   recovery in another process never steals a live session; the kernel releases it
//!   when the process dies, SIGKILL included;
//! - `manifest.json`: the session's manifest as this process knows it (metadata, segments
//!   already uploaded, end info once the session finished);
//! - `segments.log`: one JSON line per segment the store acknowledged since the last
//!   time `manifest.json` was saved (appended instead of rewriting the manifest, whose
//!   segment list grows with the session, after every segment);
//! - `NNNNNNNN.wal`: the frames of a segment (see `wal`), written through a mapping,
//!   as long as a segment can grow; it stays until the store has the segment, unless
//!   the sealed segment was spooled:
//! - `NNNNNNNN.seg`: a sealed segment waiting for upload, written when the memory budget
//!   or a store outage keeps it from waiting in memory.
//!
//! - `.free/`: used files waiting for reuse (see `pool`).
//!
//! Space is accounted in one counter against the configured limit.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pool::{FilePool, MappedFile, file_bytes};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, SegmentInfo};

/// The spool directory, its space accounting and its recycled files.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
    pool: FilePool,
    /// A WAL file here got disk space reserved for its mapping: this file system can, so
    /// a segment's first output can wait in memory for the flush that opens its file.
    reserves: AtomicBool,
}

impl Spool {
    /// Opens (creating) the spool directory; counts what is already in it.
    pub(crate) fn open(dir: &Path, limit: u64) -> Result<Spool> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // The pool first: it empties the free files a previous process left.
        let pool = FilePool::open(dir);
        let used = dir_size(dir);
        Ok(Spool { dir: dir.to_path_buf(), limit, used: AtomicU64::new(used), pool, reserves: AtomicBool::new(false) })
    }

    /// Opens a WAL file mapped for writing, at least `capacity` bytes long (a recycled
    /// one when there is one).
    pub(crate) fn open_wal(&self, path: &Path, capacity: u64) -> Result<MappedFile> {
        self.pool.open_mapped(path, capacity).map_err(|e| Error::io(path, e))
    }

    /// Whether this spool's file system is known to reserve space for WAL mappings (see
    /// `wal::WalWriter::write_out`).
    pub(crate) fn reserves_space(&self) -> bool {
        self.reserves.load(Ordering::Relaxed)
    }

    pub(crate) fn note_reserved(&self) {
        self.reserves.store(true, Ordering::Relaxed);
    }

    /// A sealed segment's WAL file, holding `bytes`, until [`Spool::discard`].
    pub(crate) fn retire_wal(&self, path: PathBuf, file: MappedFile, bytes: u64) {
        self.pool.retire(path, file, bytes);
    }

    /// Runs `f` on a retired WAL file's whole mapping, writable (see
    /// [`FilePool::with_retired_mut`]).
    pub(crate) fn with_retired_wal_mut<R>(&self, path: &Path, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        self.pool.with_retired_mut(path, f)
    }

    /// Writes a sealed segment atomically (temp file + rename), so a crash leaves either
    /// no `.seg` or a whole one.
    pub(crate) fn write_segment(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension("seg.tmp");
        let mut f = self.pool.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Gives a used spool file back (emptied, for reuse) and its bytes to the budget.
    pub(crate) fn discard(&self, path: &Path) {
        self.release(self.pool.recycle(path, |map| super::wal::forget(map)));
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn session_dir(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Takes `n` bytes of the budget, or refuses if that would pass the limit.
    pub(crate) fn try_reserve(&self, n: u64) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before + n > self.limit {
            self.used.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts bytes written outside a reservation (sealed segments, file headers). Adding
    /// nothing (most output frames) touches nothing: the counter is shared by every
    /// writer, and a locked add would pull its cache line from the others for each frame.
    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.used.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Gives back bytes whose files were removed.
    pub(crate) fn release(&self, n: u64) {
        // Saturating: accounting for files found at start-up is approximate.
        let _ = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(n)));
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Full for a new session: less than `headroom` bytes free.
    pub(crate) fn is_full(&self, headroom: u64) -> bool {
        self.used() + headroom.min(self.limit / 8) > self.limit
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

pub(crate) fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.wal"))
}

pub(crate) fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.seg"))
}

/// Creates a session's spool directory and takes its lock. The returned file holds the
/// lock for as long as it lives.
pub(crate) fn create_session_dir(dir: &Path) -> Result<File> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let lock = try_lock(dir)?.ok_or_else(|| Error::invalid("spool", format!("{} is locked", dir.display())))?;
    Ok(lock)
}

/// The session directory's lock, or `None` when another process holds it.
pub(crate) fn try_lock(dir: &Path) -> Result<Option<File>> {
    let path = dir.join("lock");
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Writes the local manifest copy atomically (temp file + rename), so a crash leaves
/// either the old or the new one.
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = dir.join("manifest.json.tmp");
    let path = dir.join("manifest.json");
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
    fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

pub(crate) fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = fs::read(dir.join("manifest.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| file_bytes(&e.path(), &m)).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Records that the session finished (or was recovered) with `state`, so a later recovery
/// keeps that state instead of calling it interrupted.
pub(crate) fn write_end(dir: &Path, state: crate::manifest::RecordingState) -> Result<()> {
    let path = dir.join("end.json");
    let json = serde_json::to_vec(&serde_json::json!({ "state": state })).expect("serializes");
    fs::write(&path, json).map_err(|e| Error::io(&path, e))
}

pub(crate) fn read_end(dir: &Path) -> Option<crate::manifest::RecordingState> {
    let bytes = fs::read(dir.join("end.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    serde_json::from_value(value.get("state")?.clone()).ok()
}

/// One line of `segments.log`: a segment the store acknowledged, with its byte counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentNote {
    #[serde(flatten)]
    pub info: SegmentInfo,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl SegmentNote {
    /// Lists the segment in `m`. Idempotent: recovery may upload a segment again whose
    /// first upload was not noted.
    pub(crate) fn apply(&self, m: &mut Manifest) {
        let info = &self.info;
        match m.segments.iter().position(|s| s.seq == info.seq) {
            Some(i) => m.segments[i] = info.clone(),
            None => {
                m.frames += info.frames;
                m.bytes_in += self.bytes_in;
                m.bytes_out += self.bytes_out;
                m.duration = m.duration.max(info.last_t);
                let at = m.segments.partition_point(|s| s.seq < info.seq);
                m.segments.insert(at, info.clone());
            }
        }
        m.chain_head = m.segments.last().map(|s| s.hash.clone());
    }
}

/// Appends `note` to the session's segment log, opening it on first use.
pub(crate) fn append_segment(dir: &Path, log: &mut Option<File>, note: &SegmentNote) -> Result<()> {
    let path = dir.join("segments.log");
    if log.is_none() {
        *log = Some(OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?);
    }
    let mut line = serde_json::to_vec(note).expect("a note always serializes");
    line.push(b'\n');
    log.as_mut().expect("just opened").write_all(&line).map_err(|e| Error::io(&path, e))
}

/// The segment log's notes; a torn last line (a kill mid-append) is skipped.
pub(crate) fn read_segment_log(dir: &Path) -> Vec<SegmentNote> {
    let Ok(bytes) = fs::read(dir.join("segments.log")) else { return Vec::new() };
    bytes.split(|&b| b == b'\n').filter_map(|line| serde_json::from_slice(line).ok()).collect()
}
