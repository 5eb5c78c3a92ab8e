//! The spool's write-ahead files (`NNNNNNNN.wal`), formats 3 and 4: what reaches the page
//! cache before anything else, so that a killed process loses only the last flush
//! interval.
//!
//! ```text
//! header: magic "GHWAL\r\n\x1a" (8) | format version u16 LE (2) | 0u16 | nonce u64 LE
//! chunk:  nonce u64 LE | meta_len u32 LE | out_len u32 LE | other_len u32 LE | meta | out | other
//! ```
//!
//! Each flush appends one chunk: the bytes each column of the open segment gained since
//! the previous flush (see `columns`). The chunks' columns, concatenated, are the segment
//! body's columns, so sealing from the file is concatenation.
//!
//! The file is written through a shared mapping, as long as a segment can grow, and
//! files are reused (see `pool`): writing a chunk is a copy into pages that are already
//! there, with no system call. A reused file still holds an older segment's chunks past
//! the end of the new ones, so every chunk carries the file's nonce, a random number
//! drawn when the file header is written, and reading stops at the first chunk that does
//! not. A chunk's nonce is written after the rest of it: a kill mid-copy leaves a chunk
//! that does not count. A file whose header nonce is 0 holds no frames: that is how a
//! file is emptied for reuse ([`forget`]), and a fresh file reads so too.
//!
//! **Format 4** takes the output column straight from the session: each output payload
//! goes into the file's output region as it is written (small ones gathered a few KiB
//! at a time first, see [`STAGE`]); the chunks then carry the other columns and say how
//! many output bytes they commit.
//!
//! ```text
//! header: format 3's header | chunk log offset u32 LE | 0u32           (28 bytes)
//! 4088:   8 bytes the sealer fills with the body's column header
//! 4096:   output region: output payloads back to back
//! log:    chunks as in format 3, without the `out` bytes (out_len: bytes of the output
//!         region this chunk commits, in order)
//! ```
//!
//! Output past the last chunk's commit does not count (a kill loses it as it loses an
//! unflushed chunk). The sealer compresses the region in place, from the mapping (see
//! `sealer`). A segment uses format 3 instead when the file system cannot reserve space
//! for a mapping, or for a payload larger than the region.
//!
//! Formats 1 (no header; one row per frame, see `codec`) and 2 (format 3 without the
//! nonces, append-only) are still read.

use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{Ordering, fence};

mod read;

pub(crate) use read::read;

use super::pool::MappedFile;
use super::spool::Spool;
use crate::columns::{BODY_HEADER, Columns};
use crate::error::{Error, Result};

const MAGIC: [u8; 8] = *b"GHWAL\r\n\x1a";
/// Spool file format written by this code for segments kept in memory.
pub(crate) const FORMAT: u16 = 3;
/// Spool file format whose output goes straight into the file (see [`OUT_AT`]).
pub(crate) const FORMAT_4: u16 = 4;
/// Format 4's header: format 3's, then the chunk log's offset (u32 LE) and 4 zero bytes.
const FILE_HEADER_4: usize = 28;
const FILE_HEADER: usize = 20;
const CHUNK_HEADER: usize = 20;
/// Format 2's headers: no nonces.
const FILE_HEADER_2: usize = 12;
const CHUNK_HEADER_2: usize = 12;

/// The open segment's file, and how much of each column it already holds.
#[derive(Debug)]
pub(crate) struct WalWriter {
    file: Option<MappedFile>,
    /// Bytes of the file in use: the header and whole chunks.
    at: usize,
    nonce: u64,
    done: [usize; 3],
    /// Format 4: output bytes written into the OUT region, and those a chunk committed.
    pub(crate) out_pos: usize,
    committed_out: usize,
    external: bool,
    /// Format 4: the last output bytes before `out_pos`, not copied into the file yet
    /// (see [`STAGE`]).
    stage: Vec<u8>,
}

/// Format 4 gathers small output payloads (a keystroke's echo, a line) in a buffer of
/// this size that stays in the CPU's cache, and copies them into the file a buffer at a
/// time, with streaming stores (see [`copy_to_page_cache`]): copied one by one, each would
/// first read the file's cache lines it lands in from memory. The buffer reaches the file
/// before every chunk commits its output, so a kill loses no more than before: output
/// past the last chunk never counted.
const STAGE: usize = 8 << 10;

impl Default for WalWriter {
    fn default() -> Self {
        WalWriter {
            file: None,
            at: 0,
            nonce: 0,
            done: [BODY_HEADER, 0, 0],
            out_pos: 0,
            committed_out: 0,
            external: false,
            stage: Vec::new(),
        }
    }
}

/// Format 4: where the output region starts (the 8 bytes before it take the segment
/// body's header when the sealer compresses the region in place).
pub(crate) const OUT_AT: usize = 4096;
/// Format 4: where the chunk log starts, behind an output region of `capacity` bytes.
pub(crate) fn log_at(capacity: usize) -> usize {
    OUT_AT + capacity.next_multiple_of(4096)
}

/// A random, non-zero number: the std hasher's keys come from the OS's random source.
fn new_nonce() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish().max(1)
}

impl WalWriter {
    fn tails<'a>(&self, cols: &'a Columns) -> [&'a [u8]; 3] {
        let [out, meta, other] = self.done;
        [
            cols.meta.get(meta..).unwrap_or_default(),
            cols.out.get(out..).unwrap_or_default(),
            cols.other.get(other..).unwrap_or_default(),
        ]
    }

    /// Bytes of `cols` the file does not have yet (for a segment whose output goes
    /// straight to the file, its output bytes not committed by a chunk yet).
    pub(crate) fn unflushed(&self, cols: &Columns) -> usize {
        self.tails(cols).iter().map(|t| t.len()).sum::<usize>() + (self.out_pos - self.committed_out)
    }

    /// Of those, the bytes the columns hold in memory.
    pub(crate) fn unflushed_in_memory(&self, cols: &Columns) -> usize {
        self.tails(cols).iter().map(|t| t.len()).sum()
    }

    /// Appends what the file lacks as one chunk, opening the file (`capacity` bytes,
    /// with its header) on first use, in format 4 if `cols` is external and the file
    /// system can reserve space, else format 3. Returns the header bytes written, which
    /// no frame reserved.
    pub(crate) fn flush(&mut self, spool: &Spool, path: &Path, capacity: usize, cols: &Columns) -> Result<u64> {
        let [meta, out, other] = self.tails(cols);
        if meta.is_empty() {
            return Ok(0);
        }
        let mut overhead = CHUNK_HEADER;
        if self.file.is_none() {
            self.open(spool, path, capacity, cols.external)?;
            overhead += FILE_HEADER_4;
        }
        self.unstage();
        let out_len = if self.external { self.out_pos - self.committed_out } else { out.len() };
        let out = if self.external { &[][..] } else { out };
        self.append_chunk(path, cols, meta, out, out_len, other)?;
        self.committed_out = self.out_pos;
        Ok(overhead as u64)
    }

    /// Copies an output payload into the OUT region, opening the file (format 4) on
    /// first use. `Ok(None)`: this file cannot take output directly (the file system
    /// cannot reserve space, or it opened in format 3); the caller keeps the output in
    /// its columns. Else the header bytes written.
    ///
    /// A small payload while the file is not open yet (a segment's first keystroke echo)
    /// waits in the stage instead, once the spool's file system is known to reserve
    /// space: opening the file takes a rename, an `fallocate` and a page fault, file
    /// system work that can wait on the journal, and the flush that opens it runs on the
    /// ticker (or on a session streaming output, which flushes every 64 KiB anyway), not
    /// between a keystroke and its echo.
    pub(crate) fn write_out(&mut self, spool: &Spool, path: impl FnOnce() -> std::path::PathBuf, capacity: usize, payload: &[u8]) -> Result<Option<u64>> {
        let mut overhead = 0;
        if self.file.is_none() && spool.reserves_space() && self.stage.len() + payload.len() <= STAGE / 2 {
            self.stage_out(payload);
            return Ok(Some(0));
        }
        if self.file.is_none() {
            let path = path();
            self.open(spool, &path, capacity, true)?;
            overhead = FILE_HEADER_4 as u64;
        }
        if !self.external {
            return Ok(None);
        }
        let file = self.file.as_mut().expect("open");
        let (at, end) = (OUT_AT + self.out_pos, OUT_AT + self.out_pos + payload.len());
        if end > log_at(capacity) {
            return Err(Error::invalid("segment output", "past the write-ahead file's output region"));
        }
        if !file.reserve(end as u64).map_err(|e| Error::invalid("spool", e.to_string()))? {
            return Err(Error::invalid("spool", "cannot reserve space any more"));
        }
        let big = payload.len() > STAGE / 2;
        if big || self.stage.len() + payload.len() > STAGE {
            self.unstage();
        }
        if big {
            let file = self.file.as_mut().expect("open");
            copy_to_page_cache(&mut file.map[at..end], payload);
            self.out_pos += payload.len();
        } else {
            self.stage_out(payload);
        }
        Ok(Some(overhead))
    }

    /// Adds an output payload to the stage (see [`STAGE`]).
    fn stage_out(&mut self, payload: &[u8]) {
        if self.stage.capacity() == 0 {
            self.stage.reserve_exact(STAGE);
        }
        self.stage.extend_from_slice(payload);
        self.out_pos += payload.len();
    }

    /// Copies the staged output into the file.
    fn unstage(&mut self) {
        if let (false, Some(file)) = (self.stage.is_empty(), self.file.as_mut()) {
            let at = OUT_AT + self.out_pos - self.stage.len();
            copy_to_page_cache(&mut file.map[at..OUT_AT + self.out_pos], &self.stage);
        }
        self.stage.clear();
    }

    /// Gives the staging buffer's memory back (a session between bursts of output).
    pub(crate) fn release_stage(&mut self) {
        if self.stage.is_empty() {
            self.stage = Vec::new();
        }
    }

    /// Where the next output byte goes, to undo frames (see `Columns::rollback`).
    pub(crate) fn out_mark(&self) -> usize {
        self.out_pos
    }

    pub(crate) fn out_rollback(&mut self, mark: usize) {
        let pos = mark.max(self.committed_out);
        // Staged bytes past `pos` go; if some of the dropped output had reached the file
        // already, so had everything staged (the stage only holds the newest bytes).
        let staged_from = self.out_pos - self.stage.len();
        if pos >= staged_from {
            self.stage.truncate(pos - staged_from);
        } else {
            self.stage.clear();
        }
        self.out_pos = pos;
    }

    /// Opens the segment's file and writes its header: format 4 (output region, chunk
    /// log behind it) when `external` and the file system can reserve space for the
    /// mapping, else format 3.
    fn open(&mut self, spool: &Spool, path: &Path, capacity: usize, external: bool) -> Result<()> {
        let mut file = spool.open_wal(path, (log_at(capacity) + capacity + FILE_HEADER_4) as u64)?;
        // Format 4 reserves disk space for its output region and its chunk log apart.
        file.set_second_region(if external { log_at(capacity) as u64 } else { u64::MAX });
        self.nonce = new_nonce();
        let reservable = file.reserve(FILE_HEADER_4 as u64).map_err(|e| Error::io(path, e))?;
        if reservable {
            spool.note_reserved();
        }
        if self.out_pos > 0 {
            // Output waited in the stage for this file (see `write_out`): its place in
            // the output region needs disk space too.
            let staged_end = (OUT_AT + self.out_pos) as u64;
            if !(reservable && file.reserve(staged_end).map_err(|e| Error::io(path, e))?) {
                return Err(Error::invalid("spool", "cannot reserve space any more"));
            }
        }
        self.external = external && reservable;
        let (version, header_len, log) = if self.external {
            (FORMAT_4, FILE_HEADER_4, log_at(capacity))
        } else {
            (FORMAT, FILE_HEADER, FILE_HEADER)
        };
        let mut header = [0u8; FILE_HEADER_4];
        header[..8].copy_from_slice(&MAGIC);
        header[8..10].copy_from_slice(&version.to_le_bytes());
        header[20..24].copy_from_slice(&(log as u32).to_le_bytes());
        let nonce = self.nonce.to_le_bytes();
        if reservable {
            file.map[..12].copy_from_slice(&header[..12]);
            file.map[20..header_len].copy_from_slice(&header[20..header_len]);
            fence(Ordering::Release);
            file.map[12..20].copy_from_slice(&nonce);
        } else {
            let f = &file.file;
            f.write_all_at(&header[..12], 0).and_then(|()| f.write_all_at(&nonce, 12)).map_err(|e| Error::io(path, e))?;
        }
        self.file = Some(file);
        self.at = log;
        Ok(())
    }

    /// Appends a chunk: its header says `out_len` output bytes (in the chunk when `out`
    /// holds them, format 3; in the OUT region, format 4).
    fn append_chunk(&mut self, path: &Path, cols: &Columns, meta: &[u8], out: &[u8], out_len: usize, other: &[u8]) -> Result<()> {
        let file = self.file.as_mut().expect("just opened");
        let len = CHUNK_HEADER + meta.len() + out.len() + other.len();
        let mut lens = [0u8; CHUNK_HEADER - 8];
        for (i, n) in [meta.len(), out_len, other.len()].into_iter().enumerate() {
            lens[4 * i..4 * i + 4].copy_from_slice(&(n as u32).to_le_bytes());
        }
        let (at, end) = (self.at, self.at + len);
        let nonce = self.nonce.to_le_bytes();
        if end <= file.map.len() && file.reserve(end as u64).map_err(|e| Error::io(path, e))? {
            let chunk = &mut file.map[at..end];
            let mut pos = CHUNK_HEADER;
            for col in [meta, out, other] {
                copy_to_page_cache(&mut chunk[pos..pos + col.len()], col);
                pos += col.len();
            }
            chunk[8..CHUNK_HEADER].copy_from_slice(&lens);
            // The nonce last: the chunk counts only once the rest of it is there.
            fence(Ordering::Release);
            chunk[..8].copy_from_slice(&nonce);
        } else {
            // Past the mapping (a segment that outgrew its capacity with one huge frame),
            // or on a file system that cannot reserve disk space: plain writes (extending
            // the file), the nonce last all the same.
            let mut rest = Vec::with_capacity(len - 8);
            rest.extend_from_slice(&lens);
            for col in [meta, out, other] {
                rest.extend_from_slice(col);
            }
            let f = &file.file;
            f.write_all_at(&rest, at as u64 + 8).and_then(|()| f.write_all_at(&nonce, at as u64)).map_err(|e| Error::io(path, e))?;
        }
        self.at = end;
        self.done = [cols.out.len().max(BODY_HEADER), cols.meta.len(), cols.other.len()];
        Ok(())
    }

    /// The columns dropped their bytes (all of them in the file already).
    pub(crate) fn dropped(&mut self) {
        self.done = [BODY_HEADER, 0, 0];
    }

    /// The segment is sealed: its file goes to the spool until the segment is safe in
    /// the store, and the next segment starts a new one.
    pub(crate) fn close(&mut self, spool: &Spool, path: &Path) {
        debug_assert!(self.stage.is_empty(), "a segment is flushed before it is sealed");
        if let Some(file) = self.file.take() {
            spool.retire_wal(path.to_path_buf(), file, self.at as u64);
        }
        // The staging buffer goes too: a session sealed for size may fall quiet now.
        *self = WalWriter::default();
    }
}

/// Copies `src` into the mapping with non-temporal (streaming) stores where the CPU has
/// them: the chunk is not read again unless the segment spills, so its bytes skip the
/// caches instead of evicting what the sealers' compressors work on, and the CPU need
/// not read each destination line before overwriting it. Small copies use `memcpy`.
fn copy_to_page_cache(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    if src.len() >= 4096 {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
        // Up to the first 16-byte boundary of the destination with memcpy.
        let head = dst.as_ptr().align_offset(16).min(src.len());
        dst[..head].copy_from_slice(&src[..head]);
        let body = (src.len() - head) / 64 * 64;
        // SAFETY: SSE2 is part of x86_64; every pointer stays within `src` and `dst`
        // (`head + body <= len`), and the stores are 16-byte aligned (`head` aligns them).
        unsafe {
            let (mut s, mut d) = (src.as_ptr().add(head), dst.as_mut_ptr().add(head));
            let end = d.add(body);
            while d < end {
                for i in 0..4 {
                    let v = _mm_loadu_si128(s.add(16 * i) as *const __m128i);
                    _mm_stream_si128(d.add(16 * i) as *mut __m128i, v);
                }
                s = s.add(64);
                d = d.add(64);
            }
            // Streaming stores are weakly ordered: fence them before the chunk's nonce.
            _mm_sfence();
        }
        dst[head + body..].copy_from_slice(&src[head + body..]);
        return;
    }
    dst.copy_from_slice(src);
}

/// Empties a mapped WAL file for reuse: its header's nonce becomes 0, so that none of
/// its chunks reads as frames, wherever the file goes next.
pub(crate) fn forget(map: &mut [u8]) {
    if map.len() >= FILE_HEADER && map[..8] == MAGIC {
        map[12..FILE_HEADER].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::body_of;
    use crate::columns::tests::sample;
    use crate::frame::{Frame, FrameData};

    /// Writes `frames` through a WalWriter into `path` of `spool`, with room for
    /// `capacity` bytes in its mapping, flushing after the frames whose index is in
    /// `flush_after`; returns the bytes the file holds (its used part).
    fn spool_frames(spool: &Spool, path: &Path, capacity: usize, frames: &[Frame], flush_after: &[usize]) -> Vec<u8> {
        let (mut cols, mut wal) = (Columns::default(), WalWriter::default());
        for (i, f) in frames.iter().enumerate() {
            cols.push(f.t, &f.data);
            if flush_after.contains(&i) {
                wal.flush(spool, path, capacity, &cols).unwrap();
                assert_eq!(wal.unflushed(&cols), 0);
            }
        }
        wal.flush(spool, path, capacity, &cols).unwrap();
        let used = wal.at;
        wal.close(spool, path);
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() >= used);
        bytes[..used].to_vec()
    }

    fn spooled(frames: &[Frame], flush_after: &[usize]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        spool_frames(&spool, &dir.path().join("00000000.wal"), 1 << 16, frames, flush_after)
    }

    /// Where a format 3 file's chunks start.
    fn chunk_starts(bytes: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut pos = FILE_HEADER;
        while pos < bytes.len() {
            starts.push(pos);
            let len = |i: usize| u32::from_le_bytes(bytes[pos + 8 + 4 * i..pos + 12 + 4 * i].try_into().unwrap()) as usize;
            pos += CHUNK_HEADER + len(0) + len(1) + len(2);
        }
        starts
    }

    fn read_all(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut cols = Columns::default();
        let damage = read(bytes, &mut cols);
        (cols.finish().0, damage)
    }

    #[test]
    fn streaming_copies_are_exact_at_any_length_and_alignment() {
        let src: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, 15, 4095, 4096, 4097, 4160, 9999, 16_384] {
            for (d_off, s_off) in [(0, 0), (1, 0), (7, 3), (15, 9), (16, 1)] {
                let mut dst = vec![0xAAu8; len + 64];
                copy_to_page_cache(&mut dst[d_off..d_off + len], &src[s_off..s_off + len]);
                assert_eq!(&dst[d_off..d_off + len], &src[s_off..s_off + len], "len {len}, offsets {d_off}/{s_off}");
                assert!(dst[..d_off].iter().chain(&dst[d_off + len..]).all(|&b| b == 0xAA), "wrote outside");
            }
        }
    }

    /// Writes `frames` as a proxy session does (format 4: output straight into the
    /// file), flushing after the frames whose index is in `flush_after`, and stopping
    /// short of a last flush when `last_flush` is false; returns the writer, still open.
    fn direct(spool: &Spool, path: &Path, frames: &[Frame], flush_after: &[usize], last_flush: bool) -> WalWriter {
        let (mut cols, mut wal) = (Columns { external: true, ..Columns::default() }, WalWriter::default());
        for (i, f) in frames.iter().enumerate() {
            if let FrameData::Output(b) = &f.data {
                assert!(wal.write_out(spool, || path.to_path_buf(), 1 << 16, b).unwrap().is_some(), "this file system reserves space");
            }
            cols.push(f.t, &f.data);
            if flush_after.contains(&i) {
                wal.flush(spool, path, 1 << 16, &cols).unwrap();
                assert_eq!(wal.unflushed(&cols), 0);
            }
        }
        if last_flush {
            wal.flush(spool, path, 1 << 16, &cols).unwrap();
        }
        wal
    }

    #[test]
    fn output_written_straight_into_the_file_reads_back_as_the_segment_body() {
        let frames = sample();
        assert!(frames.iter().any(|f| matches!(f.data, FrameData::Output(_))));
        for known in [false, true] {
            for flushes in [&[][..], &[0, 1, 2, 3, 4, 5], &[2, 4]] {
                let (_dir, spool, path) = spool_for_output(known);
                drop(direct(&spool, &path, &frames, flushes, true));
                let whole = std::fs::read(&path).unwrap();
                assert_eq!(u16::from_le_bytes([whole[8], whole[9]]), FORMAT_4);
                assert_eq!(read_all(&whole), (body_of(&frames).0, None), "flushes {flushes:?}, known {known}");
            }
        }
    }

    /// A spool and a WAL path in a new directory; `known`: as if an earlier segment had
    /// shown that its file system reserves space (so first output may wait in the stage).
    fn spool_for_output(known: bool) -> (tempfile::TempDir, Spool, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        if known {
            spool.note_reserved();
        }
        let path = dir.path().join("00000000.wal");
        (dir, spool, path)
    }

    #[test]
    fn a_first_small_output_waits_for_the_flush_that_opens_the_file() {
        // The first segment learns that the file system reserves space; the next one's
        // first echoes stay in memory until a flush (the ticker's) opens its file.
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let frames = [Frame { t: 1, data: FrameData::Input("l".into()) }, Frame { t: 2, data: FrameData::Output("l".into()) }];
        for seq in 0..2 {
            let path = dir.path().join(format!("{seq:08}.wal"));
            let (mut cols, mut wal) = (Columns { external: true, ..Columns::default() }, WalWriter::default());
            for f in &frames {
                if let FrameData::Output(b) = &f.data {
                    assert_eq!(wal.write_out(&spool, || path.clone(), 1 << 16, b).unwrap(), Some(if seq == 0 { FILE_HEADER_4 as u64 } else { 0 }));
                }
                cols.push(f.t, &f.data);
            }
            assert_eq!(path.exists(), seq == 0, "segment {seq}: file opened by its first output");
            assert_eq!(wal.unflushed(&cols), wal.unflushed_in_memory(&cols) + 1);
            let header = wal.flush(&spool, &path, 1 << 16, &cols).unwrap();
            assert_eq!(header, (CHUNK_HEADER + if seq == 0 { 0 } else { FILE_HEADER_4 }) as u64);
            let whole = std::fs::read(&path).unwrap();
            assert_eq!(read_all(&whole), (body_of(&frames).0, None), "segment {seq}");
            wal.close(&spool, &path);
        }
    }

    #[test]
    fn staged_and_large_output_and_undone_frames_read_back_exactly() {
        // Output payloads around the staging buffer's size, some undone after they were
        // written (a frame the spool had no room for), flushes in between: the file reads
        // as the frames that stayed, byte for byte.
        let sizes = [1, 700, STAGE / 2, STAGE / 2 + 1, 3000, 3000, 3000, 2 * STAGE + 5, 9, STAGE, 1, 4095, 4096, 4097, 5, 20];
        for (flush_every, known) in [1, 3, 5, usize::MAX].into_iter().flat_map(|f| [(f, false), (f, true)]) {
            for undo_every in [2, 4, usize::MAX] {
                let (_dir, spool, path) = spool_for_output(known);
                let (mut cols, mut wal) = (Columns { external: true, ..Columns::default() }, WalWriter::default());
                let mut kept = Vec::new();
                for (i, &n) in sizes.iter().enumerate() {
                    let payload: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7 + j / 253) as u8).collect();
                    let frame = Frame { t: i as u64 * 10, data: FrameData::Output(payload.clone().into()) };
                    let mark = wal.out_mark();
                    wal.write_out(&spool, || path.clone(), 1 << 20, &payload).unwrap();
                    if (i + 1) % undo_every == 0 {
                        wal.out_rollback(mark);
                        continue;
                    }
                    cols.push(frame.t, &frame.data);
                    kept.push(frame);
                    if (i + 1) % flush_every == 0 {
                        // Each flush commits every frame so far.
                        wal.flush(&spool, &path, 1 << 20, &cols).unwrap();
                        let whole = std::fs::read(&path).unwrap();
                        assert_eq!(read_all(&whole), (body_of(&kept).0, None), "flush every {flush_every}, undo every {undo_every}, known {known}, frame {i}");
                    }
                }
                wal.flush(&spool, &path, 1 << 20, &cols).unwrap();
                let whole = std::fs::read(&path).unwrap();
                assert_eq!(read_all(&whole), (body_of(&kept).0, None), "flush every {flush_every}, undo every {undo_every}, known {known}");
            }
        }
    }

    #[test]
    fn output_no_chunk_committed_does_not_count() {
        // A kill after frames reached the output region but before a chunk committed
        // them: the file reads as the frames of the chunks before.
        let frames = sample();
        for known in [false, true] {
            let (_dir, spool, path) = spool_for_output(known);
            let wal = direct(&spool, &path, &frames, &[2], false);
            assert!(wal.out_pos > wal.committed_out, "output past the last chunk");
            let whole = std::fs::read(&path).unwrap();
            assert_eq!(read_all(&whole), (body_of(&frames[..3]).0, None), "known {known}");
        }
    }

    #[test]
    fn chunks_read_back_as_the_segment_body() {
        let frames = sample();
        for flushes in [&[][..], &[0, 1, 2, 3, 4, 5], &[2, 4]] {
            let bytes = spooled(&frames, flushes);
            assert_eq!(read_all(&bytes), (body_of(&frames).0, None), "flushes {flushes:?}");
        }
    }

    #[test]
    fn the_whole_file_reads_as_its_chunks_mapped_or_past_the_mapping() {
        let frames = sample();
        // Capacity 0: every chunk lies past the mapping, written with plain writes; 40:
        // the first chunk fits, the others do not.
        for capacity in [0, 40, 1 << 16] {
            let dir = tempfile::tempdir().unwrap();
            let spool = Spool::open(dir.path(), 1 << 30).unwrap();
            let path = dir.path().join("00000000.wal");
            spool_frames(&spool, &path, capacity, &frames, &[0, 2, 4]);
            // The file as recovery reads it, unused tail included.
            let whole = std::fs::read(&path).unwrap();
            assert_eq!(read_all(&whole), (body_of(&frames).0, None), "capacity {capacity}");
        }
    }

    #[test]
    fn a_reused_file_reads_as_its_new_chunks_only() {
        let frames = sample();
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let (a, b) = (dir.path().join("00000000.wal"), dir.path().join("00000001.wal"));
        let first = spool_frames(&spool, &a, 1 << 16, &frames, &[0, 1, 2, 3, 4, 5]);
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(&a).unwrap().ino();
        spool.discard(&a);
        assert!(!a.exists());
        // Fewer frames in fewer chunks: the old chunks are still there past them.
        let second = spool_frames(&spool, &b, 1 << 16, &frames[..2], &[]);
        assert_eq!(std::fs::metadata(&b).unwrap().ino(), inode, "the same file, reused mapped");
        assert!(second.len() < first.len());
        let whole = std::fs::read(&b).unwrap();
        assert_eq!(whole[second.len()..first.len()], first[second.len()..], "the old chunks' bytes are still in the file");
        assert_eq!(read_all(&whole), (body_of(&frames[..2]).0, None));
        // Emptied for reuse and not yet written: no frames at all.
        spool.discard(&b);
        let free = std::fs::read_dir(dir.path().join(".free")).unwrap().next().unwrap().unwrap().path();
        assert_eq!(read_all(&std::fs::read(free).unwrap()), (body_of(&[]).0, None));
    }

    #[test]
    fn a_chunk_whose_nonce_was_not_written_does_not_count() {
        let frames = sample();
        let bytes = spooled(&frames, &[2, 4]);
        // A kill after the third chunk's bytes but before its nonce: the file holds
        // whatever was there before (zeros in a new file, another nonce in a reused one).
        let third = chunk_starts(&bytes)[2];
        assert_eq!(read_all(&bytes[..third]), (body_of(&frames[..5]).0, None));
        for stale in [[0u8; 8], 7u64.to_le_bytes()] {
            let mut torn = bytes.clone();
            torn[third..third + 8].copy_from_slice(&stale);
            assert_eq!(read_all(&torn), (body_of(&frames[..5]).0, None));
        }
    }

    #[test]
    fn a_torn_tail_keeps_every_whole_chunk() {
        let frames = sample();
        let bytes = spooled(&frames, &[0, 1, 2, 3, 4, 5]);
        let mut whole = 0;
        for cut in 0..bytes.len() {
            let (body, damage) = read_all(&bytes[..cut]);
            let got = {
                let mut r = crate::columns::ColumnReader::new(body.into(), crate::segment::FORMAT).unwrap();
                std::iter::from_fn(|| r.next_frame()).map(Result::unwrap).collect::<Vec<_>>()
            };
            assert_eq!(got, frames[..got.len()], "cut {cut}");
            assert!(got.len() >= whole, "cut {cut}");
            whole = got.len();
            if cut > 0 {
                assert!(damage.as_ref().is_none_or(|d| d.starts_with("truncated")), "cut {cut}: {damage:?}");
            }
        }
        assert_eq!(whole, frames.len() - 1, "every frame but the last is in a whole chunk before the end");
    }

    #[test]
    fn format_1_rows_are_still_read() {
        let frames = sample();
        let mut rows = Vec::new();
        let mut prev = 0;
        for f in &frames {
            crate::codec::encode(&mut rows, prev, f.t, &f.data);
            prev = f.t;
        }
        assert_eq!(read_all(&rows), (body_of(&frames).0, None));
        let (body, damage) = read_all(&rows[..rows.len() - 1]);
        assert_eq!(body, body_of(&frames[..frames.len() - 1]).0);
        assert!(damage.unwrap().starts_with("truncated"));
    }

    #[test]
    fn format_2_files_are_still_read() {
        let frames = sample();
        let v3 = spooled(&frames, &[1, 3]);
        // The same file in format 2: version 2, no nonces.
        let mut v2 = v3[..FILE_HEADER_2].to_vec();
        v2[8..10].copy_from_slice(&2u16.to_le_bytes());
        let mut starts = chunk_starts(&v3);
        starts.push(v3.len());
        for w in starts.windows(2) {
            v2.extend_from_slice(&v3[w[0] + 8..w[1]]);
        }
        assert_eq!(read_all(&v2), (body_of(&frames).0, None));
        let (body, damage) = read_all(&v2[..v2.len() - 1]);
        assert_eq!(body, body_of(&frames[..4]).0);
        assert!(damage.unwrap().starts_with("truncated"));
    }

    #[test]
    fn damage_inside_a_chunk_stops_the_reading_there() {
        let frames = sample();
        let mut bytes = spooled(&frames, &[2, 4]);
        // The second chunk's meta column claims a byte of its output column: the chunk
        // keeps its length, its frame headers no longer parse.
        let second = chunk_starts(&bytes)[1];
        bytes[second + 8] += 1;
        bytes[second + 12] -= 1;
        let (body, damage) = read_all(&bytes);
        assert_eq!(body, body_of(&frames[..3]).0);
        assert!(damage.unwrap().contains(&format!("chunk at byte {second}")));
    }
}
