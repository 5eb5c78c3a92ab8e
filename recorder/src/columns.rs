//! Segment bodies hold frames as columns, not rows: every output payload back to back,
//! then the frame headers (tag, time delta, length), then the other payloads (input,
//! markers, events). zstd then sees the terminal output as one contiguous text, as if it
//! compressed the output alone, and the small, regular headers as another; interleaving
//! them costs ratio (keystroke-sized frames make the headers a large share of the bytes).
//!
//! ```text
//! output_len: u32 LE | meta_len: u32 LE | output payloads | meta | other payloads
//! meta, per frame: tag u8 | dt LEB128 | resize: cols LEB128, rows LEB128 | else: len LEB128
//! ```
//!
//! [`Columns`] builds a body as frames arrive (the writer's open segment): each payload
//! is copied once, into its column, and the output column already sits at its place in
//! the body, so sealing only appends the two small columns behind it.

use bytes::Bytes;

use crate::codec::{EVENT, INPUT, MARKER, OUTPUT, RESIZE, read_varint, varint};
use crate::frame::{Event, Frame, FrameData, Micros};

/// Bytes before the output column: its length and the meta column's.
pub(crate) const BODY_HEADER: usize = 8;

/// What a body (or the part of one built so far) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub frames: u32,
    pub first_t: Micros,
    pub last_t: Micros,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Stats {
    /// Counts one frame at `t` (non-decreasing) and returns its `dt`.
    fn frame(&mut self, t: Micros) -> u64 {
        let dt = if self.frames == 0 {
            self.first_t = t;
            t
        } else {
            t.saturating_sub(self.last_t)
        };
        self.frames += 1;
        self.last_t = self.last_t.max(t);
        dt
    }
}

/// A columnar body being built. `out` starts with [`BODY_HEADER`] bytes patched by
/// [`Columns::finish`].
#[derive(Debug, Default)]
pub(crate) struct Columns {
    pub(crate) out: Vec<u8>,
    pub(crate) meta: Vec<u8>,
    pub(crate) other: Vec<u8>,
    pub(crate) stats: Stats,
}

/// Where a body stood, to undo a frame the spool had no room for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark([usize; 3], Stats);

impl Columns {
    /// Empty columns whose output column is `buf` (emptied).
    pub(crate) fn with_buffer(mut buf: Vec<u8>) -> Columns {
        buf.clear();
        Columns { out: buf, ..Columns::default() }
    }

    /// Appends one frame at `t` (not before the previous one); returns the bytes it added.
    pub(crate) fn push(&mut self, t: Micros, data: &FrameData) -> usize {
        if self.out.is_empty() {
            self.out.extend_from_slice(&[0; BODY_HEADER]);
        }
        let before = self.len();
        let dt = self.stats.frame(t);
        let (tag, payload): (u8, &[u8]) = match data {
            FrameData::Output(b) => {
                self.stats.bytes_out += b.len() as u64;
                (OUTPUT, b)
            }
            FrameData::Input(b) => {
                self.stats.bytes_in += b.len() as u64;
                (INPUT, b)
            }
            FrameData::Marker(s) => (MARKER, s.as_bytes()),
            FrameData::Event(e) => {
                // Straight into the column: no intermediate buffer.
                let at = self.other.len();
                serde_json::to_writer(&mut self.other, e).expect("an Event always serializes");
                self.meta.push(EVENT);
                varint(&mut self.meta, dt);
                varint(&mut self.meta, (self.other.len() - at) as u64);
                return self.len() - before;
            }
            FrameData::Resize { cols, rows } => {
                self.meta.push(RESIZE);
                varint(&mut self.meta, dt);
                varint(&mut self.meta, u64::from(*cols));
                varint(&mut self.meta, u64::from(*rows));
                return self.len() - before;
            }
        };
        self.meta.push(tag);
        varint(&mut self.meta, dt);
        varint(&mut self.meta, payload.len() as u64);
        if tag == OUTPUT { &mut self.out } else { &mut self.other }.extend_from_slice(payload);
        self.len() - before
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark([self.out.len(), self.meta.len(), self.other.len()], self.stats)
    }

    pub(crate) fn rollback(&mut self, Mark([out, meta, other], stats): Mark) {
        self.out.truncate(out);
        self.meta.truncate(meta);
        self.other.truncate(other);
        self.stats = stats;
    }

    /// Frames so far.
    pub(crate) fn frames(&self) -> u32 {
        self.stats.frames
    }

    /// Size of the body these columns make.
    pub(crate) fn len(&self) -> usize {
        self.out.len().max(BODY_HEADER) + self.meta.len() + self.other.len()
    }

    /// Forgets the bytes (the spool file has them) but keeps the counts and the time of
    /// the last frame, which the next frame's `dt` is relative to.
    pub(crate) fn drop_bytes(&mut self, keep_capacity: usize) {
        self.out.clear();
        self.meta.clear();
        self.other.clear();
        for col in [&mut self.out, &mut self.meta, &mut self.other] {
            col.shrink_to(keep_capacity);
        }
    }

    /// Appends a run of frames given as column slices (a spool chunk), checking that the
    /// meta entries account for every payload byte. Nothing is appended on error.
    pub(crate) fn append(&mut self, meta: &[u8], out: &[u8], other: &[u8]) -> Result<(), String> {
        let mut stats = self.stats;
        let (mut out_n, mut other_n) = (0usize, 0usize);
        parse_meta(meta, |tag, dt, len| {
            let t = if stats.frames == 0 { dt } else { stats.last_t.checked_add(dt).ok_or("time overflows")? };
            stats.frame(t);
            let (n, max) = if tag == OUTPUT { (&mut out_n, out.len()) } else { (&mut other_n, other.len()) };
            *n = n.checked_add(len).filter(|&n| n <= max).ok_or("a payload runs past its column")?;
            match tag {
                OUTPUT => stats.bytes_out += len as u64,
                INPUT => stats.bytes_in += len as u64,
                _ => {}
            }
            Ok(())
        })?;
        if (out_n, other_n) != (out.len(), other.len()) {
            return Err(format!("{} payload bytes belong to no frame", out.len() + other.len() - out_n - other_n));
        }
        if self.out.is_empty() {
            self.out.extend_from_slice(&[0; BODY_HEADER]);
        }
        self.out.extend_from_slice(out);
        self.meta.extend_from_slice(meta);
        self.other.extend_from_slice(other);
        self.stats = stats;
        Ok(())
    }

    /// The body: the output column with its header patched, then meta, then the others
    /// (small next to the output when a session streams), appended in place.
    pub(crate) fn finish(self) -> (Vec<u8>, Stats) {
        let Columns { mut out, meta, other, stats } = self;
        if out.is_empty() {
            out.extend_from_slice(&[0; BODY_HEADER]);
        }
        let out_len = (out.len() - BODY_HEADER) as u32;
        out[0..4].copy_from_slice(&out_len.to_le_bytes());
        out[4..8].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        out.reserve_exact(meta.len() + other.len());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&other);
        (out, stats)
    }
}

/// Walks a meta column: `f(tag, dt, payload length)` per frame (length 0 for resizes).
fn parse_meta(meta: &[u8], mut f: impl FnMut(u8, u64, usize) -> Result<(), &'static str>) -> Result<(), String> {
    let mut pos = 0;
    while pos < meta.len() {
        let at = pos;
        let bad = |what: &str| format!("frame header at byte {at}: {what}");
        let tag = meta[pos];
        pos += 1;
        let dt = read_varint(meta, &mut pos).ok_or_else(|| bad("cut short"))?;
        let len = match tag {
            RESIZE => {
                let cols = read_varint(meta, &mut pos).ok_or_else(|| bad("cut short"))?;
                let rows = read_varint(meta, &mut pos).ok_or_else(|| bad("cut short"))?;
                if cols > u64::from(u16::MAX) || rows > u64::from(u16::MAX) {
                    return Err(bad("resize out of range"));
                }
                0
            }
            OUTPUT | INPUT | MARKER | EVENT => {
                let len = read_varint(meta, &mut pos).ok_or_else(|| bad("cut short"))?;
                usize::try_from(len).map_err(|_| bad("payload too long"))?
            }
            other => return Err(bad(&format!("unknown tag {other}"))),
        };
        f(tag, dt, len).map_err(bad)?;
    }
    Ok(())
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
        if body.len() < BODY_HEADER {
            return Err(format!("body of {} bytes has no column header", body.len()));
        }
        let out_len = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
        let meta_len = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
        let out_end = BODY_HEADER + out_len;
        let meta_end = out_end + meta_len;
        if meta_end > body.len() {
            return Err(format!("columns of {out_len} + {meta_len} bytes overrun a {}-byte body", body.len()));
        }
        Ok(ColumnReader { body, meta: out_end, meta_end, out: BODY_HEADER, out_end, other: meta_end, t: 0 })
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

/// A body holding `frames` (for tests).
#[cfg(test)]
pub(crate) fn body_of(frames: &[Frame]) -> (Vec<u8>, Stats) {
    let mut cols = Columns::default();
    for f in frames {
        cols.push(f.t, &f.data);
    }
    cols.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One frame of every kind, edge cases included (also used by the spool's tests).
    pub(crate) fn sample() -> Vec<Frame> {
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

    fn read(body: Vec<u8>) -> Result<Vec<Frame>, String> {
        let mut r = ColumnReader::new(body.into())?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame() {
            out.push(f?);
        }
        Ok(out)
    }

    #[test]
    fn frames_to_columns_and_back() {
        let frames = sample();
        let (body, stats) = body_of(&frames);
        assert_eq!(read(body).unwrap(), frames);
        assert_eq!((stats.frames, stats.first_t, stats.last_t), (7, 0, 300_000_000_002));
        assert_eq!((stats.bytes_in, stats.bytes_out), (1, "héllo \x1b[1m世界more".len() as u64));
        assert_eq!(read(Columns::default().finish().0).unwrap(), vec![]);
    }

    #[test]
    fn a_rolled_back_frame_leaves_no_trace() {
        let frames = sample();
        let mut cols = Columns::default();
        for f in &frames {
            let mark = cols.mark();
            cols.push(f.t, &f.data);
            cols.rollback(mark);
            cols.push(f.t, &f.data);
        }
        assert_eq!(cols.finish(), body_of(&frames));
    }

    #[test]
    fn chunks_append_into_the_same_body_and_bad_ones_are_refused() {
        let frames = sample();
        // Each frame's own columns appended as a chunk give the same body as pushing them.
        let mut whole = Columns::default();
        let mut last = Stats::default();
        for f in &frames {
            let mut one = Columns { stats: last, ..Columns::default() };
            one.push(f.t, &f.data);
            last = one.stats;
            whole.append(&one.meta, &one.out[BODY_HEADER..], &one.other).unwrap();
        }
        assert_eq!(whole.finish(), body_of(&frames));
        let mut cols = Columns::default();
        let one = body_of(&frames[1..2]).0;
        let meta_at = BODY_HEADER + u32::from_le_bytes(one[0..4].try_into().unwrap()) as usize;
        let (out, meta) = (&one[BODY_HEADER..meta_at], &one[meta_at..]);
        assert!(cols.append(meta, &out[1..], &[]).unwrap_err().contains("runs past"));
        let mut longer = out.to_vec();
        longer.push(b'x');
        assert!(cols.append(meta, &longer, &[]).unwrap_err().contains("belong to no frame"));
        assert!(cols.append(&[9, 0, 0], &[], &[]).unwrap_err().contains("unknown tag"));
        assert_eq!(cols.frames(), 0, "nothing appended");
    }

    #[test]
    fn damaged_columns_are_errors_not_panics() {
        let (body, _) = body_of(&sample());
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
