//! Screen keyframes: exact terminal states stored every few seconds or few hundred KiB of
//! output, so a player shows the screen at any time `t` by loading the nearest keyframe
//! before `t` and replaying only the frames after it ([`screen_at`]).
//!
//! Keyframes are derived data, rebuilt by `gatehouse reindex`. They live in the object
//! store beside the other derived data, one object per session:
//! `keyframes/YYYY/MM/DD/<session-id>.kf` (the UTC day of the session's start), so every
//! node of a deployment and the web player reach them where they reach the recording.
//!
//! # File format (version 1)
//! ```text
//! "GHKF" | version: u16 LE = 1 | reserved: u16 = 0 | session id: 16 bytes | count: u32 LE
//! zstd frame (with content checksum) of `count` entries, each:
//!   t: u64 | frame_index: u64 | skip: u32 | rows: u16 | cols: u16 | len: u32 | state: len bytes
//! ```
//! `t` is the time of the last frame applied (µs since session start); `frame_index` the
//! number of frames applied; `skip` how many of them have time `t` (a stream of frames from
//! `t` starts with those, already inside the state); `state` the bytes that rebuild the
//! screen in a fresh `rows`×`cols` parser (see `capture`).

mod capture;
mod seek;

pub use seek::{apply_frame, initial_size, known_size, load_keyframes, replay_to, screen_at, store_keyframes};
#[cfg(test)]
pub(crate) use seek::{replay_stream, start_point};

pub(crate) use capture::new_parser;

use gatehouse_recorder::Micros;
use uuid::Uuid;

use crate::error::{Error, Result};

/// One stored terminal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyframe {
    /// Time of the last frame included, µs since session start.
    pub t: Micros,
    /// Number of frames included (the index of the next frame to apply).
    pub frame_index: u64,
    /// How many of the included frames have time `t`.
    pub skip: u32,
    /// Terminal height.
    pub rows: u16,
    /// Terminal width.
    pub cols: u16,
    /// Bytes that rebuild the screen in a fresh parser of this size.
    pub state: Vec<u8>,
}

/// Bytes that draw `screen` on a terminal of its size just reset (`ESC c`), so that a
/// player can go on from there: with the hidden state a keyframe carries (scroll region,
/// the other grid, saved cursor, modes) when it can be captured exactly, else what is
/// visible (`Screen::state_formatted`).
pub fn redraw(screen: &vt100::Screen) -> Vec<u8> {
    capture::capture(screen).unwrap_or_else(|| screen.state_formatted().into_bytes())
}

impl Keyframe {
    /// A parser holding exactly the screen this keyframe stored.
    pub fn restore(&self) -> vt100::Parser {
        capture::restore(self.rows, self.cols, &self.state)
    }
}

/// A keyframe is taken after this much output since the last one (at the next frame
/// boundary outside any escape sequence). A seek restores the keyframe and replays at most
/// this much through vt100: about 10 ms, the worst case of showing any moment. Keyframes are
/// placed by output volume, not by time: replay cost is what they bound, and a quiet hour
/// of typing replays in no time, while each keyframe costs about as much as emulating
/// 10 KiB (a few probes of the screen; see `capture`).
pub const KEYFRAME_BYTES: u64 = 512 * 1024;
/// After a screen that could not be captured exactly, wait for this much more output
/// before trying again.
const RETRY_BYTES: u64 = 4 * 1024;

/// Decides when a keyframe is due and takes it from the pipeline's screen.
#[derive(Debug, Default)]
pub(crate) struct KeyframeBuilder {
    keyframes: Vec<Keyframe>,
    bytes_since: u64,
    /// Output needed before the next attempt (raised after a failed capture).
    wait_until: u64,
}

impl KeyframeBuilder {
    /// Notes output bytes applied.
    pub(crate) fn output(&mut self, len: usize) {
        self.bytes_since += len as u64;
    }

    /// Whether a keyframe is due.
    pub(crate) fn due(&self) -> bool {
        self.bytes_since >= KEYFRAME_BYTES.max(self.wait_until)
    }

    /// Takes a keyframe of `screen` (call at a frame boundary in ground state). Returns
    /// whether one was stored: a screen `capture` cannot reproduce exactly is skipped and
    /// retried at the next boundary.
    pub(crate) fn take(&mut self, screen: &vt100::Screen, t: Micros, frame_index: u64, skip: u32) -> bool {
        let Some(state) = capture::capture(screen) else {
            tracing::debug!(t, frame_index, "screen not reproducible here; keyframe deferred");
            self.wait_until = self.bytes_since + RETRY_BYTES;
            return false;
        };
        let (rows, cols) = screen.size();
        self.keyframes.push(Keyframe { t, frame_index, skip, rows: rows.get(), cols: cols.get(), state });
        self.bytes_since = 0;
        self.wait_until = 0;
        true
    }

    pub(crate) fn finish(self) -> Vec<Keyframe> {
        self.keyframes
    }
}

const MAGIC: &[u8; 4] = b"GHKF";
const VERSION: u16 = 1;
const HEADER: usize = 4 + 2 + 2 + 16 + 4;
const ENTRY_FIXED: usize = 8 + 8 + 4 + 2 + 2 + 4;

/// Encodes a session's keyframes (the format in the module docs).
pub fn encode_keyframes(session: Uuid, keyframes: &[Keyframe]) -> Vec<u8> {
    let mut body = Vec::new();
    for k in keyframes {
        body.extend_from_slice(&k.t.to_le_bytes());
        body.extend_from_slice(&k.frame_index.to_le_bytes());
        body.extend_from_slice(&k.skip.to_le_bytes());
        body.extend_from_slice(&k.rows.to_le_bytes());
        body.extend_from_slice(&k.cols.to_le_bytes());
        body.extend_from_slice(&(k.state.len() as u32).to_le_bytes());
        body.extend_from_slice(&k.state);
    }
    let mut out = Vec::with_capacity(HEADER + body.len() / 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(session.as_bytes());
    out.extend_from_slice(&(keyframes.len() as u32).to_le_bytes());
    let mut encoder = zstd::Encoder::new(out, 3).expect("zstd level 3 is valid");
    encoder.include_checksum(true).expect("checksum flag is valid");
    std::io::Write::write_all(&mut encoder, &body).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Decodes a keyframe file; `what` names it in errors.
pub fn decode_keyframes(bytes: &[u8], session: Uuid, what: &str) -> Result<Vec<Keyframe>> {
    let bad = |detail: &str| Error::corrupt(what, detail);
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(bad("not a keyframe file (bad magic)"));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(bad(&format!("unsupported keyframe format version {version}")));
    }
    if &bytes[8..24] != session.as_bytes() {
        return Err(bad("keyframes of another session"));
    }
    let count = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")) as usize;
    let body = zstd::decode_all(&bytes[HEADER..]).map_err(|e| bad(&format!("zstd: {e}")))?;
    let mut keyframes = Vec::with_capacity(count.min(1 << 16));
    let mut at = 0;
    for i in 0..count {
        let fixed = body.get(at..at + ENTRY_FIXED).ok_or_else(|| bad(&format!("entry {i} truncated")))?;
        let u64_at = |o: usize| u64::from_le_bytes(fixed[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(fixed[o..o + 4].try_into().expect("4 bytes"));
        let u16_at = |o: usize| u16::from_le_bytes(fixed[o..o + 2].try_into().expect("2 bytes"));
        let len = u32_at(24) as usize;
        at += ENTRY_FIXED;
        let state = body.get(at..at + len).ok_or_else(|| bad(&format!("entry {i} state truncated")))?;
        at += len;
        keyframes.push(Keyframe {
            t: u64_at(0),
            frame_index: u64_at(8),
            skip: u32_at(16),
            rows: u16_at(20),
            cols: u16_at(22),
            state: state.to_vec(),
        });
    }
    if at != body.len() {
        return Err(bad("trailing bytes after the last entry"));
    }
    if keyframes.windows(2).any(|w| (w[0].t, w[0].frame_index) > (w[1].t, w[1].frame_index)) {
        return Err(bad("entries out of order"));
    }
    Ok(keyframes)
}

#[cfg(test)]
mod tests;
