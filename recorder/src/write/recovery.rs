//! Start-up recovery: whatever a previous process left in the spool (it crashed, was
//! killed, or exited before the store came back) is sealed and queued for upload.
//! Sessions that never finished become `interrupted`, holding every frame that reached
//! the spool file; sessions that finished keep their state.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use time::Duration;
use uuid::Uuid;

use super::sealer::{read_wal, seal};
use super::session::SessionShared;
use super::spool::{self, SegmentNote, Spool};
use crate::error::Result;
use crate::frame::{Frame, FrameData};
use crate::layout;
use crate::manifest::{Manifest, RecordingState, SegmentInfo, SessionMeta};
use crate::segment;

/// One session found in the spool.
pub(crate) struct Recovered {
    pub shared: Arc<SessionShared>,
    /// Segments to upload (spooled as `.seg` files), with their byte counts.
    pub segments: Vec<SegmentNote>,
    pub state: RecordingState,
}

/// Files of one sequence number.
#[derive(Default)]
struct Files {
    seg: bool,
    wal: bool,
}

/// Scans the spool. Sessions locked by a live process are left alone.
pub(crate) fn recover(spool: &Spool, level: i32) -> Result<Vec<Recovered>> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(spool.dir()) else { return Ok(out) };
    let mut zstd = crate::segment::compressor(level);
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(id) = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<Uuid>().ok()) else {
            continue;
        };
        if !dir.is_dir() {
            continue;
        }
        match recover_session(spool, &dir, id, &mut zstd) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(e) => tracing::error!("cannot recover session {id} from {}: {e}", dir.display()),
        }
    }
    Ok(out)
}

fn recover_session(spool: &Spool, dir: &Path, id: Uuid, zstd: &mut zstd::bulk::Compressor<'_>) -> Result<Option<Recovered>> {
    let Some(lock) = spool::try_lock(dir)? else {
        return Ok(None); // live in another process
    };
    let mut manifest = match spool::read_manifest(dir) {
        Some(m) => m,
        None => {
            let started = layout::id_time(id)?;
            let mut m = Manifest::new(id, SessionMeta::default(), started);
            m.losses.push("the local manifest was lost; metadata unknown".into());
            m
        }
    };
    // Segments the store acknowledged since the manifest was last saved.
    for note in spool::read_segment_log(dir) {
        note.apply(&mut manifest);
    }
    let end_state = spool::read_end(dir);
    let mut files: BTreeMap<u64, Files> = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| crate::Error::io(dir, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            spool.discard(&entry.path());
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else { continue };
        let Ok(seq) = stem.parse::<u64>() else { continue };
        let f = files.entry(seq).or_default();
        match ext {
            "seg" => f.seg = true,
            "wal" => f.wal = true,
            _ => {}
        }
    }
    let mut chain = manifest.chain_head.as_deref().and_then(unhex).unwrap_or([0; 32]);
    let mut segments = Vec::new();
    let mut last_t = manifest.duration;
    for (seq, f) in files {
        let (seg, wal) = (spool::seg_path(dir, seq), spool::wal_path(dir, seq));
        if manifest.segments.iter().any(|s| s.seq == seq) {
            // Already in the store; only the clean-up was missed.
            spool.discard(&seg);
            spool.discard(&wal);
            continue;
        }
        let sealed = if f.seg { read_sealed(&seg, id, seq) } else { None };
        let found = match sealed {
            Some(found) => {
                spool.discard(&wal);
                Some(found)
            }
            None if f.wal => reseal(spool, (&wal, &seg), id, seq, &chain, zstd, &mut manifest),
            None => {
                manifest.losses.push(format!("sealed segment {seq} in the spool was unreadable"));
                None
            }
        };
        if let Some((note, hash)) = found {
            chain = hash;
            last_t = last_t.max(note.info.last_t);
            segments.push(note);
        }
    }
    let state = end_state.unwrap_or(RecordingState::Interrupted);
    if manifest.ended_at.is_none() {
        manifest.ended_at = Some(manifest.started_at + Duration::microseconds(last_t as i64));
        manifest.end_reason =
            Some("interrupted: the recorder stopped before the session ended; recovered from the spool".into());
    }
    spool::write_manifest(dir, &manifest)?;
    spool::write_end(dir, state)?;
    let shared = Arc::new(SessionShared::new(id, dir.to_path_buf(), manifest, chain, lock));
    Ok(Some(Recovered { shared, segments, state }))
}

type Found = (SegmentNote, [u8; 32]);

/// A sealed segment left in the spool, checked.
fn read_sealed(path: &Path, id: Uuid, seq: u64) -> Option<Found> {
    let bytes = fs::read(path).ok()?;
    let name = path.display().to_string();
    let checked = segment::open(&bytes, &name).and_then(|(h, body)| Ok((segment::frames(&h, body.clone(), &name)?, h)));
    match checked {
        Ok((frames, h)) if h.session == id && h.seq == seq => {
            let hash = segment::hash(&bytes);
            let info = info(seq, &frames, h.raw_len as u64, bytes.len() as u64, &hash);
            Some((SegmentNote { info, bytes_in: count(&frames, true), bytes_out: count(&frames, false) }, hash))
        }
        Ok(_) => {
            tracing::error!("{name} belongs to another session or position");
            None
        }
        Err(e) => {
            tracing::error!("{e}");
            None
        }
    }
}

/// Seals what a WAL file holds, up to a torn last chunk, into a `.seg` file.
fn reseal(
    spool: &Spool,
    (wal, seg): (&Path, &Path),
    id: Uuid,
    seq: u64,
    chain: &[u8; 32],
    zstd: &mut zstd::bulk::Compressor<'_>,
    manifest: &mut Manifest,
) -> Option<Found> {
    let (cols, damage) = read_wal(wal, &mut Vec::new()).ok()?;
    let frames = cols.frames();
    let Some(sealed) = seal(cols, id, seq, *chain, zstd, Vec::new()) else {
        spool.discard(wal);
        return None;
    };
    if let Some(damage) = damage.filter(|d| !d.starts_with("truncated")) {
        // A torn last chunk is what a kill leaves; anything else is worth a note.
        manifest.losses.push(format!("spool file of segment {seq} damaged after {frames} frames: {damage}"));
    }
    if let Err(e) = spool.write_segment(seg, &sealed.bytes) {
        tracing::error!("{e}");
        return None;
    }
    spool.add(sealed.bytes.len() as u64);
    spool.discard(wal);
    Some((sealed.note, sealed.hash))
}

fn info(seq: u64, frames: &[Frame], raw: u64, stored: u64, hash: &[u8; 32]) -> SegmentInfo {
    SegmentInfo {
        seq,
        first_t: frames.first().map_or(0, |f| f.t),
        last_t: frames.last().map_or(0, |f| f.t),
        frames: frames.len() as u64,
        raw_bytes: raw,
        stored_bytes: stored,
        hash: segment::hex(hash),
    }
}

/// Input (`true`) or output bytes in `frames`.
fn count(frames: &[Frame], input: bool) -> u64 {
    frames
        .iter()
        .map(|f| match (&f.data, input) {
            (FrameData::Input(b), true) | (FrameData::Output(b), false) => b.len() as u64,
            _ => 0,
        })
        .sum()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
