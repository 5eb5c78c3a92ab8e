//! How shells record a typed command in their history — what a record should read like:
//! bash (with its default `cmdhist`) stores a multi-line command as one entry and joins the
//! lines of a compound command with `"; "` or `" "` (after `do`, `then`, `|`…) while lines
//! inside quotes and heredocs keep their newline, and zsh keeps every newline; both store
//! a line with history designators (`sudo !!`) as they expanded it.

use super::syntax::{Lexer, Sep};

/// The literal parts of a command line around its history designators (`!!`, `!$`,
/// `!-2`, `!grep`…), or `None` when the line has none. Both bash and zsh print the
/// expanded line before running it and record the expanded line in their history.
pub(crate) fn history_designators(line: &str) -> Option<Vec<&str>> {
    if line.trim_start().starts_with('^') {
        // `^old^new`: quick substitution on the previous command.
        return Some(Vec::new());
    }
    let bytes = line.as_bytes();
    let mut parts = Vec::new();
    let mut from = 0;
    let mut single = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !single => i += 1,
            b'\'' => single = !single,
            b'!' if !single => {
                // `!` before a blank, `=`, `(` or the end is not history expansion.
                let next = bytes.get(i + 1).copied();
                if let Some(n) = next.filter(|n| !matches!(n, b' ' | b'\t' | b'=' | b'(' | b'"')) {
                    parts.push(&line[from..i]);
                    // The designator runs to the next blank (a good enough end for
                    // `!!`, `!$`, `!-2`, `!ls`, `!?str?`, `!!:s/a/b/`).
                    let mut j = i + 1;
                    if n == b'!' || n == b'$' || n == b'^' || n == b'*' {
                        j += 1;
                    }
                    while j < bytes.len()
                        && !matches!(bytes[j], b' ' | b'\t' | b';' | b'|' | b'&' | b')' | b'"' | b'\'')
                    {
                        j += 1;
                    }
                    from = j;
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if parts.is_empty() {
        return None;
    }
    parts.push(&line[from..]);
    Some(parts)
}

/// What the shell printed for a line with history designators, given the first line of
/// its output: the expanded line it ran, or `None` when expansion failed ("event not
/// found") and nothing ran. A first line that does not contain the literal parts in order
/// is not the expansion: the typed line is kept.
pub(crate) fn expanded<'a>(typed: &'a str, parts: &[&str], first_output: &'a str) -> Option<&'a str> {
    if first_output.contains("event not found") || first_output.contains("no such event") {
        return None;
    }
    let mut rest = first_output;
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return Some(typed),
        }
    }
    Some(if first_output.trim().is_empty() { typed } else { first_output })
}

/// The shell dialect a command was typed into (decides how lines are joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Dialect {
    /// bash and other shells that record a compound command on one history line.
    #[default]
    Bash,
    /// zsh: lines are kept as typed, joined by newlines.
    Zsh,
}

/// Joins the lines of one command the way the shell records it in its history.
pub(crate) fn join(lines: &[String], dialect: Dialect) -> String {
    if dialect == Dialect::Zsh || lines.len() < 2 {
        return lines.join("\n");
    }
    let mut lx = Lexer::new();
    let mut out = String::new();
    let mut sep = None;
    for l in lines {
        match sep {
            None => {}
            Some(Sep::Newline) => out.push('\n'),
            Some(Sep::Space) => out.push(' '),
            Some(Sep::Semi) => out.push_str("; "),
            Some(Sep::Nothing) => {}
        }
        if sep.is_some() && l.trim().is_empty() && !lx.in_quote() && !lx.in_heredoc() {
            sep = Some(Sep::Nothing);
            continue;
        }
        out.push_str(l);
        sep = Some(lx.line(l));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.split('\n').map(str::to_string).collect()
    }

    #[test]
    fn history_expansion_table() {
        // (typed, first output line, recorded command; None: nothing ran)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("echo !!", "echo echo one two", Some("echo echo one two")),
            ("sudo !!", "sudo systemctl restart nginx", Some("sudo systemctl restart nginx")),
            ("ls !$", "ls two", Some("ls two")),
            ("echo \"a!b\"", "bash: !b: event not found", None),
            ("echo !nope", "zsh: event not found: nope", None),
            // The first line is the command's own output, not an expansion.
            ("cat !$", "unrelated", Some("cat !$")),
            ("^one^three", "echo three two", Some("echo three two")),
        ];
        for (typed, first, want) in cases {
            let parts = history_designators(typed).unwrap_or_else(|| panic!("{typed}"));
            assert_eq!(expanded(typed, &parts, first), *want, "{typed:?}");
        }
        for plain in ["echo hi!", "[ ! -f x ]", "a != b", "echo 'it!s'", "echo \\!x", "if ! grep -q x f; then :; fi"] {
            assert_eq!(history_designators(plain), None, "{plain:?}");
        }
    }

    #[test]
    fn bash_join_table() {
        // What bash 5 (cmdhist on, lithist off) records in its history.
        let cases: &[(&str, &str)] = &[
            ("for i in 1 2\ndo\n  echo $i\ndone", "for i in 1 2; do   echo $i; done"),
            ("while false\ndo :; done", "while false; do :; done"),
            ("if true; then\necho yes\nfi", "if true; then echo yes; fi"),
            ("echo 'a\nb'", "echo 'a\nb'"),
            ("cat <<END\nhello\nEND", "cat <<END\nhello\nEND"),
            ("ls |\nwc -l", "ls | wc -l"),
            ("true &&\necho ok", "true && echo ok"),
            ("f() {\necho hi\n}", "f() { echo hi; }"),
            ("case $x in\na) echo a;;\nesac", "case $x in a) echo a;; esac"),
            ("ls \\\n /tmp", "ls \\\n /tmp"),
            ("single", "single"),
        ];
        for (text, want) in cases {
            assert_eq!(join(&lines(text), Dialect::Bash), *want, "{text:?}");
        }
        assert_eq!(join(&lines("for i in 1\ndo\ndone"), Dialect::Zsh), "for i in 1\ndo\ndone");
    }
}
