//! Segment bodies hold frames as columns, not rows: every output payload back to back,
//! then the frame headers (tag, time delta, length), then the other payloads (input,
//! markers, events). zstd then sees the terminal output as one contiguous text, as if it
//! compressed the output alone, and the small, regular headers as another; interleaving
//! them costs ratio (keystroke-sized frames make the headers a large share of the bytes).
//! Output comes first so that converting rows copies it once, straight into the body.
//!
//! ```text
//! output_len: u32 LE | meta_len: u32 LE | output payloads | meta | other payloads
//! meta, per frame: tag u8 | dt LEB128 | resize: cols LEB128, rows LEB128 | else: len LEB128
//! ```

use bytes::Bytes;

use crate::codec::{EVENT, INPUT, MARKER, OUTPUT, RESIZE, read_varint, varint};
use crate::frame::{Event, Frame, FrameData, Micros};

/// What a conversion from rows found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowStats {
    pub frames: u32,
    pub first_t: Micros,
    pub last_t: Micros,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes of the rows that held whole, valid frames.
    pub good_len: usize,
    /// Why conversion stopped early, if it did (a torn tail says "truncated").
    pub damage: Option<String>,
}

/// Converts spooled rows into a columnar body, up to the first torn or unreadable frame.
#[cfg(test)]
pub(crate) fn from_rows(rows: &[u8]) -> (Vec<u8>, RowStats) {
    let mut body = Vec::new();
    let stats = from_rows_into(rows, &mut body, &mut Scratch::default());
    (body, stats)
}

/// Column buffers kept between conversions: a sealer thread reuses them for every
/// segment instead of allocating (and page-faulting in) megabytes each time.
#[derive(Default)]
pub(crate) struct Scratch {
    meta: Vec<u8>,
    other: Vec<u8>,
}

/// [`from_rows`] into `body` (cleared first), with reusable buffers.
pub(crate) fn from_rows_into(rows: &[u8], body: &mut Vec<u8>, scratch: &mut Scratch) -> RowStats {
    let Scratch { meta, other } = scratch;
    meta.clear();
    other.clear();
    // The body starts with the two lengths (patched at the end), then the output column.
    body.clear();
    body.reserve(rows.len() + 8);
    body.extend_from_slice(&[0; 8]);
    let mut stats = RowStats::default();
    let (mut pos, mut t) = (0usize, 0u64);
    while pos < rows.len() {
        match row(rows, pos, t) {
            Ok((next, frame_t, tag, dt, fields)) => {
                meta.push(tag);
                varint(meta, dt);
                match fields {
                    Fields::Size(cols, rows) => {
                        varint(meta, cols);
                        varint(meta, rows);
                    }
                    Fields::Payload(range) => {
                        let payload = &rows[range];
                        varint(meta, payload.len() as u64);
                        match tag {
                            OUTPUT => {
                                stats.bytes_out += payload.len() as u64;
                                body.extend_from_slice(payload);
                            }
                            INPUT => {
                                stats.bytes_in += payload.len() as u64;
                                other.extend_from_slice(payload);
                            }
                            _ => other.extend_from_slice(payload),
                        }
                    }
                }
                if stats.frames == 0 {
                    stats.first_t = frame_t;
                }
                stats.frames += 1;
                stats.last_t = frame_t;
                t = frame_t;
                pos = next;
            }
            Err(why) => {
                stats.damage = Some(why);
                break;
            }
        }
    }
    stats.good_len = pos;
    let out_len = (body.len() - 8) as u32;
    body[0..4].copy_from_slice(&out_len.to_le_bytes());
    body[4..8].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(meta);
    body.extend_from_slice(other);
    stats
}

enum Fields {
    Size(u64, u64),
    Payload(std::ops::Range<usize>),
}

/// Parses the row at `pos` (without copying): end, time, tag, dt, fields.
fn row(rows: &[u8], mut pos: usize, t: Micros) -> Result<(usize, Micros, u8, u64, Fields), String> {
    let at = pos;
    let tag = rows[pos];
    pos += 1;
    let torn = || format!("truncated: the last frame (at byte {at}) is incomplete");
    let dt = read_varint(rows, &mut pos).ok_or_else(torn)?;
    let frame_t = t.checked_add(dt).ok_or_else(|| format!("frame at byte {at}: time overflows"))?;
    let fields = match tag {
        RESIZE => {
            let cols = read_varint(rows, &mut pos).ok_or_else(torn)?;
            let size = read_varint(rows, &mut pos).ok_or_else(torn)?;
            if cols > u64::from(u16::MAX) || size > u64::from(u16::MAX) {
                return Err(format!("frame at byte {at}: resize {cols}x{size} out of range"));
            }
            Fields::Size(cols, size)
        }
        OUTPUT | INPUT | MARKER | EVENT => {
            let len = read_varint(rows, &mut pos).ok_or_else(torn)?;
            let end = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)).ok_or_else(torn)?;
            if end > rows.len() {
                return Err(torn());
            }
            let range = pos..end;
            pos = end;
            Fields::Payload(range)
        }
        other => return Err(format!("frame at byte {at}: unknown tag {other}")),
    };
    Ok((pos, frame_t, tag, dt, fields))
}

/// Reads frames back from a columnar body; payloads share the body's buffer.
pub(crate) struct ColumnReader {
    body: Bytes,
    meta: usize,
    meta_end: usize,
    out: usize,
    out_end: usize,
    other: usize,
    t: Micros,
}

impl ColumnReader {
    pub(crate) fn new(body: Bytes) -> Result<ColumnReader, String> {
        if body.len() < 8 {
            return Err(format!("body of {} bytes has no column header", body.len()));
        }
        let out_len = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
        let meta_len = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
        let out_end = 8 + out_len;
        let meta_end = out_end + meta_len;
        if meta_end > body.len() {
            return Err(format!("columns of {out_len} + {meta_len} bytes overrun a {}-byte body", body.len()));
        }
        Ok(ColumnReader { body, meta: out_end, meta_end, out: 8, out_end, other: meta_end, t: 0 })
    }

    /// The next frame, an error naming what is wrong, or `None` at the end (which also
    /// checks that every payload byte was claimed by a frame).
    pub(crate) fn next_frame(&mut self) -> Option<Result<Frame, String>> {
        if self.meta >= self.meta_end {
            let left = (self.out_end - self.out) + (self.body.len() - self.other);
            return (left > 0).then(|| Err(format!("{left} payload bytes belong to no frame")));
        }
        Some(self.decode())
    }

    fn decode(&mut self) -> Result<Frame, String> {
        let at = self.meta - self.out_end;
        let meta = &self.body[..self.meta_end];
        let bad = |what: &str| format!("frame header at byte {at}: {what}");
        let tag = meta[self.meta];
        self.meta += 1;
        let dt = read_varint(meta, &mut self.meta).ok_or_else(|| bad("cut short"))?;
        let t = self.t.checked_add(dt).ok_or_else(|| bad("time overflows"))?;
        let data = if tag == RESIZE {
            let cols = read_varint(meta, &mut self.meta).ok_or_else(|| bad("cut short"))?;
            let rows = read_varint(meta, &mut self.meta).ok_or_else(|| bad("cut short"))?;
            match (u16::try_from(cols), u16::try_from(rows)) {
                (Ok(cols), Ok(rows)) => FrameData::Resize { cols, rows },
                _ => return Err(bad("resize out of range")),
            }
        } else {
            let len = read_varint(meta, &mut self.meta).ok_or_else(|| bad("cut short"))?;
            let (cursor, end) = if tag == OUTPUT { (&mut self.out, self.out_end) } else { (&mut self.other, self.body.len()) };
            let stop = usize::try_from(len).ok().and_then(|l| cursor.checked_add(l)).filter(|&s| s <= end);
            let stop = stop.ok_or_else(|| bad("payload runs past its column"))?;
            let payload = self.body.slice(*cursor..stop);
            *cursor = stop;
            match tag {
                OUTPUT => FrameData::Output(payload),
                INPUT => FrameData::Input(payload),
                MARKER => FrameData::Marker(String::from_utf8(payload.to_vec()).map_err(|_| bad("marker is not UTF-8"))?),
                EVENT => FrameData::Event(
                    serde_json::from_slice::<Event>(&payload).map_err(|e| bad(&format!("event is not JSON: {e}")))?,
                ),
                other => return Err(bad(&format!("unknown tag {other}"))),
            }
        };
        self.t = t;
        Ok(Frame { t, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::resize(0, 80, 24),
            Frame::output(5, "héllo \x1b[1m世界"),
            Frame::input(6, b"\x03".to_vec()),
            Frame { t: 7, data: FrameData::Marker("m".into()) },
            Frame::output(9, "more"),
            Frame::event(300_000_000_002, "exit", serde_json::json!({"status": 1})),
            Frame::output(300_000_000_002, Bytes::new()),
        ]
    }

    fn rows(frames: &[Frame]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut prev = 0;
        for f in frames {
            encode(&mut buf, prev, f.t, &f.data);
            prev = f.t;
        }
        buf
    }

    fn read(body: Vec<u8>) -> Result<Vec<Frame>, String> {
        let mut r = ColumnReader::new(body.into())?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame() {
            out.push(f?);
        }
        Ok(out)
    }

    #[test]
    fn rows_to_columns_and_back() {
        let frames = sample();
        let (body, stats) = from_rows(&rows(&frames));
        assert_eq!(read(body).unwrap(), frames);
        assert_eq!((stats.frames, stats.first_t, stats.last_t), (7, 0, 300_000_000_002));
        assert_eq!((stats.bytes_in, stats.bytes_out), (1, "héllo \x1b[1m世界more".len() as u64));
        assert_eq!(stats.damage, None);
    }

    #[test]
    fn a_torn_tail_keeps_every_whole_frame() {
        let frames = sample();
        let all = rows(&frames);
        for cut in 0..all.len() {
            let (body, stats) = from_rows(&all[..cut]);
            let got = read(body).unwrap();
            assert_eq!(got, frames[..got.len()], "cut {cut}");
            assert_eq!(stats.good_len, rows(&got).len(), "cut {cut}");
            assert_eq!(stats.damage.is_some(), stats.good_len != cut, "cut {cut}");
        }
    }

    #[test]
    fn damaged_columns_are_errors_not_panics() {
        let (body, _) = from_rows(&rows(&sample()));
        for i in 0..body.len() {
            for bit in [0x01, 0x80] {
                let mut b = body.clone();
                b[i] ^= bit;
                let _ = read(b); // any result but a panic
            }
        }
        let mut b = body.clone();
        b.push(b'x');
        assert!(read(b).unwrap_err().contains("belong to no frame"));
    }
}
