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
//! That row layout of `meta` is how an open segment is built (and what the spool's chunks
//! hold); [`Columns::finish`] rewrites it field by field ([`split_meta`], segment format
//! 2) when the segment is sealed, and [`ColumnReader`] joins it back.
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
    /// Output payloads go straight into the segment's write-ahead file (WAL format 4)
    /// and are only counted here: `ext_out` bytes of them.
    pub(crate) external: bool,
    pub(crate) ext_out: usize,
}

/// Where a body stood, to undo a frame the spool had no room for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark([usize; 4], Stats);

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
        if tag == OUTPUT && self.external {
            self.ext_out += payload.len();
        } else {
            if tag == OUTPUT { &mut self.out } else { &mut self.other }.extend_from_slice(payload);
        }
        self.len() - before
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark([self.out.len(), self.meta.len(), self.other.len(), self.ext_out], self.stats)
    }

    pub(crate) fn rollback(&mut self, Mark([out, meta, other, ext_out], stats): Mark) {
        self.ext_out = ext_out;
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
        self.out.len().max(BODY_HEADER) + self.ext_out + self.meta.len() + self.other.len()
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

    /// The body: the output column with its header patched, then the meta column in the
    /// split layout of segment format 2 ([`split_meta`]), then the others (small next to
    /// the output when a session streams), appended in place.
    pub(crate) fn finish(self) -> (Vec<u8>, Stats) {
        let Columns { mut out, meta, other, stats, .. } = self;
        if out.is_empty() {
            out.extend_from_slice(&[0; BODY_HEADER]);
        }
        let out_len = (out.len() - BODY_HEADER) as u32;
        out.reserve_exact(SPLIT_HEADER + meta.len() + 4 * stats.frames as usize + other.len());
        let meta_at = out.len();
        split_meta(&meta, &mut out);
        let meta_len = (out.len() - meta_at) as u32;
        out[0..4].copy_from_slice(&out_len.to_le_bytes());
        out[4..8].copy_from_slice(&meta_len.to_le_bytes());
        out.extend_from_slice(&other);
        (out, stats)
    }
}

impl Columns {
    /// The body after the output column, for external output: the split meta column,
    /// then the other payloads, into `tail`; returns the split meta's length.
    pub(crate) fn finish_tail(&self, tail: &mut Vec<u8>) -> usize {
        tail.clear();
        split_meta(&self.meta, tail);
        let meta_len = tail.len();
        tail.extend_from_slice(&self.other);
        meta_len
    }
}

/// Bytes before the sections of a split meta column: frames, input frames, wide-dt
/// bytes, input-length bytes (u32 LE each).
const SPLIT_HEADER: usize = 16;

/// A `dt` plane value meaning "the real one is in the wide section".
const WIDE: u32 = u32::MAX;

/// Rewrites a meta column (row layout: `tag, dt, len` per frame) into the split layout of
/// segment format 2, appended to `out`:
///
/// ```text
/// frames u32 | inputs u32 | wide_len u32 | input_lens_len u32
/// tags: one byte per frame
/// input dt:  4 byte planes (byte 0 of every input frame's dt, then byte 1, ...)
/// other dt:  4 byte planes, the same for every other frame
/// wide:      LEB128 dts of frames whose plane value is 0xFFFFFFFF
/// input lengths: LEB128
/// other lengths: LEB128 (a resize: cols, rows)
/// ```
///
/// Keystroke timing is the one part of a recording that does not compress: each field in
/// a section of its own, and each byte of a time in a plane of its own, lets zstd's
/// entropy coder see each distribution alone instead of a mixture (recorder_ingest: the
/// headers take a third less room).
pub(crate) fn split_meta(meta: &[u8], out: &mut Vec<u8>) {
    #[derive(Default)]
    struct Sections {
        tags: Vec<u8>,
        planes: [[Vec<u8>; 4]; 2],
        wide: Vec<u8>,
        lens: [Vec<u8>; 2],
    }
    thread_local! {
        static SCRATCH: std::cell::RefCell<Sections> = std::cell::RefCell::new(Sections::default());
    }
    SCRATCH.with_borrow_mut(|s| {
        s.tags.clear();
        s.wide.clear();
        for v in s.planes.iter_mut().flatten().chain(s.lens.iter_mut()) {
            v.clear();
        }
        let mut pos = 0;
        while pos < meta.len() {
            let tag = meta[pos];
            pos += 1;
            let dt = read_varint(meta, &mut pos).expect("the writer's own meta column");
            let which = usize::from(tag != INPUT);
            s.tags.push(tag);
            let d = u32::try_from(dt).ok().filter(|&d| d != WIDE).unwrap_or_else(|| {
                varint(&mut s.wide, dt);
                WIDE
            });
            for (plane, byte) in s.planes[which].iter_mut().zip(d.to_le_bytes()) {
                plane.push(byte);
            }
            let fields = if tag == RESIZE { 2 } else { 1 };
            for _ in 0..fields {
                let v = read_varint(meta, &mut pos).expect("the writer's own meta column");
                varint(&mut s.lens[which], v);
            }
        }
        let inputs = s.planes[0][0].len();
        for n in [s.tags.len(), inputs, s.wide.len(), s.lens[0].len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        out.extend_from_slice(&s.tags);
        for plane in s.planes.iter().flatten() {
            out.extend_from_slice(plane);
        }
        out.extend_from_slice(&s.wide);
        out.extend_from_slice(&s.lens[0]);
        out.extend_from_slice(&s.lens[1]);
    });
}

/// The inverse of [`split_meta`]: a split meta column back in the row layout, or an
/// error saying what does not add up.
pub(crate) fn join_meta(split: &[u8]) -> Result<Vec<u8>, String> {
    let u32_at = |at: usize| split.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    let (Some(frames), Some(inputs), Some(wide_len), Some(in_lens_len)) = (u32_at(0), u32_at(4), u32_at(8), u32_at(12)) else {
        return Err(format!("split frame headers of {} bytes have no section table", split.len()));
    };
    let tags_at = SPLIT_HEADER;
    let planes_at = tags_at.checked_add(frames);
    let wide_at = planes_at.and_then(|p| frames.checked_mul(4).and_then(|n| p.checked_add(n)));
    let lens_at = wide_at.and_then(|w| w.checked_add(wide_len));
    let other_lens_at = lens_at.and_then(|l| l.checked_add(in_lens_len));
    let (Some(planes_at), Some(wide_at), Some(lens_at), Some(other_lens_at)) = (planes_at, wide_at, lens_at, other_lens_at) else {
        return Err("split frame headers: section sizes overflow".into());
    };
    if inputs > frames || other_lens_at > split.len() {
        return Err(format!(
            "split frame headers: {frames} frames ({inputs} input) and their sections overrun {} bytes",
            split.len()
        ));
    }
    let tags = &split[tags_at..planes_at];
    let wide = &split[wide_at..lens_at];
    let lens = [&split[lens_at..other_lens_at], &split[other_lens_at..]];
    let counts = [inputs, frames - inputs];
    let plane_base = [planes_at, planes_at + 4 * inputs];
    let mut index = [0usize; 2];
    let (mut wide_pos, mut len_pos) = (0usize, [0usize; 2]);
    let mut out = Vec::with_capacity(frames * 4);
    for &tag in tags {
        let which = usize::from(tag != INPUT);
        let i = index[which];
        if i >= counts[which] {
            return Err(format!("split frame headers: more {} frames than the {} counted", ["input", "other"][which], counts[which]));
        }
        index[which] += 1;
        let mut d = [0u8; 4];
        for (p, byte) in d.iter_mut().enumerate() {
            *byte = split[plane_base[which] + p * counts[which] + i];
        }
        let d = u32::from_le_bytes(d);
        let dt = if d == WIDE {
            read_varint(wide, &mut wide_pos).ok_or("split frame headers: the wide times are cut short")?
        } else {
            u64::from(d)
        };
        out.push(tag);
        varint(&mut out, dt);
        let fields = if tag == RESIZE { 2 } else { 1 };
        for _ in 0..fields {
            let v = read_varint(lens[which], &mut len_pos[which]).ok_or("split frame headers: the lengths are cut short")?;
            varint(&mut out, v);
        }
    }
    if index != counts || wide_pos != wide.len() || len_pos != [lens[0].len(), lens[1].len()] {
        return Err("split frame headers: sections hold more than the frames use".into());
    }
    Ok(out)
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
    /// The meta column in the row layout (format 2's split one is joined back first).
    meta_col: Bytes,
    meta: usize,
    out: usize,
    out_end: usize,
    other: usize,
    t: Micros,
}

impl ColumnReader {
    /// A reader for a body of segment format `format` (1: row meta; 2: split meta).
    pub(crate) fn new(body: Bytes, format: u16) -> Result<ColumnReader, String> {
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
        let meta_col = match format {
            1 => body.slice(out_end..meta_end),
            _ => Bytes::from(join_meta(&body[out_end..meta_end])?),
        };
        Ok(ColumnReader { body, meta_col, meta: 0, out: BODY_HEADER, out_end, other: meta_end, t: 0 })
    }

    /// The next frame, an error naming what is wrong, or `None` at the end (which also
    /// checks that every payload byte was claimed by a frame).
    pub(crate) fn next_frame(&mut self) -> Option<Result<Frame, String>> {
        if self.meta >= self.meta_col.len() {
            let left = (self.out_end - self.out) + (self.body.len() - self.other);
            return (left > 0).then(|| Err(format!("{left} payload bytes belong to no frame")));
        }
        Some(self.decode())
    }

    fn decode(&mut self) -> Result<Frame, String> {
        let at = self.meta;
        let meta = &self.meta_col[..];
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

    /// The body of segment format 1 (row meta) holding `frames`.
    pub(crate) fn body_v1(frames: &[Frame]) -> Vec<u8> {
        let mut cols = Columns::default();
        for f in frames {
            cols.push(f.t, &f.data);
        }
        let Columns { mut out, meta, other, .. } = cols;
        let out_len = (out.len() - BODY_HEADER) as u32;
        out[0..4].copy_from_slice(&out_len.to_le_bytes());
        out[4..8].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&other);
        out
    }

    fn read_format(body: Vec<u8>, format: u16) -> Result<Vec<Frame>, String> {
        let mut r = ColumnReader::new(body.into(), format)?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame() {
            out.push(f?);
        }
        Ok(out)
    }

    fn read(body: Vec<u8>) -> Result<Vec<Frame>, String> {
        read_format(body, crate::segment::FORMAT)
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
    fn split_headers_round_trip_wide_times_and_every_kind() {
        let mut frames = sample();
        // A time too large for a plane (over 71 minutes in one step), keystrokes between
        // output, and a resize among them.
        frames.push(Frame::input(300_000_000_003, b"k".to_vec()));
        frames.push(Frame::output(300_000_000_004, "k"));
        frames.push(Frame::resize(305_000_000_000, 120, 40));
        frames.push(Frame::input(305_000_000_000 + u64::from(u32::MAX) + 7, b"\r".to_vec()));
        let (body, _) = body_of(&frames);
        assert_eq!(read(body).unwrap(), frames);
        assert_eq!(read_format(body_v1(&frames), 1).unwrap(), frames);
        let mut row = Vec::new();
        let mut cols = Columns::default();
        for f in &frames {
            cols.push(f.t, &f.data);
        }
        split_meta(&cols.meta, &mut row);
        assert_eq!(join_meta(&row).unwrap(), cols.meta);
    }

    #[test]
    fn damaged_split_headers_are_errors() {
        let frames = sample();
        let mut cols = Columns::default();
        for f in &frames {
            cols.push(f.t, &f.data);
        }
        let mut split = Vec::new();
        split_meta(&cols.meta, &mut split);
        assert!(join_meta(&split[..10]).unwrap_err().contains("no section table"));
        let mut more = split.clone();
        more[0] += 1; // one frame more than the sections hold
        assert!(join_meta(&more).is_err());
        let mut inputs = split.clone();
        inputs[4] = 200; // more input frames than frames
        assert!(join_meta(&inputs).unwrap_err().contains("overrun"));
        let mut extra = split.clone();
        extra.push(0);
        assert!(join_meta(&extra).unwrap_err().contains("more than the frames use"));
        for i in 0..split.len() {
            let mut b = split.clone();
            b[i] ^= 0x41;
            let _ = join_meta(&b); // any result but a panic
        }
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
        let one = body_v1(&frames[1..2]);
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
