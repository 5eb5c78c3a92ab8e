//! The input side of the state machine: where each typed line starts (cursor position and
//! prompt signature), and the Enter or Ctrl-C that ends it.

use gatehouse_recorder::Micros;

use super::keys::Key;
use super::prompt::PromptSig;
use super::{Extractor, text};

/// Where and how a typed line began.
#[derive(Debug, Clone)]
pub(super) struct LineStart {
    /// Absolute row (counting scrolled rows) and column of the cursor, when known.
    pub(super) pos: Option<(u64, u16)>,
    /// The prompt left of the cursor when typing began.
    pub(super) sig: Option<PromptSig>,
    /// Right-aligned text on the prompt row (zsh `RPROMPT`).
    pub(super) rprompt: Option<String>,
    /// Text keys typed on this line so far.
    pub(super) text_keys: u32,
    /// The frame the line began in.
    pub(super) frame: u64,
}

/// A typed Enter or Ctrl-C not yet seen on screen.
#[derive(Debug)]
pub(super) struct Terminator {
    pub(super) key: Key,
    pub(super) t: Micros,
    /// The input frame it came in.
    pub(super) frame: u64,
    pub(super) start: Option<LineStart>,
    /// Text was typed but nothing was echoed.
    pub(super) no_echo: bool,
    /// The line's keys came in the same frame as its Enter (a paste, a fast typist): its
    /// echo could not show yet, so `no_echo` is decided at the next input frame.
    pub(super) echo_pending: bool,
    /// Typed while a line editor was reading: it is the editor's to end.
    pub(super) to_editor: bool,
}

impl Extractor {
    pub(super) fn input(&mut self, bytes: &[u8]) {
        let screen = self.parser.screen();
        let alternate = screen.alternate_screen();
        let bracketed = screen.bracketed_paste();
        if alternate {
            // Keys for a full-screen program are never lines (paste state still tracked).
            self.keys.scan(bytes, bracketed, |_| {});
            self.line = None;
            return;
        }
        if self.editor.on {
            self.editor.inputs += 1;
        }
        self.decide_echo();
        // After the first line end in a frame, the next line's start is not on screen yet.
        let mut position_known = true;
        for &b in bytes {
            let key = self.keys.step(b, bracketed);
            if self.line.is_none() {
                if self.editor.on && position_known {
                    self.drop_unshown_terms();
                }
                self.line = Some(self.line_start(position_known));
            }
            let line = self.line.as_mut().expect("just set");
            match key {
                Key::Text => line.text_keys += 1,
                Key::Enter | Key::Interrupt => {
                    let start = self.line.take().expect("just set");
                    let unmoved =
                        !self.editor.on && start.text_keys > 0 && start.pos.is_some_and(|p| p == self.cursor_abs());
                    let same_frame = start.frame == self.frames;
                    self.terms.push_back(Terminator {
                        key,
                        t: self.now,
                        frame: self.frames,
                        start: Some(start),
                        no_echo: unmoved && !same_frame,
                        echo_pending: unmoved && same_frame,
                        to_editor: self.editor.on,
                    });
                    position_known = false;
                }
                Key::Other => {}
            }
        }
    }

    pub(super) fn line_start(&mut self, position_known: bool) -> LineStart {
        if !self.editor.seen && position_known {
            // Without a line editor there is no prompt event: the first key is the end of
            // the previous command's output.
            self.prompt_event(self.last_output);
        }
        let mut start = LineStart { pos: None, sig: None, rprompt: None, text_keys: 0, frame: self.frames };
        if position_known {
            let screen = self.parser.screen();
            let (row, col) = screen.cursor_position();
            start.pos = Some((self.parser.callbacks().scrolled + u64::from(row), col));
            let row_text = text::read_row(screen, row);
            let (left, rest) = text::split_at_col(&row_text, col);
            // A prompt longer than the terminal is wide wraps onto this row from above.
            let mut logical = String::new();
            if row > 0 && screen.row_wrapped(row - 1) {
                let top = text::wrapped_start(screen, row - 1);
                logical = screen.contents_between(top, 0, row - 1, screen.size().1.get());
            }
            match self.editor.on_pos {
                // bash's editor switches bracketed paste on right before drawing its prompt:
                // text left of that on the row was printed before (a program's own prompt
                // that read a hidden line, with no newline after it) and is not the shell's.
                Some((on_row, on_col))
                    if self.editor.on && !self.editor.keypad && on_row == start.pos.expect("set").0 && on_col < col =>
                {
                    logical.clear();
                    logical.push_str(text::split_at_col(&left, on_col).1);
                }
                _ => logical.push_str(&left),
            }
            start.sig = Some(PromptSig { text: left, col, logical });
            let rest = rest.trim();
            start.rprompt = (!rest.is_empty()).then(|| rest.to_string());
            if start.rprompt.is_some() {
                self.prompts.saw_right_prompt();
            }
        }
        start
    }

    /// Lines that came with their Enter in one frame and are still waiting for their
    /// newline: if the cursor has not moved from where they began by the next input frame,
    /// the terminal did not echo them.
    fn decide_echo(&mut self) {
        let cursor = self.cursor_abs();
        for t in self.terms.iter_mut().filter(|t| t.echo_pending) {
            t.echo_pending = false;
            t.no_echo = t.start.as_ref().and_then(|s| s.pos) == Some(cursor);
        }
    }

    /// A key was typed at a line editor's prompt: line ends typed before the editor came
    /// up that it has not shown were consumed by the program that ran before it (a hidden
    /// line read with echo off, whose Enter printed nothing). An editor replays type-ahead
    /// as soon as it starts, so anything still waiting now will never show on screen.
    fn drop_unshown_terms(&mut self) {
        let since = self.editor.since;
        self.terms.retain(|t| t.to_editor || t.t >= since);
    }

    /// The Enter or Ctrl-C that ended the line the editor just accepted.
    pub(super) fn take_terminator(&mut self) -> Option<Terminator> {
        let since = self.editor.since;
        // Enters typed before this editor session began belong to lines the screen never
        // showed ending (e.g. typed at a prompt that printed no newline): drop them.
        if self.terms.iter().any(|t| t.t >= since) {
            while self.terms.front().is_some_and(|t| t.t < since) {
                self.terms.pop_front();
            }
        }
        let in_session = self.terms.iter().take_while(|t| t.t >= since).count();
        if in_session >= 2 && self.terms[0].frame != self.terms[in_session - 1].frame {
            // Keys typed one by one: the editor took the earlier Enters itself (choosing a
            // completion from a menu); the last one ended the line, which began with the first.
            let first_start = self.terms[0].start.clone();
            let mut last = self.terms.drain(..in_session).next_back().expect("two or more");
            last.start = first_start;
            return Some(last);
        }
        self.terms.pop_front()
    }
}
