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
//! dropped by a 64-bit hash of the last 64–128 Ki distinct lines ([`seen`]). Secrets: only output is read, and input typed without echo
//! never reaches the output.

mod found;
mod printed;
mod seen;

pub use found::{ScreenLine, ScreenLines};
pub use printed::MAX_LINE;
pub(crate) use printed::printable_run;

use std::hash::BuildHasher as _;

use gatehouse_recorder::Micros;
use rustc_hash::FxBuildHasher;

use printed::Printed;
use seen::Seen;

/// While a full-screen program runs, read the screen at least this often (session time;
/// a read costs about as much as emulating a screenful)...
pub const SAMPLE_INTERVAL: Micros = 30_000_000;
/// ...if at least this much output came since the last read.
pub const SAMPLE_MIN_BYTES: usize = 4096;

/// Collects a session's distinct screen lines.
#[derive(Debug, Default)]
pub(crate) struct ScreenText {
    printed: Printed,
    seen: Seen,
    /// The lines of the chunk at hand, checked against `seen` together (see [`Seen`]).
    lines: Lines,
    last_read: Micros,
    /// Output bytes since the last screen read.
    bytes: usize,
}

impl ScreenText {
    /// Takes the printed lines of output bytes that arrived at `t`.
    pub(crate) fn output(&mut self, t: Micros, bytes: &[u8], out: &mut ScreenLines) {
        self.bytes += bytes.len();
        let Self { printed, lines, .. } = self;
        printed.feed(bytes, &mut |line| lines.add(line));
        self.lines.keep_new(&mut self.seen, t, out);
    }

    /// Whether a screen read is due at `t` (only while a full-screen program runs).
    pub(crate) fn read_due(&self, t: Micros, alternate: bool) -> bool {
        alternate && self.bytes >= SAMPLE_MIN_BYTES && t.saturating_sub(self.last_read) >= SAMPLE_INTERVAL
    }

    /// Reads the whole screen; keeps its lines not seen before.
    pub(crate) fn read(&mut self, screen: &vt100::Screen, t: Micros, out: &mut ScreenLines) {
        self.last_read = t;
        self.bytes = 0;
        for line in screen.contents().split('\n') {
            self.lines.add(line.as_bytes());
        }
        self.lines.keep_new(&mut self.seen, t, out);
    }

    /// The end of the session: the line in progress, and a last look at the screen.
    pub(crate) fn finish(&mut self, screen: &vt100::Screen, t: Micros, out: &mut ScreenLines) {
        let Self { printed, lines, .. } = self;
        printed.flush(&mut |line| lines.add(line));
        self.read(screen, t, out);
    }
}

/// Lines waiting to be checked against the lines seen: trimmed, non-empty, hashed.
#[derive(Debug, Default)]
struct Lines {
    /// Their text, one after the other (raw bytes, UTF-8 as the program sent it).
    text: Vec<u8>,
    /// Per line: its hash and where its text ends.
    ends: Vec<(u64, usize)>,
    /// The slots read ahead (kept so that the reads happen).
    touched: u64,
}

impl Lines {
    fn add(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if !line.is_empty() {
            self.text.extend_from_slice(line);
            self.ends.push((FxBuildHasher.hash_one(line), self.text.len()));
        }
    }

    /// Appends the lines not seen before to `out`, in order; empties the batch.
    fn keep_new(&mut self, seen: &mut Seen, t: Micros, out: &mut ScreenLines) {
        // Start every line's memory access first: they overlap instead of queueing.
        if self.ends.len() > 1 {
            self.touched = self.ends.iter().fold(self.touched, |acc, &(hash, _)| acc ^ seen.touch(hash));
        }
        out.reserve(self.text.len());
        let mut start = 0;
        for &(hash, end) in &self.ends {
            let line = &self.text[start..end];
            start = end;
            if !seen.insert(hash) {
                continue;
            }
            // Duplicates are dropped before any UTF-8 work.
            out.push_bytes(t, line);
        }
        self.text.clear();
        self.ends.clear();
        // One huge chunk should not pin its size for the rest of the session.
        if self.text.capacity() > 1 << 20 {
            self.text.shrink_to(64 << 10);
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
        let mut out = ScreenLines::default();
        st.output(10, b"alpha\r\nbeta\r\n", &mut out);
        st.output(20, b"alpha\r\ngamma\r\n  \r\n", &mut out);
        let got: Vec<_> = out.iter().map(|l| (l.t, l.text)).collect();
        assert_eq!(got, [(10, "alpha"), (10, "beta"), (20, "gamma")]);
    }

    #[test]
    fn screen_reads_join_wrapped_rows_and_skip_seen_lines() {
        let p = screen_of(b"0123456789012345678901234\r\nbeta");
        let mut st = ScreenText::default();
        let mut out = ScreenLines::default();
        st.output(1, b"beta\r\n", &mut out);
        st.read(p.screen(), 5, &mut out);
        let got: Vec<_> = out.iter().map(|l| (l.t, l.text)).collect();
        assert_eq!(got, [(1, "beta"), (5, "0123456789012345678901234")]);
    }

    /// The printed lines of `chunks` (time, text), with every chunk cut at up to `cuts`
    /// random points (inside escape sequences and UTF-8 characters too).
    fn printed_lines(chunks: &[(Micros, &[u8])], cuts: u64, seed: u64) -> Vec<(Micros, String)> {
        let mut rng = gatehouse_fixtures::terminal::Rng::new(seed);
        let mut st = ScreenText::default();
        let mut out = ScreenLines::default();
        for &(t, bytes) in chunks {
            let mut rest = bytes;
            for _ in 0..rng.below(cuts + 1) {
                let (piece, after) = rest.split_at(rng.below(rest.len() as u64 + 1) as usize);
                st.output(t, piece, &mut out);
                rest = after;
            }
            st.output(t, rest, &mut out);
        }
        st.printed.flush(&mut |line| st.lines.add(line));
        st.lines.keep_new(&mut st.seen, Micros::MAX, &mut out);
        out.iter().map(|l| (l.t, l.text.to_string())).collect()
    }

    #[test]
    fn how_output_is_cut_into_chunks_does_not_change_the_lines() {
        let w = gatehouse_fixtures::terminal::realistic_session(5, 400_000);
        let chunks: Vec<(Micros, &[u8])> = w
            .frames
            .iter()
            .filter_map(|f| match &f.data {
                gatehouse_recorder::FrameData::Output(b) => Some((f.t, &b[..])),
                _ => None,
            })
            .collect();
        let whole = printed_lines(&chunks, 0, 1);
        assert!(whole.len() > 1000, "{} lines", whole.len());
        for seed in 2..5 {
            assert_eq!(printed_lines(&chunks, 3, seed), whole, "cut with seed {seed}");
        }
        // One byte at a time, on a part of it.
        let bytes: Vec<(Micros, &[u8])> = chunks[..400].iter().flat_map(|&(t, b)| b.chunks(1).map(move |c| (t, c))).collect();
        assert_eq!(printed_lines(&bytes, 0, 1), printed_lines(&chunks[..400], 0, 1));
    }

    #[test]
    fn reads_are_due_only_in_full_screen_programs_with_output() {
        let mut st = ScreenText::default();
        let mut out = ScreenLines::default();
        st.output(0, &[b'x'; SAMPLE_MIN_BYTES], &mut out);
        assert!(!st.read_due(SAMPLE_INTERVAL, false));
        assert!(st.read_due(SAMPLE_INTERVAL, true));
        assert!(!st.read_due(SAMPLE_INTERVAL - 1, true));
        st.read(screen_of(b"").screen(), SAMPLE_INTERVAL, &mut out);
        st.output(SAMPLE_INTERVAL, b"few", &mut out);
        assert!(!st.read_due(3 * SAMPLE_INTERVAL, true), "too little output since the last read");
    }
}
