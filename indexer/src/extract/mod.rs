//! Command extraction: recovers each command line a person ran from a session's frames.
//!
//! The emulated screen is the truth of what ran — what the shell echoed after every
//! backspace, cursor move, word kill, completion, history recall or reverse search — and
//! the input stream only says *when* a line ended (Enter, Ctrl-C) and what was pasted.
//! Typed bytes are never turned into text, so input the terminal did not echo (passwords,
//! `read -s`, `getpass`) cannot appear in a record.
//!
//! # The state machine
//!
//! * **Line start.** The first key of a line records the cursor position and the *prompt
//!   signature*: the screen cells left of the cursor (and any right-aligned text such as
//!   zsh's `RPROMPT`). Prompts are learned this way, never configured.
//! * **Line end, line editor.** Shells (bash ≥ 5.1, zsh) and readline programs turn
//!   bracketed-paste mode on while they edit a line and off when they accept it. When it
//!   turns off, the line is read from the screen: from the row that starts with the
//!   line's prompt signature (searched upwards from the cursor, so redraws, `Ctrl-L`,
//!   completion listings and resizes don't matter) through every wrapped row. Bash ends
//!   the line with a newline *before* leaving the mode, so the screen is also captured
//!   just before each newline while the editor is on, and that capture is used when the
//!   mode goes off right after it.
//! * **Line end, no editor.** A program reading in the terminal's cooked mode (a REPL
//!   without readline, a `read` prompt) gets its Enter echoed as a newline: the first
//!   newline after a typed Enter ends that line. If the cursor did not move while text was
//!   typed, the terminal was not echoing: the line is a secret and is dropped.
//! * **Shell or program.** A line belongs to the shell when its prompt is similar to a
//!   known shell prompt (the first prompt of the session is the shell's; directory or
//!   status changes inside the prompt keep it similar) or continues an unfinished shell
//!   command. Other lines are `program-input` (`>>> `, `sqlite> `, `Name: `). In a session
//!   whose shell uses a line editor, cooked-mode lines are program input; if the shell
//!   later re-echoes one at its prompt, it was type-ahead and becomes a shell command.
//! * **Commands.** Shell lines are grouped into commands by [`syntax`] (quotes,
//!   backslashes, heredocs, compound commands); bash-style history joining or zsh-style
//!   newlines is picked by whether the line editor switched the cursor keys to
//!   application mode (zsh's `zle` does, readline does not). The next prompt gives a
//!   command's end time and its output excerpt (its first output lines, from a copy of
//!   its first output bytes, see [`excerpt`]).
//! * **Full-screen programs.** Keys typed while the alternate screen is active (vim, less,
//!   top) are never lines; an editor session that touched the alternate screen is not a
//!   shell line either.
//!
//! # Known limits
//!
//! * Shells without bracketed paste (bash < 5.1, or with it disabled) are read through the
//!   cooked-mode path: type-ahead while a command runs is then not recognised.
//! * A prompt that changes while a line is typed ahead (before the prompt was ever drawn
//!   with that text) can only be found if an identical prompt was seen before.
//! * Right prompts are removed only when they are still on the row when the line is
//!   accepted; text drawn right of the cursor for other reasons is cut the same way.
//! * The working directory comes from the prompt text only (`~`, `/path`); the exit status
//!   is not read.
//! * A multi-line prompt's upper rows (zsh) can end up in the previous command's excerpt;
//!   output that does not end with a newline shares its row with the next prompt and is
//!   left out of the excerpt. Excerpts are made from the raw output text, so output that
//!   repaints with cursor movements (not a full-screen program) reads approximately.
//! * Vi editing mode, and programs that accept a line without printing a newline or
//!   leaving bracketed-paste mode, are not handled.

mod book;
mod excerpt;
mod keys;
mod prompt;
mod syntax;
mod text;
mod tracker;

use std::collections::VecDeque;
use std::num::NonZeroU16;

use gatehouse_recorder::{Frame, FrameData, Micros};

use self::book::{Book, LineInfo};
use self::excerpt::Excerpt;
use self::keys::{Key, KeyScanner};
use self::prompt::{PromptModel, PromptSig};
use self::syntax::Dialect;
use self::tracker::Tracker;
use crate::command::CommandRecord;

/// Output bytes allowed between bash's newline and its leaving bracketed-paste mode for
/// the capture taken at the newline to still be the accepted line (it sends `\r\n` then
/// the mode switch; anything longer means the newline was a completion listing's).
const ACCEPT_SLACK: usize = 4;


/// Bracketed-paste mode switches (`ESC [ ? 2004 h` / `l`): a line editor starts or stops
/// reading, without its final byte.
const MODE_SEQ: &[u8] = b"\x1b[?2004";
const MODE_SEQ_LEN: usize = MODE_SEQ.len();

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

/// Replays one session's frames and yields the command lines people ran.
///
/// Pure: no I/O, no clocks (time comes from the frames). Owns the session's single
/// `vt100::Parser`; the indexing pipeline reads screens through [`Extractor::screen`].
///
/// ```
/// use gatehouse_indexer::Extractor;
/// use gatehouse_recorder::Frame;
/// let mut x = Extractor::new(80, 24);
/// let mut got = Vec::new();
/// for f in [
///     Frame::output(0, &b"\x1b[?2004h$ "[..]),
///     Frame::input(10, &b"ls"[..]),
///     Frame::output(11, &b"ls"[..]),
///     Frame::input(20, &b"\r"[..]),
///     Frame::output(21, &b"\r\n\x1b[?2004l\rfile\r\n\x1b[?2004h$ "[..]),
/// ] {
///     got.extend(x.push(&f));
/// }
/// got.extend(x.finish());
/// assert_eq!(got[0].command, "ls");
/// assert_eq!(got[0].output_excerpt.as_deref(), Some("file"));
/// ```
pub struct Extractor {
    parser: vt100::Parser<Tracker>,
    keys: KeyScanner,
    /// Time of the frame being processed.
    now: Micros,
    /// Frames pushed so far (tells whether a line's keys and its Enter came together).
    frames: u64,
    last_output: Micros,
    /// Line ends typed but not yet seen on screen, oldest first.
    terms: VecDeque<Terminator>,
    /// The line being typed.
    line: Option<LineStart>,
    editor: Editor,
    prompts: PromptModel,
    book: Book,
    /// The running command's first output bytes.
    excerpt: Option<Excerpt>,
    /// Bytes of a bracketed-paste switch that ended the last output chunk.
    mode_seq: usize,
    /// A line accepted with rows below the cursor, read at the editor's next move.
    deferred: Option<Deferred>,
}

/// An accepted line whose last row is decided by where the cursor goes next.
#[derive(Debug)]
struct Deferred {
    /// Absolute row of the cursor when the line was accepted.
    anchor: u64,
    /// Non-blank rows right below it then.
    below: u16,
}

/// Where and how a typed line began.
#[derive(Debug, Clone)]
struct LineStart {
    /// Absolute row (counting scrolled rows) and column of the cursor, when known.
    pos: Option<(u64, u16)>,
    /// The prompt left of the cursor when typing began.
    sig: Option<PromptSig>,
    /// Right-aligned text on the prompt row (zsh `RPROMPT`).
    rprompt: Option<String>,
    /// Text keys typed on this line so far.
    text_keys: u32,
    /// The frame the line began in.
    frame: u64,
}

/// A typed Enter or Ctrl-C not yet seen on screen.
#[derive(Debug)]
struct Terminator {
    key: Key,
    t: Micros,
    /// The input frame it came in.
    frame: u64,
    start: Option<LineStart>,
    /// Text was typed but nothing was echoed.
    no_echo: bool,
}

/// The line editor (bracketed-paste mode) as seen at output boundaries.
#[derive(Debug, Default)]
struct Editor {
    on: bool,
    /// The session's programs use bracketed paste at all.
    seen: bool,
    since: Micros,
    /// Application cursor keys were on when the editor started (zsh's line editor).
    keypad: bool,
    /// The cursor (absolute row, column) when the editor started: right after the prompt
    /// for editors that draw it first (zsh).
    on_pos: Option<(u64, u16)>,
    /// The alternate screen was active during this editor session (a full-screen program).
    alternate: bool,
    /// Output bytes and input frames while on (both zero: a mode toggle, not a line).
    bytes: usize,
    inputs: usize,
    /// The screen captured at the last newline while on, and output bytes since.
    at_newline: Option<(Snapshot, usize)>,
}

/// A typed line as read from the screen.
#[derive(Debug, Clone)]
struct Snapshot {
    /// Logical lines (wrapped rows joined).
    lines: Vec<String>,
    /// The prompt the line was typed at, if found.
    sig: Option<PromptSig>,
}

impl Extractor {
    /// An extractor for a terminal of `cols`×`rows` (zero is treated as 1).
    pub fn new(cols: u16, rows: u16) -> Extractor {
        Extractor {
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, Tracker::default()),
            keys: KeyScanner::default(),
            now: 0,
            frames: 0,
            last_output: 0,
            terms: VecDeque::new(),
            line: None,
            editor: Editor::default(),
            prompts: PromptModel::default(),
            book: Book::default(),
            excerpt: None,
            mode_seq: 0,
            deferred: None,
        }
    }

    /// Feeds one frame; returns the commands completed by it, oldest first. A command is
    /// complete once the next shell prompt shows (or at [`Extractor::finish`]).
    pub fn push(&mut self, frame: &Frame) -> Vec<CommandRecord> {
        self.now = frame.t;
        self.frames += 1;
        match &frame.data {
            FrameData::Output(bytes) => self.output(bytes),
            FrameData::Input(bytes) => self.input(bytes),
            FrameData::Resize { cols, rows } => self.parser.set_size(nz(*rows), nz(*cols)),
            FrameData::Marker(_) | FrameData::Event(_) => {}
        }
        self.book.take_ready()
    }

    /// Ends the session; returns the commands still open (e.g. the last one).
    pub fn finish(mut self) -> Vec<CommandRecord> {
        self.resolve_deferred();
        if self.book.is_running() {
            let excerpt = self.excerpt.as_ref().and_then(|e| e.text(true));
            self.book.running_excerpt(excerpt);
        }
        self.book.finish()
    }

    /// The emulated terminal as of the last frame pushed.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The shell command accepted last, while its record is held back (it is released by
    /// `push` when the next command starts, or by `finish`; its end time and excerpt may
    /// still change). Live indexing shows it meanwhile.
    pub fn running_command(&self) -> Option<&CommandRecord> {
        self.book.running()
    }

    /// Asks the extractor to keep the text of every row that scrolls off the top of the
    /// main screen, for [`Extractor::take_scrolled_rows`] (off by default: it costs a
    /// string per scrolled row).
    pub fn keep_scrolled_rows(&mut self, keep: bool) {
        self.parser.callbacks_mut().keep_scrolled = keep;
    }

    /// Rows that scrolled off the top of the main screen since the last call, oldest first
    /// (only when [`Extractor::keep_scrolled_rows`] is on).
    pub fn take_scrolled_rows(&mut self) -> Vec<String> {
        std::mem::take(&mut self.parser.callbacks_mut().scrolled_rows)
    }

    // ---- output -------------------------------------------------------------------

    fn output(&mut self, bytes: &[u8]) {
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
        while let Some(off) = memchr::memchr2(b'\n', 0x1b, &bytes[scan..]) {
            let at = scan + off;
            if bytes[at] == b'\n' {
                scan = at + 1;
                if self.editor.on || !self.terms.is_empty() || self.deferred.is_some() {
                    self.feed(&bytes[from..at], 0);
                    from = at;
                    self.at_newline();
                }
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
    fn feed(&mut self, piece: &[u8], mode_switch: usize) {
        if piece.is_empty() {
            return;
        }
        self.parser.process(piece);
        if let Some(excerpt) = &mut self.excerpt {
            if excerpt.wants_more() {
                excerpt.push(piece);
            }
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

    fn at_newline(&mut self) {
        self.resolve_deferred();
        if self.parser.screen().alternate_screen() {
            return;
        }
        if self.editor.on {
            let snap = self.snapshot(self.hint(), None, 0);
            self.editor.at_newline = Some((snap, 0));
        } else if let Some(term) = self.terms.pop_front() {
            self.cooked_line(term);
        }
    }

    /// The start of the line the screen is about to end: the oldest unconsumed Enter's
    /// line, else the line being typed.
    fn hint(&self) -> Option<&LineStart> {
        match self.terms.front() {
            Some(t) => t.start.as_ref(),
            None => self.line.as_ref(),
        }
    }

    /// Looks at the line editor after a bracketed-paste switch.
    fn check_editor(&mut self) {
        self.resolve_deferred();
        let screen = self.parser.screen();
        let on = screen.bracketed_paste();
        if on == self.editor.on {
            return;
        }
        self.editor.on = on;
        if on {
            self.editor = Editor {
                on: true,
                seen: true,
                since: self.now,
                keypad: screen.application_cursor(),
                on_pos: None,
                alternate: screen.alternate_screen(),
                bytes: 0,
                inputs: 0,
                at_newline: None,
            };
            self.editor.on_pos = Some(self.cursor_abs());
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
            if (self.editor.bytes == 0 && self.editor.inputs == 0) || self.editor.alternate || screen.alternate_screen() {
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
                let snap = self.snapshot(self.hint(), None, 0);
                self.editor_line(snap);
            } else {
                self.deferred = Some(Deferred { anchor, below });
            }
        }
    }

    /// Reads a line whose end was waiting for the editor's next move (see `check_editor`).
    fn resolve_deferred(&mut self) {
        let Some(d) = self.deferred.take() else { return };
        let (row, _) = self.cursor_abs();
        let below = d.below.min(u16::try_from(row.saturating_sub(d.anchor + 1)).unwrap_or(u16::MAX));
        let snap = self.snapshot(self.hint(), Some(d.anchor), below);
        self.editor_line(snap);
    }

    // ---- input --------------------------------------------------------------------

    fn input(&mut self, bytes: &[u8]) {
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
        // After the first line end in a frame, the next line's start is not on screen yet.
        let mut position_known = true;
        for &b in bytes {
            let key = self.keys.step(b, bracketed);
            if self.line.is_none() {
                self.line = Some(self.line_start(position_known));
            }
            let line = self.line.as_mut().expect("just set");
            match key {
                Key::Text => line.text_keys += 1,
                Key::Enter | Key::Interrupt => {
                    let start = self.line.take().expect("just set");
                    let no_echo = !self.editor.on
                        && start.text_keys > 0
                        && start.frame != self.frames
                        && start.pos.is_some_and(|p| p == self.cursor_abs());
                    self.terms.push_back(Terminator { key, t: self.now, frame: self.frames, start: Some(start), no_echo });
                    position_known = false;
                }
                Key::Other => {}
            }
        }
    }

    fn line_start(&mut self, position_known: bool) -> LineStart {
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
            logical.push_str(&left);
            start.sig = Some(PromptSig { text: left, col, logical });
            let rest = rest.trim();
            start.rprompt = (!rest.is_empty()).then(|| rest.to_string());
        }
        start
    }

    // ---- lines --------------------------------------------------------------------

    /// A line the line editor accepted (or abandoned).
    fn editor_line(&mut self, snap: Snapshot) {
        let term = self.take_terminator();
        if term.is_none() && self.editor.inputs > 0 {
            // Keys were typed at this prompt but none ended the line: the editor dropped it
            // (zsh's Ctrl-G, an end-of-file): nothing ran.
            self.line = None;
            return;
        }
        // No line end typed at this prompt: the editor is replaying a line typed ahead.
        let replay = term.is_none();
        let interrupted = term.as_ref().is_some_and(|t| t.key == Key::Interrupt);
        let t = term.as_ref().map_or(self.now, |t| t.t);
        let dialect = if self.editor.keypad { Dialect::Zsh } else { Dialect::Bash };
        self.line = None;
        let shell = self.classify(&snap, dialect);
        if !shell {
            if !interrupted {
                self.program_line(t, &snap);
            }
            return;
        }
        if interrupted {
            if self.book.interrupt(dialect) {
                self.command_started();
            }
            return;
        }
        let lines = match dialect {
            Dialect::Zsh => vec![snap.lines.join("\n")],
            Dialect::Bash => snap.lines.clone(),
        };
        self.shell_lines(&lines, t, &snap, dialect, replay);
    }

    /// The Enter or Ctrl-C that ended the line the editor just accepted.
    fn take_terminator(&mut self) -> Option<Terminator> {
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
            let mut last = self.terms.drain(..in_session).last().expect("two or more");
            last.start = first_start;
            return Some(last);
        }
        self.terms.pop_front()
    }

    /// A line the terminal echoed in cooked mode (no line editor).
    fn cooked_line(&mut self, term: Terminator) {
        if term.no_echo {
            return;
        }
        let snap = self.snapshot(term.start.as_ref(), None, 0);
        if self.editor.seen {
            // The shell edits its lines with bracketed paste on; this is a program's line
            // (or type-ahead, withdrawn if the shell re-echoes it).
            if term.key == Key::Enter {
                self.program_line(term.t, &snap);
            }
            return;
        }
        let shell = self.classify(&snap, Dialect::Bash);
        if !shell {
            if term.key == Key::Enter {
                self.program_line(term.t, &snap);
            }
        } else if term.key == Key::Interrupt {
            if self.book.interrupt(Dialect::Bash) {
                self.command_started();
            }
        } else {
            self.shell_lines(&snap.lines, term.t, &snap, Dialect::Bash, false);
        }
    }

    /// Whether a line typed at `snap.sig` goes to the shell; learns prompts. A shell
    /// command waiting for more lines takes any prompt but a fresh main prompt.
    fn classify(&mut self, snap: &Snapshot, dialect: Dialect) -> bool {
        let Some(sig) = &snap.sig else {
            return true;
        };
        if self.book.has_pending() {
            if self.prompts.is_primary(sig) {
                if self.book.flush_pending() {
                    self.command_started();
                }
            } else {
                self.prompts.learn_continuation(sig);
                return true;
            }
        }
        if self.prompts.is_shell(sig) {
            self.prompts.learn_shell(sig);
            return true;
        }
        let _ = dialect;
        false
    }

    fn shell_lines(&mut self, lines: &[String], t: Micros, snap: &Snapshot, dialect: Dialect, replay: bool) {
        let cwd = snap.sig.as_ref().and_then(|s| prompt::cwd(&s.logical));
        let info = LineInfo { t, cwd, dialect, cooked: !self.editor.seen };
        if self.book.shell_lines(lines, &info, replay) {
            self.command_started();
        }
    }

    fn program_line(&mut self, t: Micros, snap: &Snapshot) {
        let text = snap.lines.join("\n");
        if !text.trim().is_empty() {
            self.book.program_line(t, text.trim_end().to_string());
        }
    }

    /// A shell command was accepted: its output starts with the next output byte.
    fn command_started(&mut self) {
        self.excerpt = Some(Excerpt::default());
    }

    /// A prompt was drawn at `t`: it may end the running command.
    fn prompt_event(&mut self, t: Micros) {
        if self.book.is_running() {
            let excerpt = self.excerpt.as_ref().and_then(|e| e.text(false));
            self.book.prompt(t, excerpt);
        }
    }

    // ---- reading the screen ---------------------------------------------------------

    fn cursor_abs(&self) -> (u64, u16) {
        let (row, col) = self.parser.screen().cursor_position();
        (self.parser.callbacks().scrolled + u64::from(row), col)
    }

    /// Reads the line that ends at the cursor's row, starting after its prompt: the row
    /// (nearest the cursor) that starts with the line's own prompt, else with a known
    /// prompt; typed ahead, also a known prompt drawn mid-row.
    ///
    /// `at`: the absolute row the line ends on (default: the cursor's); `rows_below`: the
    /// line continues that many rows further down.
    fn snapshot(&self, hint: Option<&LineStart>, at: Option<u64>, rows_below: u16) -> Snapshot {
        let screen = self.parser.screen();
        let (cursor_row, _) = screen.cursor_position();
        let scrolled = self.parser.callbacks().scrolled;
        let crow = at
            .and_then(|abs| abs.checked_sub(scrolled))
            .and_then(|r| u16::try_from(r).ok())
            .filter(|r| *r <= cursor_row)
            .unwrap_or(cursor_row);
        let last_row = screen.size().0.get() - 1;
        let end = text::wrapped_end(screen, crow.saturating_add(rows_below).min(last_row));
        let hint_sig = hint.and_then(|h| h.sig.as_ref());
        // (row, column where typing starts, prompt, the row's text if read)
        let mut found: Option<(u16, u16, Option<PromptSig>, Option<String>)> = None;
        if let Some(sig) = hint_sig.filter(|s| s.col == 0) {
            // No prompt: the line starts where typing started, if still on screen.
            let row = hint
                .and_then(|h| h.pos)
                .and_then(|(abs, _)| abs.checked_sub(scrolled))
                .and_then(|r| u16::try_from(r).ok())
                .filter(|r| *r <= crow)
                .unwrap_or_else(|| text::wrapped_start(screen, crow));
            found = Some((row, 0, Some(sig.clone()), None));
        }
        let mut rows: Vec<Option<String>> = vec![None; usize::from(crow) + 1];
        let mut row_text = |r: u16| -> String {
            rows[usize::from(r)].get_or_insert_with(|| text::read_row(screen, r)).clone()
        };
        if let Some(sig) = hint_sig.filter(|s| s.col > 0) {
            found = (0..=crow).rev().find_map(|r| {
                let t = row_text(r);
                text::starts_with(&t, sig).then(|| (r, sig.col, Some(sig.clone()), Some(t)))
            });
        }
        if found.is_none() {
            let typed_ahead = hint_sig.is_none();
            found = (0..=crow).rev().find_map(|r| {
                let t = row_text(r);
                let hit = self.prompts.known().find(|s| text::starts_with(&t, s)).map(|s| (s.col, s.clone()));
                let hit = hit.or_else(|| {
                    // Typed ahead: bash may have drawn its prompt right after the keys the
                    // terminal echoed while a command ran.
                    typed_ahead.then(|| self.prompts.known().find_map(|s| text::find_in_row(&t, s).map(|c| (c, s.clone())))).flatten()
                });
                hit.map(|(col, sig)| (r, col, Some(sig), Some(t)))
            });
        }
        if found.is_none() && hint_sig.is_none() {
            // Typed ahead at a prompt never seen before: where the editor started, if it
            // drew its prompt first (zsh) and that row is still the line's.
            found = self.editor.on_pos.filter(|(_, col)| *col > 0).and_then(|(abs, col)| {
                let r = u16::try_from(abs.checked_sub(scrolled)?).ok().filter(|r| *r <= crow)?;
                let t = row_text(r);
                let sig = PromptSig::new(text::split_at_col(&t, col).0, col);
                Some((r, col, Some(sig), Some(t)))
            });
        }
        let (row, col, sig, text) = found.unwrap_or((text::wrapped_start(screen, crow), 0, None, None));
        let mut lines = match text {
            Some(t) if end == row => vec![text::split_at_col(&t, col).1.to_string()],
            _ => text::region(screen, row, col, end.max(row)),
        };
        if let (Some(first), Some(rp)) = (lines.first_mut(), hint.and_then(|h| h.rprompt.as_ref())) {
            text::strip_rprompt(first, rp);
        }
        Snapshot { lines, sig }
    }
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}
