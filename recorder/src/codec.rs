//! Frame tags and LEB128 varints, shared by segment bodies (`columns`) and the spool's
//! files (`write::wal`).
//!
//! The row encoding of frames below is what spool files of format 1 held, one frame
//! after the other: `tag: u8`, `dt: varint` (µs since the previous frame of the same
//! segment; the first frame counts from 0), then `len: varint` + bytes for output, input,
//! marker (UTF-8) and event (JSON `{"kind", "data"}`), or `cols: varint, rows: varint`
//! for a resize. Recovery still reads such files; nothing writes them any more but tests.

pub(crate) const OUTPUT: u8 = 0;
pub(crate) const INPUT: u8 = 1;
pub(crate) const RESIZE: u8 = 2;
pub(crate) const MARKER: u8 = 3;
pub(crate) const EVENT: u8 = 4;

/// Appends one frame as a row; `prev_t` is the previous frame's time in the same
/// segment (0 first).
#[cfg(test)]
pub(crate) fn encode(buf: &mut Vec<u8>, prev_t: crate::Micros, frame_t: crate::Micros, data: &crate::FrameData) {
    use crate::FrameData;
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

pub(crate) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads one LEB128 varint at `*pos`, advancing it; `None` if the bytes end first. More
/// than ten bytes (not something we wrote) reads as `u64::MAX`, which callers reject.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    Some(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_stop_at_the_end() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos), Some(v));
            assert_eq!(pos, buf.len());
            let mut pos = 0;
            assert_eq!(read_varint(&buf[..buf.len() - 1], &mut pos), None, "{v} cut short");
        }
    }
}
