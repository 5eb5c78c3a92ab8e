//! The spool's write-ahead files (`NNNNNNNN.wal`), format 2: what reaches the disk
//! before anything else, so that a killed process loses only the last flush interval.
//!
//! ```text
//! header: magic "GHWAL\r\n\x1a" (8) | format version u16 LE (2) | 0u16
//! chunk:  meta_len u32 LE | out_len u32 LE | other_len u32 LE | meta | out | other
//! ```
//!
//! Each flush appends one chunk: the bytes each column of the open segment gained since
//! the previous flush (see `columns`), written from the columns themselves with one
//! vectored write. The chunks' columns, concatenated, are the segment body's columns, so
//! sealing from the file is concatenation. A kill mid-write leaves at worst a short last
//! chunk, which reading drops; a chunk whose frame headers do not account for its
//! payload bytes ends the reading too (a disk fault, never a kill).
//!
//! Format 1 files (no header; one row per frame, see `codec`) are still read.

use std::fs::File;
use std::io::{IoSlice, Write};
use std::path::Path;

use super::spool::Spool;
use crate::codec::{EVENT, INPUT, MARKER, OUTPUT, RESIZE, read_varint};
use crate::columns::{BODY_HEADER, Columns};
use crate::error::{Error, Result};
use crate::frame::{Event, FrameData};

const MAGIC: [u8; 8] = *b"GHWAL\r\n\x1a";
/// Spool file format written by this code.
pub(crate) const FORMAT: u16 = 2;
const FILE_HEADER: usize = 12;
const CHUNK_HEADER: usize = 12;

/// The open segment's file, and how much of each column it already holds.
#[derive(Debug)]
pub(crate) struct WalWriter {
    file: Option<File>,
    done: [usize; 3],
}

impl Default for WalWriter {
    fn default() -> Self {
        WalWriter { file: None, done: [BODY_HEADER, 0, 0] }
    }
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

    /// Bytes of `cols` the file does not have yet.
    pub(crate) fn unflushed(&self, cols: &Columns) -> usize {
        self.tails(cols).iter().map(|t| t.len()).sum()
    }

    /// Appends what the file lacks as one chunk, creating the file (with its header) on
    /// first use. Returns the header bytes written, which no frame reserved.
    pub(crate) fn flush(&mut self, spool: &Spool, path: &Path, cols: &Columns) -> Result<u64> {
        let [meta, out, other] = self.tails(cols);
        if meta.is_empty() {
            return Ok(0);
        }
        let mut overhead = CHUNK_HEADER;
        let mut file_header = Vec::new();
        if self.file.is_none() {
            self.file = Some(spool.open_append(path)?);
            file_header.extend_from_slice(&MAGIC);
            file_header.extend_from_slice(&FORMAT.to_le_bytes());
            file_header.extend_from_slice(&[0, 0]);
            overhead += FILE_HEADER;
        }
        let mut chunk = [0u8; CHUNK_HEADER];
        for (i, col) in [meta, out, other].iter().enumerate() {
            chunk[4 * i..4 * i + 4].copy_from_slice(&(col.len() as u32).to_le_bytes());
        }
        let file = self.file.as_mut().expect("just opened");
        let mut parts = [IoSlice::new(&file_header), IoSlice::new(&chunk), IoSlice::new(meta), IoSlice::new(out), IoSlice::new(other)];
        write_all_vectored(file, &mut parts).map_err(|e| Error::io(path, e))?;
        self.done = [cols.out.len().max(BODY_HEADER), cols.meta.len(), cols.other.len()];
        Ok(overhead as u64)
    }

    /// The columns dropped their bytes (all of them in the file already).
    pub(crate) fn dropped(&mut self) {
        self.done = [BODY_HEADER, 0, 0];
    }

    /// The segment is sealed: the next one starts a new file.
    pub(crate) fn close(&mut self) {
        *self = WalWriter::default();
    }
}

/// `Write::write_all_vectored` (not stable yet): one syscall unless the kernel takes less.
fn write_all_vectored(file: &mut File, mut parts: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a spool file's frames into `cols`, up to a torn or damaged part; returns what
/// stopped it early, if anything (a torn tail says "truncated").
pub(crate) fn read(bytes: &[u8], cols: &mut Columns) -> Option<String> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return read_rows(bytes, cols);
    }
    if bytes.len() < FILE_HEADER {
        return Some("truncated: the file header is incomplete".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != FORMAT {
        return Some(format!("spool file format {version}, this build reads 1 and {FORMAT}"));
    }
    let mut pos = FILE_HEADER;
    while pos < bytes.len() {
        let torn = || Some(format!("truncated: the last chunk (at byte {pos}) is incomplete"));
        let Some(header) = bytes.get(pos..pos + CHUNK_HEADER) else { return torn() };
        let len = |i: usize| u32::from_le_bytes(header[4 * i..4 * i + 4].try_into().unwrap()) as usize;
        let (meta_len, out_len, other_len) = (len(0), len(1), len(2));
        let start = pos + CHUNK_HEADER;
        let end = start.checked_add(meta_len + out_len + other_len).filter(|&e| e <= bytes.len());
        let Some(end) = end else { return torn() };
        let (meta, rest) = bytes[start..end].split_at(meta_len);
        let (out, other) = rest.split_at(out_len);
        if let Err(why) = cols.append(meta, out, other) {
            return Some(format!("chunk at byte {pos}: {why}"));
        }
        pos = end;
    }
    None
}

/// Format 1: one row per frame.
fn read_rows(rows: &[u8], cols: &mut Columns) -> Option<String> {
    let mut pos = 0;
    let mut t = 0u64;
    while pos < rows.len() {
        match row(rows, pos, t) {
            Ok((next, frame_t, data)) => {
                cols.push(frame_t, &data);
                t = frame_t;
                pos = next;
            }
            Err(why) => return Some(why),
        }
    }
    None
}

/// Parses the row at `pos`: its end, time and frame.
fn row(rows: &[u8], mut pos: usize, t: u64) -> std::result::Result<(usize, u64, FrameData), String> {
    let at = pos;
    let tag = rows[pos];
    pos += 1;
    let torn = || format!("truncated: the last frame (at byte {at}) is incomplete");
    let bad = |what: &str| format!("frame at byte {at}: {what}");
    let dt = read_varint(rows, &mut pos).ok_or_else(torn)?;
    let frame_t = t.checked_add(dt).ok_or_else(|| bad("time overflows"))?;
    let data = match tag {
        RESIZE => {
            let cols = read_varint(rows, &mut pos).ok_or_else(torn)?;
            let size = read_varint(rows, &mut pos).ok_or_else(torn)?;
            match (u16::try_from(cols), u16::try_from(size)) {
                (Ok(cols), Ok(rows)) => FrameData::Resize { cols, rows },
                _ => return Err(bad(&format!("resize {cols}x{size} out of range"))),
            }
        }
        OUTPUT | INPUT | MARKER | EVENT => {
            let len = read_varint(rows, &mut pos).ok_or_else(torn)?;
            let end = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)).filter(|&e| e <= rows.len());
            let payload = &rows[pos..end.ok_or_else(torn)?];
            pos += payload.len();
            match tag {
                OUTPUT => FrameData::Output(payload.to_vec().into()),
                INPUT => FrameData::Input(payload.to_vec().into()),
                MARKER => FrameData::Marker(String::from_utf8(payload.to_vec()).map_err(|_| bad("marker is not UTF-8"))?),
                _ => FrameData::Event(serde_json::from_slice::<Event>(payload).map_err(|e| bad(&format!("event: {e}")))?),
            }
        }
        other => return Err(bad(&format!("unknown tag {other}"))),
    };
    Ok((pos, frame_t, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::body_of;
    use crate::columns::tests::sample;
    use crate::frame::Frame;

    /// Writes `frames` through a WalWriter, flushing after the frames whose index is in
    /// `flush_after`; returns the file's bytes.
    fn spooled(frames: &[Frame], flush_after: &[usize]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let path = dir.path().join("00000000.wal");
        let (mut cols, mut wal) = (Columns::default(), WalWriter::default());
        for (i, f) in frames.iter().enumerate() {
            cols.push(f.t, &f.data);
            if flush_after.contains(&i) {
                wal.flush(&spool, &path, &cols).unwrap();
                assert_eq!(wal.unflushed(&cols), 0);
            }
        }
        wal.flush(&spool, &path, &cols).unwrap();
        std::fs::read(&path).unwrap()
    }

    fn read_all(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut cols = Columns::default();
        let damage = read(bytes, &mut cols);
        (cols.finish().0, damage)
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
    fn damage_inside_a_chunk_stops_the_reading_there() {
        let frames = sample();
        let mut bytes = spooled(&frames, &[2, 4]);
        // The second chunk's meta column claims a byte of its output column: the chunk
        // keeps its length, its frame headers no longer parse.
        let second = FILE_HEADER + CHUNK_HEADER + crate::columns::tests::body_v1(&frames[..3]).len() - BODY_HEADER;
        bytes[second] += 1;
        bytes[second + 4] -= 1;
        let (body, damage) = read_all(&bytes);
        assert_eq!(body, body_of(&frames[..3]).0);
        assert!(damage.unwrap().contains(&format!("chunk at byte {second}")));
    }
}
