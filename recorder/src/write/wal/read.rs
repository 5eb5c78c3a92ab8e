//! Reading a spool file back (recovery, and sealing a segment that spilled): formats 1
//! to 4, up to the first torn or damaged part.

use super::{CHUNK_HEADER, CHUNK_HEADER_2, FILE_HEADER, FILE_HEADER_2, FORMAT, FORMAT_4, MAGIC, OUT_AT};
use crate::codec::{EVENT, INPUT, MARKER, OUTPUT, RESIZE, read_varint};
use crate::columns::Columns;
use crate::frame::{Event, FrameData};

/// Reads a spool file's frames into `cols`, up to a torn or damaged part; returns what
/// stopped it early, if anything (a torn tail says "truncated").
pub(crate) fn read(bytes: &[u8], cols: &mut Columns) -> Option<String> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return read_rows(bytes, cols);
    }
    if bytes.len() < FILE_HEADER_2 {
        return Some("truncated: the file header is incomplete".into());
    }
    match u16::from_le_bytes([bytes[8], bytes[9]]) {
        2 => read_chunks(bytes, FILE_HEADER_2, None, cols),
        FORMAT => {
            let Some(nonce) = bytes.get(12..FILE_HEADER) else {
                return Some("truncated: the file header is incomplete".into());
            };
            if nonce == [0; 8] {
                return None;
            }
            read_chunks(bytes, FILE_HEADER, Some(nonce), cols)
        }
        FORMAT_4 => {
            let (Some(nonce), Some(log)) = (bytes.get(12..FILE_HEADER), bytes.get(20..24)) else {
                return Some("truncated: the file header is incomplete".into());
            };
            if nonce == [0; 8] {
                return None;
            }
            let log = u32::from_le_bytes(log.try_into().expect("4 bytes")) as usize;
            if log < OUT_AT {
                return Some(format!("the chunk log's offset {log} is inside the header"));
            }
            read_chunks_4(bytes, log, nonce, cols)
        }
        version => Some(format!("spool file format {version}, this build reads 1 to {FORMAT_4}")),
    }
}

/// The chunks from `pos` on: format 3's (each carrying `nonce`) or format 2's.
fn read_chunks(bytes: &[u8], mut pos: usize, nonce: Option<&[u8]>, cols: &mut Columns) -> Option<String> {
    let header_len = if nonce.is_some() { CHUNK_HEADER } else { CHUNK_HEADER_2 };
    while pos < bytes.len() {
        let torn = || Some(format!("truncated: the last chunk (at byte {pos}) is incomplete"));
        let Some(mut header) = bytes.get(pos..pos + header_len) else {
            // Format 3: the mapping's unused tail, too short for a chunk.
            return if nonce.is_some() { None } else { torn() };
        };
        if let Some(nonce) = nonce {
            if header[..8] != *nonce {
                // An older segment's chunk, a chunk cut short by a kill, or never written.
                return None;
            }
            header = &header[8..];
        }
        let len = |i: usize| u32::from_le_bytes(header[4 * i..4 * i + 4].try_into().unwrap()) as usize;
        let (meta_len, out_len, other_len) = (len(0), len(1), len(2));
        let start = pos + header_len;
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

/// Format 4's chunk log from `pos` on: each chunk's output bytes are the next ones of
/// the OUT region.
fn read_chunks_4(bytes: &[u8], mut pos: usize, nonce: &[u8], cols: &mut Columns) -> Option<String> {
    let mut out_at = OUT_AT;
    while pos < bytes.len() {
        let torn = || Some(format!("truncated: the last chunk (at byte {pos}) is incomplete"));
        // The file's unused tail, too short for a chunk: the end.
        let header = bytes.get(pos..pos + CHUNK_HEADER)?;
        if header[..8] != *nonce {
            return None;
        }
        let len = |i: usize| u32::from_le_bytes(header[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
        let (meta_len, out_len, other_len) = (len(0), len(1), len(2));
        let start = pos + CHUNK_HEADER;
        let Some(end) = start.checked_add(meta_len + other_len).filter(|&e| e <= bytes.len()) else { return torn() };
        let Some(out_end) = out_at.checked_add(out_len).filter(|&e| e <= pos.min(bytes.len())) else {
            return Some(format!("chunk at byte {pos}: its {out_len} output bytes run past the output region"));
        };
        let (meta, other) = bytes[start..end].split_at(meta_len);
        if let Err(why) = cols.append(meta, &bytes[out_at..out_end], other) {
            return Some(format!("chunk at byte {pos}: {why}"));
        }
        out_at = out_end;
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
