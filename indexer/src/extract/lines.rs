//! Accepted lines: deciding whether a line went to the shell or to a program, and handing
//! it to the record book.

use gatehouse_recorder::Micros;

use super::book::LineInfo;
use super::excerpt::Excerpt;
use super::history::Dialect;
use super::input::Terminator;
use super::keys::Key;
use super::snapshot::Snapshot;
use super::{Extractor, prompt};

impl Extractor {
    /// A line the line editor accepted (or abandoned).
    pub(super) fn editor_line(&mut self, snap: Snapshot) {
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

    /// A line the terminal echoed in cooked mode (no line editor).
    pub(super) fn cooked_line(&mut self, term: Terminator) {
        if term.no_echo {
            return;
        }
        let snap = self.snapshot(term.start.as_ref(), None, 0, false);
        if self.editor.seen {
            // The shell edits its lines with bracketed paste on; this is a program's line
            // (or type-ahead, withdrawn if the shell re-echoes it).
            if term.key == Key::Enter {
                self.program_line(term.t, &snap);
            }
            return;
        }
        let promptless = snap.sig.as_ref().is_none_or(|s| s.text.trim().is_empty());
        if promptless && !self.prompts.knows_shell() {
            // Typed before the shell drew its first prompt: a line editor may still come
            // up and replay it (then this echo is dropped); if none does, it is a command.
            if term.key == Key::Enter {
                self.limbo.push((term.t, snap));
            }
            return;
        }
        self.release_limbo();
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

    /// Lines typed before the first prompt, when no line editor replayed them: they ran.
    pub(super) fn release_limbo(&mut self) {
        for (t, snap) in std::mem::take(&mut self.limbo) {
            self.shell_lines(&snap.lines, t, &snap, Dialect::Bash, false);
        }
    }

    /// Whether a line typed at `snap.sig` goes to the shell; learns prompts. A shell
    /// command waiting for more lines takes any prompt but a fresh main prompt.
    pub(super) fn classify(&mut self, snap: &Snapshot, dialect: Dialect) -> bool {
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

    pub(super) fn shell_lines(&mut self, lines: &[String], t: Micros, snap: &Snapshot, dialect: Dialect, replay: bool) {
        let cwd = snap.sig.as_ref().and_then(|s| prompt::cwd(&s.logical));
        let info = LineInfo { t, cwd, dialect, cooked: !self.editor.seen };
        if self.book.shell_lines(lines, &info, replay) {
            self.command_started();
        }
    }

    pub(super) fn program_line(&mut self, t: Micros, snap: &Snapshot) {
        let text = snap.lines.join("\n");
        if !text.trim().is_empty() {
            self.book.program_line(t, text.trim_end().to_string());
        }
    }

    /// A shell command was accepted: its output starts with the next output byte.
    pub(super) fn command_started(&mut self) {
        self.excerpt = Some(Excerpt::default());
    }

    /// A prompt was drawn at `t`: it may end the running command.
    pub(super) fn prompt_event(&mut self, t: Micros) {
        if self.book.is_running() {
            let excerpt = self.excerpt.as_ref().and_then(|e| e.text(false));
            self.book.prompt(t, excerpt);
        }
    }
}
