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
//!   typed, the terminal was not echoing: the line is a secret and is dropped (for keys
//!   that came with their Enter in one frame, this is decided at the next input frame).
//! * **Hidden lines with no newline.** A program that reads with echo off (`read -s`,
//!   `stty -echo`, a password prompt) may consume the line without printing a newline.
//!   Its Enter then waits for a newline that never comes: a newline of a line typed (and
//!   echoed) after it is not its own, and once a key is typed at a line editor's prompt,
//!   line ends typed before that editor came up and not shown by it are dropped (an
//!   editor replays type-ahead as soon as it starts). The prompt then shares its row with
//!   the program's own prompt; text left of where bash's editor started is not the shell's.
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
mod history;
mod input;
mod keys;
mod lines;
mod output;
mod prompt;
mod snapshot;
mod syntax;
mod text;
mod tracker;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::num::NonZeroU16;

use gatehouse_recorder::{Frame, FrameData, Micros};

use self::book::Book;
use self::excerpt::Excerpt;
use self::input::{LineStart, Terminator};
use self::keys::KeyScanner;
use self::output::{Deferred, Editor};
use self::prompt::PromptModel;
use self::snapshot::Snapshot;
use self::tracker::Tracker;
use crate::command::CommandRecord;

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
    /// Lines the terminal echoed before the shell's first prompt, with their Enter times.
    limbo: Vec<(Micros, Snapshot)>,
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
            limbo: Vec::new(),
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
        self.release_limbo();
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
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}
