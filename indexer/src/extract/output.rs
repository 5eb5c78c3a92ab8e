//! The output side of the state machine: feeding output to the session's `vt100` parser
//! in as few pieces as possible, and stopping at the two places where it must look at the
//! screen — a newline while a line end is awaited, and a bracketed-paste switch (a line
//! editor starting or accepting a line).

use gatehouse_recorder::Micros;

use super::input::LineStart;
use super::snapshot::Snapshot;
use super::{Extractor, text};

/// Output bytes allowed between bash's newline and its leaving bracketed-paste mode for
/// the capture taken at the newline to still be the accepted line (it sends `\r\n` then
/// the mode switch; anything longer means the newline was a completion listing's).
const ACCEPT_SLACK: usize = 4;

/// Bracketed-paste mode switches (`ESC [ ? 2004 h` / `l`): a line editor starts or stops
/// reading, without its final byte.
const MODE_SEQ: &[u8] = b"\x1b[?2004";
const MODE_SEQ_LEN: usize = MODE_SEQ.len();
static MODE_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> = std::sync::LazyLock::new(|| {
    memchr::memmem::FinderBuilder::new().build_forward_with_ranker(TerminalRank, MODE_SEQ)
});

/// Byte frequencies for searching terminal output: ESC, `[` and digits start and fill
/// every colour change, so the search keys on the `?` of a private mode instead.
struct TerminalRank;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for TerminalRank {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            0x1b | b'[' | b';' => 255,
            b'0'..=b'9' => 240,
            b'?' => 60,
            _ => 128,
        }
    }
}

/// Continues a mode switch whose first `matched` bytes ended the previous chunk: (bytes of
/// the switch matched so far, and the end of the switch in `bytes` when complete).
fn continue_mode_seq(mut matched: usize, bytes: &[u8]) -> (usize, Option<usize>) {
    let mut i = 0;
    while matched < MODE_SEQ_LEN {
        match bytes.get(i) {
            Some(b) if *b == MODE_SEQ[matched] => {
                matched += 1;
                i += 1;
            }
            Some(_) => return (0, None),
            None => return (matched, None),
        }
    }
    match bytes.get(i) {
        Some(_) => (MODE_SEQ_LEN, Some(i + 1)),
        None => (matched, None),
    }
}

/// The line editor (bracketed-paste mode) as seen at output boundaries.
#[derive(Debug, Default)]
pub(super) struct Editor {
    pub(super) on: bool,
    /// The session's programs use bracketed paste at all.
    pub(super) seen: bool,
    pub(super) since: Micros,
    /// Application cursor keys were on when the editor started (zsh's line editor).
    pub(super) keypad: bool,
    /// The cursor (absolute row, column) when the editor started: right after the prompt
    /// for editors that draw it first (zsh).
    pub(super) on_pos: Option<(u64, u16)>,
    /// Text right of the cursor when a zsh-like editor started (its right prompt).
    pub(super) on_rprompt: Option<String>,
    /// The alternate screen was active during this editor session (a full-screen program).
    pub(super) alternate: bool,
    /// Output bytes and input frames while on (both zero: a mode toggle, not a line).
    pub(super) bytes: usize,
    pub(super) inputs: usize,
    /// The screen captured at the last newline while on, and output bytes since.
    pub(super) at_newline: Option<(Snapshot, usize)>,
}

/// An accepted line whose last row is decided by where the cursor goes next.
#[derive(Debug)]
pub(super) struct Deferred {
    /// Absolute row of the cursor when the line was accepted.
    pub(super) anchor: u64,
    /// Non-blank rows right below it then.
    pub(super) below: u16,
}

impl Extractor {
    pub(super) fn output(&mut self, bytes: &[u8]) {
        self.last_output = self.now;
        // Split only where the state machine must look at the screen: at bracketed-paste
        // switches, and at newlines while a line end is awaited. Everything else goes to
        // the parser in one piece (the throughput target is ≥ 0.8× bare vt100).
        let mut from = 0;
        if self.mode_seq > 0 {
            // A bracketed-paste switch began at the end of the previous chunk.
            let (matched, used) = continue_mode_seq(self.mode_seq, bytes);
            self.mode_seq = 0;
            match (matched, used) {
                (MODE_SEQ_LEN, Some(end)) => {
                    self.feed(&bytes[..end], end);
                    from = end;
                    self.check_editor();
                }
                (m, None) if m > 0 => {
                    self.mode_seq = m;
                    self.feed(bytes, bytes.len());
                    return;
                }
                _ => {}
            }
        }
        if bytes.len() - from <= 4 && !bytes[from..].iter().any(|b| *b == b'\n' || *b == 0x1b) {
            // Echo of a keystroke: nothing to look at.
            self.feed(&bytes[from..], 0);
            return;
        }
        let mut scan = from;
        loop {
            // Newlines matter only while a line end is awaited, and only a mode switch can
            // change that: otherwise (a command's output) jump from switch to switch.
            let awaiting = self.editor.on || !self.terms.is_empty() || self.deferred.is_some();
            let found = if awaiting {
                memchr::memchr2(b'\n', 0x1b, &bytes[scan..])
            } else {
                MODE_FINDER.find(&bytes[scan..])
            };
            let Some(off) = found else { break };
            let at = scan + off;
            if bytes[at] == b'\n' {
                scan = at + 1;
                self.feed(&bytes[from..at], 0);
                from = at;
                self.at_newline();
            } else if bytes[at..].starts_with(MODE_SEQ) && at + MODE_SEQ_LEN < bytes.len() {
                let end = at + MODE_SEQ_LEN + 1;
                self.feed(&bytes[from..end], MODE_SEQ_LEN + 1);
                from = end;
                scan = end;
                self.check_editor();
            } else {
                scan = at + 1;
            }
        }
        // Output arrives in arbitrary chunks: a switch may continue in the next one.
        let partial = (1..=MODE_SEQ_LEN).rev().find(|n| bytes[from..].ends_with(&MODE_SEQ[..*n])).unwrap_or(0);
        self.feed(&bytes[from..], partial);
        self.mode_seq = partial;
    }

    /// Processes a piece of output; `mode_switch` trailing bytes are a mode sequence
    /// (not counted as text drawn).
    pub(super) fn feed(&mut self, piece: &[u8], mode_switch: usize) {
        if piece.is_empty() {
            return;
        }
        self.parser.process(piece);
        if let Some(excerpt) = &mut self.excerpt
            && excerpt.wants_more()
        {
            excerpt.push(piece);
        }
        let drawn = piece.len() - mode_switch;
        if self.editor.on {
            self.editor.bytes += drawn;
            if self.parser.screen().alternate_screen() {
                self.editor.alternate = true;
            }
        }
        if let Some((_, since)) = &mut self.editor.at_newline {
            *since += drawn;
        }
    }

    pub(super) fn at_newline(&mut self) {
        self.resolve_deferred();
        if self.parser.screen().alternate_screen() {
            return;
        }
        if self.editor.on {
            let snap = self.snapshot(self.hint(), None, 0, true);
            self.editor.at_newline = Some((snap, 0));
        } else {
            self.skip_hidden_terms();
            // (An Enter typed while an editor was reading stays for the editor: it is the
            // next line of a paste, not the end of this command's output line.)
            if self.terms.front().is_none_or(|t| t.to_editor) {
                return;
            }
            let term = self.terms.pop_front().expect("checked");
            self.cooked_line(term);
        }
    }

    /// Before a cooked-mode newline is matched to a line end: a hidden line (typed with
    /// echo off) whose Enter printed nothing does not own it when a line typed after it
    /// was echoed — the newline is that line's.
    fn skip_hidden_terms(&mut self) {
        while self.terms.front().is_some_and(|t| t.no_echo)
            && self.terms.iter().skip(1).any(|t| !t.to_editor && !t.no_echo)
        {
            self.terms.pop_front();
        }
    }

    /// The start of the line the screen is about to end: the oldest unconsumed Enter's
    /// line, else the line being typed.
    pub(super) fn hint(&self) -> Option<&LineStart> {
        match self.terms.front() {
            Some(t) => t.start.as_ref(),
            None => self.line.as_ref(),
        }
    }

    /// Looks at the line editor after a bracketed-paste switch.
    pub(super) fn check_editor(&mut self) {
        self.resolve_deferred();
        let screen = self.parser.screen();
        let on = screen.bracketed_paste();
        if on == self.editor.on {
            return;
        }
        self.editor.on = on;
        if on {
            if !self.editor.seen {
                // The first line editor: it replays what was typed before it came up.
                self.limbo.clear();
            }
            self.editor = Editor {
                on: true,
                seen: true,
                since: self.now,
                keypad: screen.application_cursor(),
                on_pos: None,
                on_rprompt: None,
                alternate: screen.alternate_screen(),
                bytes: 0,
                inputs: 0,
                at_newline: None,
            };
            self.editor.on_pos = Some(self.cursor_abs());
            if self.editor.keypad {
                // zsh has drawn its prompt, right prompt included: keep the latter for lines
                // typed ahead, which have no line start to take it from.
                let screen = self.parser.screen();
                let (row, col) = screen.cursor_position();
                let row_text = text::read_row(screen, row);
                let right = text::split_at_col(&row_text, col).1.trim();
                if !right.is_empty() {
                    self.editor.on_rprompt = Some(right.to_string());
                    self.prompts.saw_right_prompt();
                }
            }
            // Keys typed before the editor drew its prompt were typed ahead: their
            // position says nothing about where the editor will show them.
            if let Some(line) = &mut self.line {
                line.pos = None;
                line.sig = None;
                line.rprompt = None;
            }
            self.prompt_event(self.now);
        } else {
            let at_newline = self.editor.at_newline.take();
            if (self.editor.bytes == 0 && self.editor.inputs == 0) || self.editor.alternate || screen.alternate_screen()
            {
                return;
            }
            if let Some((snap, since)) = at_newline.filter(|(_, since)| *since <= ACCEPT_SLACK) {
                let _ = since;
                self.editor_line(snap);
                return;
            }
            // zsh leaves the mode with the cursor still in the line. A line of several rows
            // may continue below the cursor (non-blank rows there): the editor moves below
            // the line before the command's output starts, so where the cursor is at the
            // next newline or switch tells how far; until then the decision waits.
            let (crow, _) = screen.cursor_position();
            let below = text::filled_rows_below(screen, text::wrapped_end(screen, crow));
            let anchor = self.parser.callbacks().scrolled + u64::from(crow);
            if below == 0 {
                let snap = self.snapshot(self.hint(), None, 0, true);
                self.editor_line(snap);
            } else {
                self.deferred = Some(Deferred { anchor, below });
            }
        }
    }

    /// Reads a line whose end was waiting for the editor's next move (see `check_editor`).
    pub(super) fn resolve_deferred(&mut self) {
        let Some(d) = self.deferred.take() else {
            return;
        };
        let (row, _) = self.cursor_abs();
        let below = d.below.min(u16::try_from(row.saturating_sub(d.anchor + 1)).unwrap_or(u16::MAX));
        let snap = self.snapshot(self.hint(), Some(d.anchor), below, true);
        self.editor_line(snap);
    }
}
