//! The binary encoding of frames, shared by the write-ahead spool and segment bodies.
//!
//! One frame is `tag: u8`, `dt: varint` (µs since the previous frame of the same
//! segment; the first frame counts from 0, so its `dt` is its absolute time), then the
//! payload: `len: varint` + bytes for output, input, marker (UTF-8) and event (JSON
//! `{"kind", "data"}`); `cols: varint`, `rows: varint` for a resize. Varints are LEB128.
//! No per-frame checksum: the spool is only ever appended to, so a killed process leaves
//! at worst a truncated last frame, which [`FrameReader`] reports as [`Decoded::Truncated`].

use bytes::Bytes;

use crate::frame::{Event, Frame, FrameData, Micros};

const OUTPUT: u8 = 0;
const INPUT: u8 = 1;
const RESIZE: u8 = 2;
const MARKER: u8 = 3;
const EVENT: u8 = 4;

/// Appends one frame; `prev_t` is the previous frame's time in the same body (0 first).
pub(crate) fn encode(buf: &mut Vec<u8>, prev_t: Micros, frame_t: Micros, data: &FrameData) {
    let dt = frame_t.saturating_sub(prev_t);
    let put = |tag: u8, payload: &[u8], buf: &mut Vec<u8>| {
        buf.push(tag);
        varint(buf, dt);
        varint(buf, payload.len() as u64);
        buf.extend_from_slice(payload);
    };
    match data {
        FrameData::Output(b) => put(OUTPUT, b, buf),
        FrameData::Input(b) => put(INPUT, b, buf),
        FrameData::Marker(s) => put(MARKER, s.as_bytes(), buf),
        FrameData::Event(e) => {
            let json = serde_json::to_vec(e).expect("an Event always serializes");
            put(EVENT, &json, buf)
        }
        FrameData::Resize { cols, rows } => {
            buf.push(RESIZE);
            varint(buf, dt);
            varint(buf, u64::from(*cols));
            varint(buf, u64::from(*rows));
        }
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A whole frame.
    Frame(Frame),
    /// The body ends inside a frame (a torn spool tail).
    Truncated,
    /// The bytes are not frames; the text says why and at which offset.
    Bad(String),
}

/// Decodes frames from a body without copying payloads (they share the body's buffer).
pub(crate) struct FrameReader {
    body: Bytes,
    pos: usize,
    t: Micros,
}

impl FrameReader {
    pub(crate) fn new(body: Bytes) -> Self {
        FrameReader { body, pos: 0, t: 0 }
    }

    /// Offset of the next frame: after a [`Decoded::Truncated`], the length of the good prefix.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The next frame, or `None` at the clean end of the body.
    pub(crate) fn next_frame(&mut self) -> Option<Decoded> {
        if self.pos >= self.body.len() {
            return None;
        }
        let start = self.pos;
        let result = self.decode();
        if !matches!(result, Decoded::Frame(_)) {
            self.pos = start;
        }
        Some(result)
    }

    fn decode(&mut self) -> Decoded {
        let at = self.pos;
        let tag = self.body[self.pos];
        self.pos += 1;
        let Some(dt) = self.varint() else { return Decoded::Truncated };
        let Some(t) = self.t.checked_add(dt) else {
            return Decoded::Bad(format!("frame at byte {at}: time overflows"));
        };
        let data = if tag == RESIZE {
            let (Some(cols), Some(rows)) = (self.varint(), self.varint()) else { return Decoded::Truncated };
            match (u16::try_from(cols), u16::try_from(rows)) {
                (Ok(cols), Ok(rows)) => FrameData::Resize { cols, rows },
                _ => return Decoded::Bad(format!("frame at byte {at}: resize {cols}x{rows} out of range")),
            }
        } else {
            let Some(len) = self.varint() else { return Decoded::Truncated };
            let Some(end) = usize::try_from(len).ok().and_then(|l| self.pos.checked_add(l)) else {
                return Decoded::Bad(format!("frame at byte {at}: length {len} out of range"));
            };
            if end > self.body.len() {
                return Decoded::Truncated;
            }
            let payload = self.body.slice(self.pos..end);
            self.pos = end;
            match tag {
                OUTPUT => FrameData::Output(payload),
                INPUT => FrameData::Input(payload),
                MARKER => match String::from_utf8(payload.to_vec()) {
                    Ok(s) => FrameData::Marker(s),
                    Err(_) => return Decoded::Bad(format!("frame at byte {at}: marker is not UTF-8")),
                },
                EVENT => match serde_json::from_slice::<Event>(&payload) {
                    Ok(e) => FrameData::Event(e),
                    Err(e) => return Decoded::Bad(format!("frame at byte {at}: event is not JSON: {e}")),
                },
                other => return Decoded::Bad(format!("frame at byte {at}: unknown tag {other}")),
            }
        };
        self.t = t;
        Decoded::Frame(Frame { t, data })
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.body.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        // More than 10 bytes: not a varint we wrote; let the caller see garbage.
        Some(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::output(5, "héllo \x1b[1m世界"),
            Frame::input(5, b"\x03".to_vec()),
            Frame::resize(300_000_000_000, 65535, 1),
            Frame { t: 300_000_000_001, data: FrameData::Marker("m".into()) },
            Frame::event(300_000_000_002, "exit", serde_json::json!({"status": 1})),
            Frame::output(300_000_000_002, Bytes::new()),
        ]
    }

    fn encode_all(frames: &[Frame]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut prev = 0;
        for f in frames {
            encode(&mut buf, prev, f.t, &f.data);
            prev = f.t;
        }
        buf
    }

    fn decode_all(body: Vec<u8>) -> (Vec<Frame>, Option<Decoded>) {
        let mut r = FrameReader::new(body.into());
        let mut out = Vec::new();
        while let Some(d) = r.next_frame() {
            match d {
                Decoded::Frame(f) => out.push(f),
                other => return (out, Some(other)),
            }
        }
        (out, None)
    }

    #[test]
    fn round_trip() {
        let frames = sample();
        let body = encode_all(&frames);
        assert_eq!(decode_all(body), (frames, None));
    }

    #[test]
    fn every_truncation_keeps_the_whole_frames_before_it() {
        let frames = sample();
        let body = encode_all(&frames);
        let mut boundaries = vec![0];
        for i in 1..=frames.len() {
            boundaries.push(encode_all(&frames[..i]).len());
        }
        for cut in 0..body.len() {
            let (got, end) = decode_all(body[..cut].to_vec());
            let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
            assert_eq!(got, frames[..whole], "cut at {cut}");
            let expected_end = if boundaries.contains(&cut) { None } else { Some(Decoded::Truncated) };
            assert_eq!(end, expected_end, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_reported_with_its_offset() {
        let mut body = encode_all(&sample()[..1]);
        let at = body.len();
        body.extend_from_slice(&[9, 0, 0]);
        let (got, end) = decode_all(body);
        assert_eq!(got.len(), 1);
        assert_eq!(end, Some(Decoded::Bad(format!("frame at byte {at}: unknown tag 9"))));
    }
}
