//! The state machine, case by case: each case is a short session of output and input
//! frames (as a shell and a terminal exchange them) and the records it must give.

use gatehouse_recorder::Frame;

use super::Extractor;
use crate::command::CommandKind::{self, ProgramInput, Shell};

/// A frame of a case: output (`O`), input (`I`) or a resize (`R`).
enum F {
    O(&'static str),
    I(&'static str),
    R(u16, u16),
}
use F::{I, O, R};

/// bash's prompt: it enters bracketed-paste mode, then draws `$ `.
const PROMPT: &str = "\x1b[?2004h$ ";
/// bash accepting a line: newline, then it leaves bracketed-paste mode.
const ACCEPT: &str = "\r\n\x1b[?2004l\r";
/// zsh's prompt: drawn first, then application keypad and bracketed paste.
const ZPROMPT: &str = "\r\x1b[J% \x1b[K\x1b[?1h\x1b=\x1b[?2004h";
/// zsh accepting a line: it leaves the modes first, then moves to a new row.
const ZACCEPT: &str = "\x1b[?1l\x1b>\x1b[?2004l\r\r\n";

/// Types `text` key by key, each echoed.
fn typed(text: &'static str) -> Vec<F> {
    text.char_indices()
        .flat_map(|(i, c)| {
            let key = &text[i..i + c.len_utf8()];
            [I(key), O(key)]
        })
        .collect()
}

fn run(frames: Vec<F>) -> Vec<(String, CommandKind)> {
    records(frames).into_iter().map(|r| (r.command, r.kind)).collect()
}

fn records(frames: Vec<F>) -> Vec<crate::CommandRecord> {
    let mut x = Extractor::new(80, 24);
    let mut got = Vec::new();
    for (n, f) in frames.into_iter().enumerate() {
        let t = n as u64 * 1000;
        let frame = match f {
            O(s) => Frame::output(t, s.as_bytes().to_vec()),
            I(s) => Frame::input(t, s.as_bytes().to_vec()),
            R(cols, rows) => Frame::resize(t, cols, rows),
        };
        got.extend(x.push(&frame));
    }
    got.extend(x.finish());
    got
}

fn case(parts: Vec<Vec<F>>) -> Vec<(String, CommandKind)> {
    run(parts.into_iter().flatten().collect())
}

/// Commands with their kinds, as the extractor reports them.
type Commands = Vec<(String, CommandKind)>;

fn want(items: &[(&str, CommandKind)]) -> Commands {
    items.iter().map(|(c, k)| (c.to_string(), *k)).collect()
}

#[test]
fn table() {
    let cases: Vec<(&str, Commands, Commands)> = vec![
        (
            "a typed line, echoed",
            case(vec![vec![O(PROMPT)], typed("ls"), vec![I("\r"), O(ACCEPT), O("file\r\n"), O(PROMPT)]]),
            want(&[("ls", Shell)]),
        ),
        (
            "backspace and a cursor edit are read off the screen",
            case(vec![
                vec![O(PROMPT)],
                typed("lx"),
                vec![I("\x7f"), O("\x08\x1b[K")],
                typed("s /tpm"),
                vec![I("\x1b[D"), O("\x08"), I("\x7f"), O("\x08\x1b[1Pm\x08"), I("m"), O("mm\x08")],
                vec![I("\x1b[C"), O("\x1b[C")],
                vec![I("\r"), O(ACCEPT), O(PROMPT)],
            ]),
            want(&[("ls /tmm", Shell)]),
        ),
        (
            "Ctrl-C abandons the line",
            case(vec![
                vec![O(PROMPT)],
                typed("rm -rf /srv"),
                vec![I("\x03"), O("^C\x1b[?2004l\r\x1b[?2004h\x1b[?2004l\r\r\n"), O(PROMPT)],
                typed("pwd"),
                vec![I("\r"), O(ACCEPT), O("/root\r\n"), O(PROMPT)],
            ]),
            want(&[("pwd", Shell)]),
        ),
        (
            "zsh accepts at the mode switch, before its newline",
            case(vec![vec![O(ZPROMPT)], typed("ls -a"), vec![I("\r"), O(ZACCEPT), O("file\r\n"), O(ZPROMPT)]]),
            want(&[("ls -a", Shell)]),
        ),
        (
            "a right prompt is not part of the line",
            case(vec![
                vec![O("\r\x1b[J% \x1b[K\x1b[70C[0]\x1b[73D\x1b[?1h\x1b=\x1b[?2004h")],
                typed("uptime"),
                vec![I("\r"), O(ZACCEPT), O(ZPROMPT)],
            ]),
            want(&[("uptime", Shell)]),
        ),
        (
            "continuation lines make one command, joined as bash's history joins them",
            case(vec![
                vec![O(PROMPT)],
                typed("for i in 1 2"),
                vec![I("\r"), O(ACCEPT), O("\x1b[?2004h> ")],
                typed("do echo $i"),
                vec![I("\r"), O(ACCEPT), O("\x1b[?2004h> ")],
                typed("done"),
                vec![I("\r"), O(ACCEPT), O("1\r\n2\r\n"), O(PROMPT)],
            ]),
            want(&[("for i in 1 2; do echo $i; done", Shell)]),
        ),
        (
            "input the terminal does not echo never appears",
            case(vec![
                vec![O(PROMPT)],
                typed("read -s pw"),
                vec![I("\r"), O(ACCEPT), O("Password: ")],
                vec![I("h"), I("u"), I("n"), I("t"), I("e"), I("r"), I("2"), I("\r")],
                vec![O("\r\n"), O(PROMPT)],
            ]),
            want(&[("read -s pw", Shell)]),
        ),
        (
            "keys typed in a full-screen program are not lines",
            case(vec![
                vec![O(PROMPT)],
                typed("vim f"),
                vec![I("\r"), O(ACCEPT), O("\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n")],
                vec![I("i"), O("i"), I("rm -rf /\r"), O("rm -rf /\r\n"), I("\x1b"), I(":q!\r")],
                vec![O("\x1b[?1049l"), O(PROMPT)],
            ]),
            want(&[("vim f", Shell)]),
        ),
        (
            "a REPL's lines are program input",
            case(vec![
                vec![O(PROMPT)],
                typed("python3 -q"),
                vec![I("\r"), O(ACCEPT), O(">>> ")],
                typed("6*7"),
                vec![I("\r"), O("\r\n42\r\n>>> "), I("\x04"), O("\r\n"), O(PROMPT)],
            ]),
            want(&[("python3 -q", Shell), ("6*7", ProgramInput)]),
        ),
        (
            "a line typed ahead while a command runs is the shell's, once",
            case(vec![
                vec![O(PROMPT)],
                typed("sleep 1"),
                vec![I("\r"), O(ACCEPT)],
                typed("ls"),
                vec![I("\r"), O("\r\n")],
                vec![O("\x1b[?2004h$ ls\r\n\x1b[?2004l\rfile\r\n"), O(PROMPT)],
            ]),
            want(&[("sleep 1", Shell), ("ls", Shell)]),
        ),
        (
            "the editor's mode switch split across output chunks",
            case(vec![
                vec![O("\x1b[?20"), O("04h$ ")],
                typed("id"),
                vec![I("\r"), O("\r\n\x1b[?2"), O("004"), O("l\r"), O("uid=0\r\n\x1b"), O("[?2004h$ ")],
            ]),
            want(&[("id", Shell)]),
        ),
        (
            "several lines pasted with bracketed paste run one by one in bash",
            case(vec![
                vec![
                    O(PROMPT),
                    I("\x1b[200~echo a\recho b\x1b[201~"),
                    O("\x1b[7mecho a\x1b[27m\r\n\x1b[7mecho b\x1b[27m"),
                ],
                vec![I("\r"), O("\r\x1b[A\x1b[2Cecho a\r\necho b\r\n\x1b[?2004l\ra\r\nb\r\n"), O(PROMPT)],
            ]),
            want(&[("echo a", Shell), ("echo b", Shell)]),
        ),
        (
            "a history designator is recorded as the shell expanded it",
            case(vec![
                vec![O(PROMPT)],
                typed("echo hi"),
                vec![I("\r"), O(ACCEPT), O("hi\r\n"), O(PROMPT)],
                typed("echo !!"),
                vec![I("\r"), O(ACCEPT), O("echo echo hi\r\necho hi\r\n"), O(PROMPT)],
            ]),
            want(&[("echo hi", Shell), ("echo echo hi", Shell)]),
        ),
        (
            "a line longer than the terminal wraps and is read whole, also after a resize",
            case(vec![
                vec![O(PROMPT)],
                typed("echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                vec![I("\r"), O(ACCEPT), O(PROMPT), R(40, 24), O("\r\x1b[K\r$ ")],
                typed("echo bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                vec![I("\r"), O(ACCEPT), O(PROMPT)],
            ]),
            want(&[
                ("echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Shell),
                ("echo bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Shell),
            ]),
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

/// A program turns echo off and reads a line; nothing prints a newline after it, so the
/// shell's prompt comes back on the row the hidden line was typed on, and the next line is
/// typed there (or typed ahead while a later command runs). The hidden line's Enter must
/// not be taken for the next line's end, and its text must appear nowhere.
#[test]
fn hidden_lines_consumed_by_a_program() {
    const SECRET: &str = "hunter2";
    // Typed key by key, never echoed.
    let hidden = || (0..SECRET.len()).map(|i| I(&SECRET[i..i + 1])).collect::<Vec<F>>();
    let cases: Vec<(&str, Vec<F>, Commands)> = vec![
        (
            "read -s, then the next line at the prompt on the same row",
            [vec![O(PROMPT)], typed("read -s x"), vec![I("\r"), O(ACCEPT)], hidden(), vec![I("\r"), O(PROMPT)]]
                .into_iter()
                .chain([typed("ls"), vec![I("\r"), O(ACCEPT), O("file\r\n"), O(PROMPT)]])
                .flatten()
                .collect(),
            want(&[("read -s x", Shell), ("ls", Shell)]),
        ),
        (
            "a program's own prompt left of the shell's ($ is too short to be alike)",
            [vec![O(PROMPT)], typed("read -s -p 'Password: ' p"), vec![I("\r"), O(ACCEPT), O("Password: ")], hidden()]
                .into_iter()
                .chain([vec![I("\r"), O(PROMPT)], typed("id"), vec![I("\r"), O(ACCEPT), O("uid=0\r\n"), O(PROMPT)]])
                .flatten()
                .collect(),
            want(&[("read -s -p 'Password: ' p", Shell), ("id", Shell)]),
        ),
        (
            "pasted hidden line, then a line typed ahead (echoed) while a command runs",
            [vec![O(PROMPT)], typed("read -s y; sleep 1"), vec![I("\r"), O(ACCEPT), I("hunter2\r")], typed("echo a")]
                .into_iter()
                .chain([vec![I("\r"), O("\r\n"), O("\x1b[?2004h$ echo a\r\n\x1b[?2004l\ra\r\n"), O(PROMPT)]])
                .flatten()
                .collect(),
            want(&[("read -s y; sleep 1", Shell), ("echo a", Shell)]),
        ),
        (
            "a hidden line followed by a newline the program prints (getpass) still works",
            [vec![O(PROMPT)], typed("python3 pw.py"), vec![I("\r"), O(ACCEPT), O("Password: ")], hidden()]
                .into_iter()
                .chain([vec![I("\r"), O("\r\n"), O(PROMPT)], typed("echo b"), vec![I("\r"), O(ACCEPT), O(PROMPT)]])
                .flatten()
                .collect(),
            want(&[("python3 pw.py", Shell), ("echo b", Shell)]),
        ),
    ];
    for (name, frames, want) in cases {
        let got = records(frames);
        for r in &got {
            let text = format!("{} {:?} {:?}", r.command, r.output_excerpt, r.cwd);
            assert!(!text.contains(SECRET), "{name}: secret in {r:?}");
        }
        let got: Vec<_> = got.into_iter().map(|r| (r.command, r.kind)).collect();
        assert_eq!(got, want, "{name}");
    }
}
