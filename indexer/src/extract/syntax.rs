//! Just enough shell syntax to group typed lines into commands: is the command complete
//! after these lines (open quotes, backslash continuations, heredocs, unfinished
//! `if`/`for`/`while`/`case`/`{`/`(` blocks, a trailing `|`, `&&` or `||`), and how bash's
//! history joins them.
//!
//! Shells decide when a command is complete; we mirror that decision so a multi-line
//! command becomes one record. The lexer is deliberately forgiving: on anything it does not
//! understand it leans towards "complete", because a missed continuation costs one record
//! while a wrong one would swallow the next command.
//!
//! The lexer also tells [`super::history`] how bash joins a command's lines.

/// A token kind, as far as line joining needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// An ordinary word.
    Word,
    /// A reserved word (`do`, `then`, `if`…) or an operator (`;`, `|`, `(`…).
    Key(&'static str),
}

/// Nesting contexts the lexer tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ctx {
    Single,
    DollarSingle,
    Double,
    Backtick,
    /// `$(`…`)` or a subshell `(`…`)`.
    Paren,
    /// `$((`…`))`: counts its own parentheses.
    Arith(u32),
    /// `${`…`}`.
    Param,
    /// A compound command waiting for its closing word (`fi`, `done`, `}`).
    Block(&'static str),
    /// `case … esac`; `true` while reading patterns (before the `)`).
    Case(CaseState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseState {
    Subject,
    In,
    Pattern,
    Body,
}

/// The lexer's state between lines.
#[derive(Debug, Default)]
pub(super) struct Lexer {
    stack: Vec<Ctx>,
    /// Heredoc delimiters announced on the current line, read after it ends.
    announced: Vec<(String, bool)>,
    /// Heredoc bodies being read, first is current: (delimiter, strip leading tabs).
    heredocs: Vec<(String, bool)>,
    cmd_pos: bool,
    /// After `for`/`select`/`case`: the next words are not commands.
    words_only: bool,
    last: Option<Tok>,
    before_last: Option<Tok>,
    /// The line ended with an unquoted backslash.
    continued: bool,
}

/// How the line after the current one is joined in bash's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sep {
    Newline,
    Space,
    Semi,
    Nothing,
}

const RESERVED_OPENERS: &[(&str, &str)] = &[("if", "fi"), ("while", "done"), ("until", "done"), ("{", "}")];

impl Lexer {
    pub(super) fn new() -> Lexer {
        Lexer { cmd_pos: true, ..Lexer::default() }
    }

    /// Whether heredoc bodies are being read (or announced on the last line).
    pub(super) fn in_heredoc(&self) -> bool {
        !self.heredocs.is_empty()
    }

    pub(super) fn in_quote(&self) -> bool {
        matches!(self.stack.last(), Some(Ctx::Single | Ctx::DollarSingle | Ctx::Double | Ctx::Backtick))
    }

    fn complete(&self) -> bool {
        self.stack.is_empty()
            && self.heredocs.is_empty()
            && !self.continued
            && !matches!(self.last, Some(Tok::Key("|" | "&&" | "||" | "|&")))
    }

    fn push_tok(&mut self, t: Tok) {
        self.before_last = self.last;
        self.last = Some(t);
    }

    /// Reads one line; returns how bash joins the *next* line to this one.
    pub(super) fn line(&mut self, line: &str) -> Sep {
        if let Some((delim, strip)) = self.heredocs.first().cloned() {
            let body = if strip { line.trim_start_matches('\t') } else { line };
            if body == delim {
                self.heredocs.remove(0);
            }
            return Sep::Newline;
        }
        self.continued = false;
        let chars = line.as_bytes();
        let mut i = 0;
        let mut word: Vec<u8> = Vec::new();
        let mut word_plain = true;
        let mut saw_word = false;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match self.stack.last() {
                Some(Ctx::Single) => {
                    if c == b'\'' {
                        self.stack.pop();
                    }
                    i += 1;
                    continue;
                }
                Some(Ctx::DollarSingle) => {
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'\'' {
                        self.stack.pop();
                    }
                    i += 1;
                    continue;
                }
                Some(Ctx::Double) => {
                    match c {
                        b'\\' if next.is_none() => self.continued = true,
                        b'\\' => i += 1,
                        b'"' => {
                            self.stack.pop();
                        }
                        b'`' => self.stack.push(Ctx::Backtick),
                        b'$' if next == Some(b'(') => {
                            i += 1;
                            self.open_dollar_paren(chars, &mut i);
                        }
                        b'$' if next == Some(b'{') => {
                            i += 1;
                            self.stack.push(Ctx::Param);
                        }
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                Some(Ctx::Backtick) => {
                    match c {
                        b'\\' => i += 1,
                        b'`' => {
                            self.stack.pop();
                        }
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                Some(Ctx::Param) => {
                    match c {
                        b'\\' => i += 1,
                        b'}' => {
                            self.stack.pop();
                        }
                        b'\'' => self.stack.push(Ctx::Single),
                        b'"' => self.stack.push(Ctx::Double),
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                Some(Ctx::Arith(depth)) => {
                    let depth = *depth;
                    match c {
                        b'(' => *self.stack.last_mut().unwrap() = Ctx::Arith(depth + 1),
                        b')' if depth > 0 => *self.stack.last_mut().unwrap() = Ctx::Arith(depth - 1),
                        b')' if next == Some(b')') => {
                            self.stack.pop();
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                _ => {}
            }
            // Unquoted text: words, operators, comments.
            if c == b' ' || c == b'\t' {
                self.end_word(&mut word, &mut word_plain, &mut saw_word);
                i += 1;
                continue;
            }
            if c == b'#' && word.is_empty() && !saw_word_char(chars, i) {
                break; // a comment runs to the end of the line
            }
            match c {
                b'\\' => {
                    if next.is_none() {
                        self.continued = true;
                        i += 1;
                        continue;
                    }
                    word.push(c);
                    word.push(next.unwrap_or(b' '));
                    word_plain = false;
                    i += 2;
                    continue;
                }
                b'\'' => {
                    word_plain = false;
                    word.push(c);
                    let dollar = i > 0 && chars[i - 1] == b'$';
                    self.stack.push(if dollar { Ctx::DollarSingle } else { Ctx::Single });
                }
                b'"' => {
                    word_plain = false;
                    word.push(c);
                    self.stack.push(Ctx::Double);
                }
                b'`' => {
                    word_plain = false;
                    word.push(c);
                    self.stack.push(Ctx::Backtick);
                }
                b'$' if next == Some(b'(') => {
                    word_plain = false;
                    word.extend_from_slice(b"$(");
                    i += 1;
                    self.open_dollar_paren(chars, &mut i);
                }
                b'$' if next == Some(b'{') => {
                    word_plain = false;
                    word.extend_from_slice(b"${");
                    i += 1;
                    self.stack.push(Ctx::Param);
                }
                b';' | b'&' | b'|' | b'(' | b')' => {
                    self.end_word(&mut word, &mut word_plain, &mut saw_word);
                    let op = operator(chars, i);
                    i += op.len();
                    self.operator(op, chars, &mut i);
                    continue;
                }
                b'<' if next == Some(b'<') && chars.get(i + 2) == Some(&b'<') => {
                    // A here-string (`<<<`), not a heredoc.
                    self.end_word(&mut word, &mut word_plain, &mut saw_word);
                    i += 3;
                    continue;
                }
                b'<' if next == Some(b'<') => {
                    self.end_word(&mut word, &mut word_plain, &mut saw_word);
                    i += 2;
                    let strip = chars.get(i) == Some(&b'-');
                    if strip {
                        i += 1;
                    }
                    while chars.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
                        i += 1;
                    }
                    let mut delim: Vec<u8> = Vec::new();
                    while let Some(&d) = chars.get(i) {
                        if d == b' '
                            || d == b'\t'
                            || d == b';'
                            || d == b'|'
                            || d == b'&'
                            || d == b')'
                            || d == b'<'
                            || d == b'>'
                        {
                            break;
                        }
                        if d != b'\'' && d != b'"' && d != b'\\' {
                            delim.push(d);
                        }
                        i += 1;
                    }
                    if !delim.is_empty() {
                        self.announced.push((String::from_utf8_lossy(&delim).into_owned(), strip));
                    }
                    self.push_tok(Tok::Word);
                    self.cmd_pos = false;
                    continue;
                }
                _ => word.push(c),
            }
            i += 1;
        }
        self.end_word(&mut word, &mut word_plain, &mut saw_word);
        let sep = self.separator(line);
        if !self.continued && !self.in_quote() {
            self.cmd_pos = true;
            self.words_only = false;
            self.heredocs.append(&mut self.announced);
        }
        sep
    }

    fn separator(&self, line: &str) -> Sep {
        if self.continued {
            return Sep::Newline;
        }
        if self.in_quote() || !self.announced.is_empty() {
            return Sep::Newline;
        }
        if line.trim().is_empty() {
            return Sep::Nothing;
        }
        match (self.before_last, self.last) {
            (Some(Tok::Key("(")), Some(Tok::Key(")"))) => Sep::Space,
            (_, Some(Tok::Key(")"))) if matches!(self.stack.last(), Some(Ctx::Case(_))) => Sep::Space,
            (_, Some(Tok::Key(")"))) => Sep::Semi,
            (_, Some(Tok::Key(k))) if NO_SEMI_AFTER.contains(&k) => Sep::Space,
            (_, None) => Sep::Space,
            _ => Sep::Semi,
        }
    }

    fn open_dollar_paren(&mut self, chars: &[u8], i: &mut usize) {
        // `*i` points at the `(` after `$`.
        if chars.get(*i + 1) == Some(&b'(') {
            *i += 1;
            self.stack.push(Ctx::Arith(0));
        } else {
            self.stack.push(Ctx::Paren);
        }
    }

    fn operator(&mut self, op: &'static str, chars: &[u8], i: &mut usize) {
        match op {
            "(" => {
                // `name()` (a function definition) or a subshell.
                let mut j = *i;
                while chars.get(j).is_some_and(|c| *c == b' ') {
                    j += 1;
                }
                if chars.get(j) == Some(&b')') && !self.cmd_pos {
                    *i = j + 1;
                    self.push_tok(Tok::Key("("));
                    self.push_tok(Tok::Key(")"));
                    self.cmd_pos = true;
                    return;
                }
                if matches!(self.stack.last(), Some(Ctx::Case(CaseState::Pattern | CaseState::In))) {
                    self.push_tok(Tok::Key("("));
                    return;
                }
                if chars.get(*i) == Some(&b'(') {
                    *i += 1;
                    self.stack.push(Ctx::Arith(0));
                } else {
                    self.stack.push(Ctx::Paren);
                }
                self.cmd_pos = true;
            }
            ")" => {
                match self.stack.last_mut() {
                    Some(Ctx::Case(state @ (CaseState::Pattern | CaseState::In))) => {
                        *state = CaseState::Body;
                    }
                    Some(Ctx::Paren) => {
                        self.stack.pop();
                    }
                    _ => {}
                }
                self.cmd_pos = true;
            }
            ";;" | ";&" | ";;&" => {
                if let Some(Ctx::Case(state)) = self.stack.last_mut() {
                    *state = CaseState::Pattern;
                }
                self.cmd_pos = true;
            }
            _ => {
                self.cmd_pos = true;
                self.words_only = false;
            }
        }
        self.push_tok(Tok::Key(op));
    }

    fn end_word(&mut self, word: &mut Vec<u8>, plain: &mut bool, saw_word: &mut bool) {
        if word.is_empty() {
            return;
        }
        let w = String::from_utf8_lossy(&std::mem::take(word)).into_owned();
        let was_plain = std::mem::replace(plain, true);
        *saw_word = true;
        if let Some(Ctx::Case(state)) = self.stack.last().cloned() {
            match state {
                CaseState::Subject => {
                    *self.stack.last_mut().unwrap() = Ctx::Case(CaseState::In);
                    self.push_tok(Tok::Word);
                    return;
                }
                CaseState::In if w == "in" => {
                    *self.stack.last_mut().unwrap() = Ctx::Case(CaseState::Pattern);
                    self.push_tok(Tok::Key("in"));
                    return;
                }
                CaseState::Pattern | CaseState::In => {
                    if w == "esac" {
                        self.stack.pop();
                        self.push_tok(Tok::Word);
                        self.cmd_pos = false;
                    } else {
                        self.push_tok(Tok::Word);
                    }
                    return;
                }
                CaseState::Body => {}
            }
        }
        if was_plain
            && self.cmd_pos
            && !self.words_only
            && let Some(kw) = self.keyword(&w)
        {
            self.push_tok(Tok::Key(kw));
            return;
        }
        if self.words_only && w == "in" {
            self.push_tok(Tok::Key("in"));
            return;
        }
        self.push_tok(Tok::Word);
        // An assignment prefix (`A=1 cmd`) keeps the command position.
        if !(self.cmd_pos && w.contains('=') && !w.starts_with('=')) {
            self.cmd_pos = false;
        }
    }

    /// Handles a reserved word in command position; returns its token name.
    fn keyword(&mut self, w: &str) -> Option<&'static str> {
        if let Some((open, close)) = RESERVED_OPENERS.iter().find(|(o, _)| *o == w) {
            self.stack.push(Ctx::Block(close));
            self.cmd_pos = true;
            return Some(open);
        }
        match w {
            "for" | "select" => {
                self.stack.push(Ctx::Block("done"));
                self.words_only = true;
                Some(if w == "for" { "for" } else { "select" })
            }
            "case" => {
                self.stack.push(Ctx::Case(CaseState::Subject));
                Some("case")
            }
            "then" | "else" | "elif" | "do" | "!" => {
                self.cmd_pos = true;
                Some(match w {
                    "then" => "then",
                    "else" => "else",
                    "elif" => "elif",
                    "do" => "do",
                    _ => "!",
                })
            }
            "fi" | "done" | "}" | "esac" => {
                if matches!(self.stack.last(), Some(Ctx::Block(c)) if *c == w) {
                    self.stack.pop();
                }
                self.cmd_pos = false;
                Some(match w {
                    "fi" => "fi",
                    "done" => "done",
                    "}" => "}",
                    _ => "esac",
                })
            }
            "function" => {
                self.cmd_pos = false;
                Some("function")
            }
            _ => None,
        }
    }
}

/// Tokens after which bash joins the next line with a space, not `"; "` (bash's
/// `no_semi_successors`).
const NO_SEMI_AFTER: &[&str] = &[
    "{", "(", ";", "&", "|", "case", "do", "else", "if", "then", "elif", "until", "while", ";;", ";&", ";;&", "&&",
    "||", "|&", "in", "!", "function",
];

fn operator(chars: &[u8], i: usize) -> &'static str {
    let c = chars[i];
    let n = chars.get(i + 1).copied();
    let n2 = chars.get(i + 2).copied();
    match (c, n, n2) {
        (b';', Some(b';'), Some(b'&')) => ";;&",
        (b';', Some(b';'), _) => ";;",
        (b';', Some(b'&'), _) => ";&",
        (b';', _, _) => ";",
        (b'&', Some(b'&'), _) => "&&",
        (b'&', _, _) => "&",
        (b'|', Some(b'|'), _) => "||",
        (b'|', Some(b'&'), _) => "|&",
        (b'|', _, _) => "|",
        (b'(', _, _) => "(",
        _ => ")",
    }
}

/// Whether the `#` at `i` continues a word (`a#b`), in which case it is no comment.
fn saw_word_char(chars: &[u8], i: usize) -> bool {
    i > 0 && !matches!(chars[i - 1], b' ' | b'\t' | b';' | b'&' | b'|' | b'(' | b')')
}

/// Whether the shell would run these lines as one complete command.
pub(crate) fn complete(lines: &[String]) -> bool {
    let mut lx = Lexer::new();
    // A line may hold several (a multi-line buffer recalled from history or pasted).
    for l in lines.iter().flat_map(|l| l.split('\n')) {
        lx.line(l);
    }
    lx.complete()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.split('\n').map(str::to_string).collect()
    }

    #[test]
    fn completeness_table() {
        let cases: &[(&str, bool)] = &[
            ("ls -la", true),
            ("echo 'a", false),
            ("echo 'a\nb'", true),
            ("echo \"a", false),
            ("echo \"it's\"", true),
            ("echo $'it\\'s'", true),
            ("ls \\", false),
            ("ls \\\n  /tmp", true),
            ("echo a\\\\", true),
            ("cat <<END", false),
            ("cat <<END\nhello", false),
            ("cat <<END\nhello\nEND", true),
            ("cat <<-'EOF'\n\tx\n\tEOF", true),
            ("cat <<< word", true),
            ("for i in 1 2", false),
            ("for i in 1 2\ndo", false),
            ("for i in 1 2\ndo\n echo $i\ndone", true),
            ("for i in 1 2; do echo $i; done", true),
            ("while true; do", false),
            ("if true; then", false),
            ("if true; then\necho y\nfi", true),
            ("if [ -f x ]; then echo y; else echo n; fi", true),
            ("case $x in", false),
            ("case $x in\n a) echo a;;\nesac", true),
            ("case $x in a|b) echo ab;; (c) echo c;; esac", true),
            ("f() {", false),
            ("f() { echo hi; }", true),
            ("function g {\necho g\n}", true),
            ("( cd /tmp", false),
            ("( cd /tmp; ls )", true),
            ("echo $(date", false),
            ("echo $(date)", true),
            ("echo $((1+(2*3)))", true),
            ("echo ${HOME}", true),
            ("ls |", false),
            ("ls |\nwc -l", true),
            ("true &&", false),
            ("false ||", false),
            ("sleep 1 &", true),
            ("echo # not a quote '", true),
            ("echo a#b", true),
            ("echo done", true),
            ("echo for", true),
            ("git commit -m \"fix: done\"", true),
            ("A=1 if", false),
            ("echo `date", false),
            ("echo `date`", true),
            ("[[ -n $x ]] && echo y", true),
        ];
        // A recalled multi-line buffer arrives as one line with newlines in it.
        assert!(complete(&["for w in x y\ndo echo $w\ndone".to_string()]));
        assert!(!complete(&["for w in x y\ndo echo $w".to_string()]));
        for (text, want) in cases {
            assert_eq!(complete(&lines(text)), *want, "{text:?}");
        }
    }
}
