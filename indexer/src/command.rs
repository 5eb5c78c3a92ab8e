//! The command record: the output of command extraction, one per executed line.

use gatehouse_recorder::Micros;
use serde::{Deserialize, Serialize};

/// Who typed the line: the shell, or a program reading from the terminal (a REPL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// A command line the shell executed.
    Shell,
    /// A line typed into a program that is not the shell (python, mysql...).
    ProgramInput,
}

/// One executed command line, as the user finally ran it.
///
/// Input typed while the terminal did not echo never becomes text here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// When Enter was pressed, microseconds since session start.
    pub t: Micros,
    /// When the command finished (the next prompt), if seen.
    pub t_end: Option<Micros>,
    /// The command line; continuation lines are joined by `"\n"`.
    pub command: String,
    /// Shell command or program input.
    pub kind: CommandKind,
    /// Working directory, where the prompt shows it.
    pub cwd: Option<String>,
    /// Exit status, where the screen shows it.
    pub exit: Option<i32>,
    /// The first lines of the command's output.
    pub output_excerpt: Option<String>,
}
