//! The screen text people saw, for the search index: distinct lines, each kept once per
//! session with the time it first appeared.
//!
//! Two sources, chosen for cost (reading rows back out of `vt100` costs about as much per
//! row as emulating them, so the screen is not read after every frame):
//! - **printed lines** ([`printed`]): the text of the output stream, cut into lines where
//!   the terminal ends or overwrites them. This is every line of scrolling output, at a
//!   small fraction of the emulation's cost per byte.
//! - **screen reads**, while a full-screen program runs (alternate screen): the whole
//!   screen, logical line by logical line, every [`SAMPLE_INTERVAL`] of session time in
//!   which at least [`SAMPLE_MIN_BYTES`] of output came, and once when the session ends.
//!   Full-screen programs redraw by moving the cursor, so their printed text comes in
//!   fragments; the reads give whole rows.
//!
//! Lines are trimmed; empty lines are dropped; duplicates (redraws, repeated prompts) are
//! dropped by a 64-bit hash of the last 64–128 Ki distinct lines. Secrets: only output is read, and input typed without echo
//! never reaches the output.

mod printed;

pub use printed::MAX_LINE;

use std::hash::BuildHasher as _;

use gatehouse_recorder::Micros;
use rustc_hash::{FxBuildHasher, FxHashSet};

use printed::Printed;

/// While a full-screen program runs, read the screen at least this often (session time;
/// a read costs about as much as emulating a screenful)...
pub const SAMPLE_INTERVAL: Micros = 30_000_000;
/// ...if at least this much output came since the last read.
pub const SAMPLE_MIN_BYTES: usize = 4096;

/// Lines are remembered in two generations of this many: a line is dropped as a duplicate
/// if it is among the last 64–128 Ki distinct lines. Redraws repeat lines within moments, so
/// this catches them, bounds memory, and keeps the set small enough to stay in cache; a
/// line that comes back after that many others is indexed again (a duplicate hit, no loss).
const GENERATION: usize = 1 << 16;

/// One distinct line of screen text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenLine {
    /// When it was first seen, µs since session start.
    pub t: Micros,
    /// The text, trimmed.
    pub text: String,
}

/// Collects a session's distinct screen lines.
#[derive(Debug, Default)]
pub(crate) struct ScreenText {
    printed: Printed,
    seen: Seen,
    last_read: Micros,
    /// Output bytes since the last screen read.
    bytes: usize,
}

impl ScreenText {
    /// Takes the printed lines of output bytes that arrived at `t`.
    pub(crate) fn output(&mut self, t: Micros, bytes: &[u8], out: &mut Vec<ScreenLine>) {
        self.bytes += bytes.len();
        let Self { printed, seen, .. } = self;
        printed.feed(bytes, &mut |line| keep_bytes(seen, t, line, out));
    }

    /// Whether a screen read is due at `t` (only while a full-screen program runs).
    pub(crate) fn read_due(&self, t: Micros, alternate: bool) -> bool {
        alternate && self.bytes >= SAMPLE_MIN_BYTES && t.saturating_sub(self.last_read) >= SAMPLE_INTERVAL
    }

    /// Reads the whole screen; keeps its lines not seen before.
    pub(crate) fn read(&mut self, screen: &vt100::Screen, t: Micros, out: &mut Vec<ScreenLine>) {
        self.last_read = t;
        self.bytes = 0;
        for line in screen.contents().split('\n') {
            keep(&mut self.seen, t, line, out);
        }
    }

    /// The end of the session: the line in progress, and a last look at the screen.
    pub(crate) fn finish(&mut self, screen: &vt100::Screen, t: Micros, out: &mut Vec<ScreenLine>) {
        let Self { printed, seen, .. } = self;
        printed.flush(&mut |line| keep_bytes(seen, t, line, out));
        self.read(screen, t, out);
    }
}

/// Hashes of the lines seen lately (see [`GENERATION`]). The sets grow on demand (most
/// sessions are small); after the first generation they keep their capacity.
#[derive(Debug, Default)]
struct Seen {
    current: FxHashSet<u64>,
    previous: FxHashSet<u64>,
}

impl Seen {
    /// Whether `hash` is new (and remembers it).
    fn insert(&mut self, hash: u64) -> bool {
        if self.previous.contains(&hash) || !self.current.insert(hash) {
            return false;
        }
        if self.current.len() >= GENERATION {
            self.previous.clear();
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        true
    }
}

/// Keeps `line` (trimmed) if it is not empty and was not seen before.
fn keep(seen: &mut Seen, t: Micros, line: &str, out: &mut Vec<ScreenLine>) {
    keep_bytes(seen, t, line.as_bytes(), out);
}

/// [`keep`] for raw printed bytes: duplicates are dropped before any UTF-8 work.
fn keep_bytes(seen: &mut Seen, t: Micros, line: &[u8], out: &mut Vec<ScreenLine>) {
    let text = line.trim_ascii();
    if text.is_empty() {
        return;
    }
    if seen.insert(FxBuildHasher.hash_one(text)) {
        let text = String::from_utf8_lossy(text);
        let text = text.trim();
        if !text.is_empty() {
            out.push(ScreenLine { t, text: text.to_string() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_of(bytes: &[u8]) -> vt100::Parser {
        let mut p = vt100::Parser::new(std::num::NonZeroU16::new(5).unwrap(), std::num::NonZeroU16::new(20).unwrap(), 0);
        p.process(bytes);
        p
    }

    #[test]
    fn lines_are_kept_once_with_their_first_time() {
        let mut st = ScreenText::default();
        let mut out = Vec::new();
        st.output(10, b"alpha\r\nbeta\r\n", &mut out);
        st.output(20, b"alpha\r\ngamma\r\n  \r\n", &mut out);
        let got: Vec<_> = out.iter().map(|l| (l.t, l.text.as_str())).collect();
        assert_eq!(got, [(10, "alpha"), (10, "beta"), (20, "gamma")]);
    }

    #[test]
    fn screen_reads_join_wrapped_rows_and_skip_seen_lines() {
        let p = screen_of(b"0123456789012345678901234\r\nbeta");
        let mut st = ScreenText::default();
        let mut out = Vec::new();
        st.output(1, b"beta\r\n", &mut out);
        st.read(p.screen(), 5, &mut out);
        let got: Vec<_> = out.iter().map(|l| (l.t, l.text.as_str())).collect();
        assert_eq!(got, [(1, "beta"), (5, "0123456789012345678901234")]);
    }

    #[test]
    fn reads_are_due_only_in_full_screen_programs_with_output() {
        let mut st = ScreenText::default();
        let mut out = Vec::new();
        st.output(0, &[b'x'; SAMPLE_MIN_BYTES], &mut out);
        assert!(!st.read_due(SAMPLE_INTERVAL, false));
        assert!(st.read_due(SAMPLE_INTERVAL, true));
        assert!(!st.read_due(SAMPLE_INTERVAL - 1, true));
        st.read(screen_of(b"").screen(), SAMPLE_INTERVAL, &mut out);
        st.output(SAMPLE_INTERVAL, b"few", &mut out);
        assert!(!st.read_due(3 * SAMPLE_INTERVAL, true), "too little output since the last read");
    }
}
