//! Turning accepted lines into [`CommandRecord`]s: grouping continuation lines into one
//! command, completing a command's end time and output excerpt when the next prompt
//! shows, keeping program input in order behind the command it was typed into, and
//! withdrawing a "program input" line that turns out to have been type-ahead for the shell.

use gatehouse_recorder::Micros;

use super::history::{self, Dialect};
use super::syntax;
use crate::command::{CommandKind, CommandRecord};

/// Where a shell line was typed: context its record needs.
#[derive(Debug, Clone)]
pub(crate) struct LineInfo {
    /// When Enter was pressed.
    pub t: Micros,
    /// The directory the prompt showed.
    pub cwd: Option<String>,
    /// How the shell joins continuation lines.
    pub dialect: Dialect,
    /// Read from the terminal's own echo (no line editor was seen yet).
    pub cooked: bool,
}

/// A shell command whose lines are still coming (open quote, heredoc, `for` …).
#[derive(Debug)]
struct Pending {
    lines: Vec<String>,
    info: LineInfo,
}

/// The last shell command, until the next one replaces it.
#[derive(Debug)]
struct Running {
    record: CommandRecord,
    /// Read from the terminal's echo before any line editor showed up.
    cooked: bool,
}

/// Records under construction, in session order.
#[derive(Debug, Default)]
pub(crate) struct Book {
    pending: Option<Pending>,
    /// The last shell command: its end and excerpt are filled in by later prompts.
    running: Option<Running>,
    /// Program input typed while `running` ran (released after it, in order).
    held: Vec<CommandRecord>,
    ready: Vec<CommandRecord>,
}

impl Book {
    /// Whether a shell command is waiting for continuation lines.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Lines typed at the shell (one accepted line, or several pasted at once). Returns
    /// true when a command became complete (its output starts after these lines).
    ///
    /// `replayed`: the shell re-echoed lines typed ahead while the previous command ran;
    /// the "program input" recorded when the terminal echoed them is withdrawn (the
    /// command keeps that line's time, when Enter was really pressed), and the remaining
    /// held lines may be type-ahead for the next prompt, so they stay held.
    pub(crate) fn shell_lines(&mut self, lines: &[String], info: &LineInfo, replayed: bool) -> bool {
        let mut info = info.clone();
        let mut carried = Vec::new();
        if replayed {
            // Typed before the shell's first prompt: the terminal echoed the line (and it
            // was taken for a command), then the line editor showed it again.
            if let Some(r) = &self.running
                && r.cooked
                && r.record.command.trim() == lines.join("\n").trim()
            {
                return false;
            }
            carried = std::mem::take(&mut self.held);
            for line in lines {
                let wanted = line.trim();
                if let Some(i) = carried.iter().position(|r| r.command.trim() == wanted) {
                    let typed = carried.remove(i);
                    info.t = info.t.min(typed.t);
                }
            }
        }
        self.release_running();
        let mut started = false;
        for line in lines {
            match &mut self.pending {
                Some(p) => p.lines.push(line.clone()),
                None if line.trim().is_empty() => continue,
                None => self.pending = Some(Pending { lines: vec![line.clone()], info: info.clone() }),
            }
            let p = self.pending.as_ref().expect("just set");
            if syntax::complete(&p.lines) {
                self.start_pending();
                started = true;
            }
        }
        if self.running.is_some() {
            self.held = carried;
        } else {
            self.ready.append(&mut carried);
        }
        started
    }

    /// Ctrl-C at a shell prompt: the line is abandoned. Lines of an unfinished command
    /// accepted before it stay a command in bash (its history keeps them) and vanish in
    /// zsh (it never runs them). Returns true when a command was kept.
    pub(crate) fn interrupt(&mut self, dialect: Dialect) -> bool {
        self.release_running();
        match dialect {
            Dialect::Bash if self.pending.is_some() => {
                self.start_pending();
                true
            }
            _ => {
                self.pending = None;
                false
            }
        }
    }

    /// The shell is back at its main prompt although a command looked unfinished: the
    /// shell saw it complete (or rejected it); keep what was typed as one command.
    pub(crate) fn flush_pending(&mut self) -> bool {
        if self.pending.is_none() {
            return false;
        }
        self.release_running();
        self.start_pending();
        true
    }

    /// A line typed into a program (a REPL, a prompt of a running command).
    pub(crate) fn program_line(&mut self, t: Micros, command: String) {
        let record = CommandRecord {
            t,
            t_end: None,
            command,
            kind: CommandKind::ProgramInput,
            cwd: None,
            exit: None,
            output_excerpt: None,
        };
        if self.running.is_some() {
            self.held.push(record);
        } else {
            self.ready.push(record);
        }
    }

    /// A prompt appeared at `t`: if a shell command runs, this may be its end.
    pub(crate) fn prompt(&mut self, t: Micros, excerpt: Option<String>) {
        if let Some(r) = &mut self.running {
            r.record.t_end = Some(t);
            r.record.output_excerpt = excerpt;
        }
    }

    /// Whether a shell command is running (a prompt would end it).
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The shell command accepted last, until its record is released.
    pub(crate) fn running(&self) -> Option<&CommandRecord> {
        self.running.as_ref().map(|r| &r.record)
    }

    /// Fills in a missing excerpt (at the end of a session).
    pub(crate) fn running_excerpt(&mut self, excerpt: Option<String>) {
        if let Some(r) = &mut self.running
            && r.record.output_excerpt.is_none()
        {
            r.record.output_excerpt = excerpt;
        }
    }

    /// Records completed so far, oldest first.
    pub(crate) fn take_ready(&mut self) -> Vec<CommandRecord> {
        // Type-ahead kept as held input can predate the command it was held behind.
        self.ready.sort_by_key(|r| r.t);
        std::mem::take(&mut self.ready)
    }

    /// Ends the session. A command still waiting for lines never ran: it is dropped.
    pub(crate) fn finish(&mut self) -> Vec<CommandRecord> {
        self.pending = None;
        self.release_running();
        self.take_ready()
    }

    fn start_pending(&mut self) {
        let Some(p) = self.pending.take() else { return };
        self.release_running();
        let record = CommandRecord {
            t: p.info.t,
            t_end: None,
            command: history::join(&p.lines, p.info.dialect),
            kind: CommandKind::Shell,
            cwd: p.info.cwd,
            exit: None,
            output_excerpt: None,
        };
        self.running = Some(Running { record, cooked: p.info.cooked });
    }

    fn release_running(&mut self) {
        if let Some(Running { mut record, .. }) = self.running.take()
            && apply_history_expansion(&mut record)
        {
            self.ready.push(record);
        }
        self.ready.append(&mut self.held);
    }
}

/// A command line with history designators (`sudo !!`) ran as the shell expanded it; the
/// shell printed that line first, so it is the first line of the output excerpt. Returns
/// false when expansion failed and nothing ran.
fn apply_history_expansion(record: &mut CommandRecord) -> bool {
    if record.command.contains('\n') {
        return true;
    }
    let Some(parts) = history::history_designators(&record.command) else { return true };
    let Some(excerpt) = record.output_excerpt.take() else { return true };
    let (first, rest) = excerpt.split_once('\n').unwrap_or((excerpt.as_str(), ""));
    match history::expanded(&record.command, &parts, first) {
        None => false,
        Some(line) if line != record.command => {
            record.command = line.to_string();
            record.output_excerpt = (!rest.is_empty()).then(|| rest.to_string());
            true
        }
        Some(_) => {
            record.output_excerpt = Some(excerpt);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(t: Micros) -> LineInfo {
        LineInfo { t, cwd: None, dialect: Dialect::Bash, cooked: false }
    }

    fn commands(b: &mut Book) -> Vec<(String, CommandKind)> {
        b.finish().into_iter().map(|r| (r.command, r.kind)).collect()
    }

    #[test]
    fn continuation_lines_make_one_command() {
        let mut b = Book::default();
        assert!(!b.shell_lines(&["for i in 1 2".into()], &info(1), false));
        assert!(!b.shell_lines(&["do echo $i".into()], &info(2), false));
        assert!(b.shell_lines(&["done".into()], &info(3), false));
        let got = b.finish();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].command, "for i in 1 2; do echo $i; done");
        assert_eq!(got[0].t, 1, "a command starts at its first line");
    }

    #[test]
    fn history_expansion_records_the_expanded_line() {
        let mut b = Book::default();
        b.shell_lines(&["sudo !!".into()], &info(1), false);
        b.prompt(2, Some("sudo systemctl restart nginx\nok".into()));
        b.shell_lines(&["echo \"a!b\"".into()], &info(3), false);
        b.prompt(4, Some("bash: !b: event not found".into()));
        b.shell_lines(&["echo next".into()], &info(5), false);
        let got = b.finish();
        let cmds: Vec<_> = got.iter().map(|r| (r.command.as_str(), r.output_excerpt.as_deref())).collect();
        assert_eq!(cmds, [("sudo systemctl restart nginx", Some("ok")), ("echo next", None)]);
    }

    #[test]
    fn pasted_lines_split_into_commands() {
        let mut b = Book::default();
        b.shell_lines(&["echo p1".into(), "echo p2".into(), "".into()], &info(1), false);
        let got: Vec<_> = commands(&mut b).into_iter().map(|c| c.0).collect();
        assert_eq!(got, ["echo p1", "echo p2"]);
    }

    #[test]
    fn interrupt_keeps_accepted_lines_in_bash_only() {
        let mut b = Book::default();
        b.shell_lines(&["for i in 1".into()], &info(1), false);
        assert!(b.interrupt(Dialect::Bash));
        assert_eq!(commands(&mut b).len(), 1);
        let mut z = Book::default();
        z.shell_lines(&["for i in 1".into()], &LineInfo { dialect: Dialect::Zsh, ..info(1) }, false);
        assert!(!z.interrupt(Dialect::Zsh));
        assert!(commands(&mut z).is_empty());
    }

    #[test]
    fn program_input_follows_its_command_and_typeahead_is_withdrawn() {
        let mut b = Book::default();
        b.shell_lines(&["sleep 1".into()], &info(1), false);
        // Typed while `sleep` ran: the terminal echoed both lines.
        b.program_line(2, "echo a".into());
        b.program_line(3, "echo b".into());
        b.prompt(4, None);
        // The shell replays them at its prompts.
        b.shell_lines(&["echo a".into()], &info(5), true);
        b.prompt(6, Some("a".into()));
        b.shell_lines(&["echo b".into()], &info(7), true);
        b.shell_lines(&["python3".into()], &info(8), false);
        b.program_line(9, "print(1)".into());
        b.prompt(10, Some("1".into()));
        let got = b.finish();
        let cmds: Vec<_> = got.iter().map(|r| (r.command.as_str(), r.kind, r.t)).collect();
        assert_eq!(
            cmds,
            [
                ("sleep 1", CommandKind::Shell, 1),
                ("echo a", CommandKind::Shell, 2),
                ("echo b", CommandKind::Shell, 3),
                ("python3", CommandKind::Shell, 8),
                ("print(1)", CommandKind::ProgramInput, 9),
            ]
        );
        assert_eq!(got[1].t_end, Some(6));
        assert_eq!(got[1].output_excerpt.as_deref(), Some("a"));
        assert_eq!(got[3].output_excerpt.as_deref(), Some("1"));
    }
}
