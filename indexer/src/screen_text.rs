//! The screen text people saw: lines read off the emulated screen, de-duplicated across
//! redraws, for the search index.
//!
//! Reading every row after every frame would cost more than the emulation itself, so the
//! screen is sampled only when content could otherwise be lost or has been on view a while:
//! - before a line could scroll off: the pipeline cuts output after every `rows - 1`
//!   newlines ([`ScreenText::scan`]) and samples there;
//! - before sequences that wipe the screen (erase display, reset, alternate-screen switch);
//! - before a resize, and at the end of the session;
//! - when [`SAMPLE_INTERVAL`] of session time has passed since the last sample.
//!
//! Known limits: text overwritten in place (cursor moves, `\r` progress bars) within the
//! interval is seen only in its last state; a wide line that scrolls off through wrapping
//! alone (no newline) between samples can lose its first rows; a wipe sequence split across
//! two frames is not seen as one (the interval still samples). Lines are whole logical
//! lines (wrapped rows joined), trimmed; the line the cursor is on is left out of interval
//! samples, because it is usually being typed and is read again once finished.
//!
//! Secrets: only output reaches the screen; input typed without echo never does.

use std::collections::HashSet;
use std::hash::{Hash as _, Hasher as _};

use gatehouse_recorder::Micros;

/// Sample at least this often while output changes the screen (session time).
pub const SAMPLE_INTERVAL: Micros = 1_000_000;

/// Forget seen lines past this many (memory bound): a line seen again after that is
/// indexed again, which only costs a duplicate hit.
const SEEN_CAP: usize = 1 << 20;

/// One distinct line of screen text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenLine {
    /// When it was first seen, µs since session start.
    pub t: Micros,
    /// The text, trimmed.
    pub text: String,
}

/// Where [`ScreenText::scan`] wants output cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Sample after the byte before this index (a newline completed a screenful).
    After(usize),
    /// Sample before this index (a wiping sequence starts here).
    Before(usize),
}

/// Samples the screen and keeps each distinct line once.
#[derive(Debug, Default)]
pub(crate) struct ScreenText {
    seen: HashSet<u64>,
    last_sample: Micros,
    newlines: usize,
    /// Whether output arrived since the last sample.
    dirty: bool,
}

impl ScreenText {
    /// Finds the first place in `bytes` where the screen must be sampled before the rest
    /// is applied; `rows` is the current terminal height. Counts newlines as it goes, so
    /// call it on the remainder after each cut.
    pub(crate) fn scan(&mut self, bytes: &[u8], rows: u16) -> Option<Cut> {
        let limit = usize::from(rows.max(2) - 1);
        for at in memchr::memchr2_iter(b'\n', 0x1b, bytes) {
            if bytes[at] == b'\n' {
                self.newlines += 1;
                if self.newlines >= limit {
                    return Some(Cut::After(at + 1));
                }
            } else if (at > 0 || self.dirty) && wipes(&bytes[at + 1..]) {
                return Some(Cut::Before(at));
            }
        }
        None
    }

    /// Notes that output was applied to the screen since the last sample.
    pub(crate) fn applied(&mut self) {
        self.dirty = true;
    }

    /// Whether an interval sample is due before applying a frame at `t`.
    pub(crate) fn due(&self, t: Micros) -> bool {
        self.dirty && t.saturating_sub(self.last_sample) >= SAMPLE_INTERVAL
    }

    /// Reads the screen; appends lines not seen before to `out`. `skip_cursor_line` leaves
    /// out the logical line holding the cursor (an interval sample while typing).
    pub(crate) fn sample(&mut self, screen: &vt100::Screen, t: Micros, skip_cursor_line: bool, out: &mut Vec<ScreenLine>) {
        self.last_sample = t;
        self.newlines = 0;
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let cursor_line = if skip_cursor_line { Some(logical_line_of(screen, screen.cursor_position().0)) } else { None };
        let contents = screen.contents();
        for (i, line) in contents.split('\n').enumerate() {
            let text = line.trim();
            if text.is_empty() || Some(i) == cursor_line {
                continue;
            }
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            if self.seen.len() >= SEEN_CAP {
                self.seen.clear();
            }
            if self.seen.insert(h.finish()) {
                out.push(ScreenLine { t, text: text.to_string() });
            }
        }
    }
}

/// Which logical line (rows joined where they wrap, as `Screen::contents` joins them)
/// screen row `row` belongs to.
fn logical_line_of(screen: &vt100::Screen, row: u16) -> usize {
    (0..row).filter(|&r| !screen.row_wrapped(r)).count()
}

/// Whether the bytes after an ESC start a sequence that wipes what is on screen: erase in
/// display (`CSI J`, `CSI 0 J`, `CSI 1 J`, `CSI 2 J`), reset (`ESC c`), or an alternate-screen
/// switch (`CSI ? 47/1047/1049 h|l`).
fn wipes(after_esc: &[u8]) -> bool {
    match after_esc {
        [b'c', ..] => true,
        [b'[', b'J', ..] => true,
        [b'[', b'0' | b'1' | b'2', b'J', ..] => true,
        [b'[', b'?', rest @ ..] => {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            matches!(&rest[..digits], b"47" | b"1047" | b"1049") && matches!(rest.get(digits), Some(b'h' | b'l'))
        }
        _ => false,
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
    fn wipes_table() {
        for (seq, want) in [
            (&b"[2J"[..], true),
            (b"[J", true),
            (b"[0J", true),
            (b"c", true),
            (b"[?1049h", true),
            (b"[?1049l", true),
            (b"[?47h", true),
            (b"[?2004h", false),
            (b"[K", false),
            (b"[3J", false),
            (b"[31m", false),
            (b"[?104", false),
        ] {
            assert_eq!(wipes(seq), want, "{}", String::from_utf8_lossy(seq));
        }
    }

    #[test]
    fn lines_are_kept_once_and_cursor_line_skipped_when_asked() {
        let p = screen_of(b"alpha\r\nbeta\r\n$ typing");
        let mut st = ScreenText { dirty: true, ..Default::default() };
        let mut out = Vec::new();
        st.sample(p.screen(), 10, true, &mut out);
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["alpha", "beta"]);
        st.dirty = true;
        st.sample(p.screen(), 20, false, &mut out);
        let texts: Vec<_> = out.iter().map(|l| (l.t, l.text.as_str())).collect();
        assert_eq!(texts, [(10, "alpha"), (10, "beta"), (20, "$ typing")]);
    }

    #[test]
    fn wrapped_rows_are_one_line() {
        let p = screen_of(b"0123456789012345678901234\r\nnext");
        let mut st = ScreenText { dirty: true, ..Default::default() };
        let mut out = Vec::new();
        st.sample(p.screen(), 0, true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "0123456789012345678901234");
    }

    #[test]
    fn scan_cuts_after_a_screenful_of_newlines_and_before_wipes() {
        let mut st = ScreenText::default();
        assert_eq!(st.scan(b"a\nb\nc\nd\ne\n", 5), Some(Cut::After(8)));
        let mut st = ScreenText::default();
        assert_eq!(st.scan(b"text\x1b[31mred\x1b[H\x1b[2Jnew", 24), Some(Cut::Before(15)));
        let mut st = ScreenText::default();
        assert_eq!(st.scan(b"text\x1b[31mred\x1b[Kmore\r\n", 24), None);
    }
}
