//! Reading text off the emulated screen: cells of a row, a typed line that may wrap over
//! several rows, a right-aligned prompt (zsh `RPROMPT`) to cut off, and prompt matching.

use super::prompt::PromptSig;

/// The text of cells `from..to` of `row`: an empty cell reads as a space, a wide
/// character once. Not trimmed.
pub(crate) fn cells(screen: &vt100::Screen, row: u16, from: u16, to: u16) -> String {
    let mut s = String::new();
    for col in from..to {
        let Some(cell) = screen.cell(row, col) else { break };
        if cell.is_wide_continuation() {
            continue;
        }
        if cell.has_contents() {
            s.push_str(cell.contents());
        } else {
            s.push(' ');
        }
    }
    s
}

/// The text of `row` from column `from` to its end, without trailing blanks.
pub(crate) fn row_from(screen: &vt100::Screen, row: u16, from: u16) -> String {
    let (_, cols) = screen.size();
    let mut s = cells(screen, row, from, cols.get());
    s.truncate(s.trim_end().len());
    s
}

/// The last row of the logical line that continues `row` through auto-wrapped rows.
pub(crate) fn wrapped_end(screen: &vt100::Screen, mut row: u16) -> u16 {
    let (rows, _) = screen.size();
    while row + 1 < rows.get() && screen.row_wrapped(row) {
        row += 1;
    }
    row
}

/// The first row of the logical line `row` belongs to (following wraps upwards).
pub(crate) fn wrapped_start(screen: &vt100::Screen, mut row: u16) -> u16 {
    while row > 0 && screen.row_wrapped(row - 1) {
        row -= 1;
    }
    row
}

/// The text typed from (`row`, `col`) to the end of `end_row`, as logical lines: wrapped
/// rows are joined, other row breaks become line breaks. Trailing blank lines dropped.
pub(crate) fn region(screen: &vt100::Screen, row: u16, col: u16, end_row: u16) -> Vec<String> {
    let (_, cols) = screen.size();
    let mut lines = vec![String::new()];
    for r in row..=end_row {
        let from = if r == row { col } else { 0 };
        let wrapped = screen.row_wrapped(r) && r < end_row;
        let text = if wrapped { cells(screen, r, from, cols.get()) } else { row_from(screen, r, from) };
        lines.last_mut().expect("never empty").push_str(&text);
        if !wrapped && r < end_row {
            lines.push(String::new());
        }
    }
    while lines.len() > 1 && lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// Text drawn right of `col` on `row` after a gap, such as a right prompt: (its column,
/// its text). `None` when the rest of the row is blank.
pub(crate) fn right_text(screen: &vt100::Screen, row: u16, col: u16) -> Option<String> {
    let rest = row_from(screen, row, col);
    let t = rest.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Cuts a right prompt off the end of a typed line: `line` ends with `rprompt` after a
/// gap of at least two blanks.
pub(crate) fn strip_rprompt(line: &mut String, rprompt: &str) {
    if rprompt.is_empty() {
        return;
    }
    let trimmed = line.trim_end();
    if let Some(before) = trimmed.strip_suffix(rprompt) {
        if before.ends_with("  ") || before.trim().is_empty() {
            let keep = before.trim_end().len();
            line.truncate(keep);
        }
    }
}

/// The prompt signature of (`row`, `col`): the cells left of it.
pub(crate) fn sig_at(screen: &vt100::Screen, row: u16, col: u16) -> PromptSig {
    PromptSig { text: cells(screen, row, 0, col), col }
}

/// Whether `row` starts with the prompt `sig` (same cells left of `sig.col`).
pub(crate) fn starts_with(screen: &vt100::Screen, row: u16, sig: &PromptSig) -> bool {
    sig.col > 0 && cells(screen, row, 0, sig.col) == sig.text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, bytes: &[u8]) -> vt100::Parser {
        let mut p = vt100::Parser::new(std::num::NonZeroU16::new(6).unwrap(), std::num::NonZeroU16::new(cols).unwrap(), 0);
        p.process(bytes);
        p
    }

    #[test]
    fn region_table() {
        // (columns, bytes, start row, start col, end row, lines)
        let cases: &[(u16, &[u8], u16, u16, u16, &[&str])] = &[
            (20, b"$ ls -l", 0, 2, 0, &["ls -l"]),
            // Auto-wrapped rows join without a break, even at a space.
            (10, b"$ echo abcd efgh", 0, 2, 1, &["echo abcd efgh"]),
            (10, b"$ echo abc defgh", 0, 2, 1, &["echo abc defgh"]),
            // Explicit row breaks are line breaks; trailing blank rows are dropped.
            (20, b"$ echo p1\r\necho p2\r\n", 0, 2, 2, &["echo p1", "echo p2"]),
            // Wide characters read once.
            (20, "$ echo 日本語".as_bytes(), 0, 2, 0, &["echo 日本語"]),
        ];
        for (cols, bytes, row, col, end, want) in cases {
            let p = screen(*cols, bytes);
            assert_eq!(region(p.screen(), *row, *col, *end), *want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn rprompt_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("ls -a /                     [0]", "[0]", "ls -a /"),
            ("echo [0]", "[0]", "echo [0]"),
            ("echo x [0]", "[0]", "echo x [0]"),
            ("                     [0]", "[0]", ""),
            ("ls", "", "ls"),
        ];
        for (line, rp, want) in cases {
            let mut l = line.to_string();
            strip_rprompt(&mut l, rp);
            assert_eq!(l, *want, "{line:?}");
        }
    }

    #[test]
    fn prompt_matching() {
        let p = screen(30, b"root@box:~# ls\r\n\x1b[31mroot\x1b[0m@box:~# pwd");
        let sig = sig_at(p.screen(), 0, 12);
        assert_eq!(sig.text, "root@box:~# ");
        assert!(starts_with(p.screen(), 1, &sig), "colours do not matter");
        assert!(!starts_with(p.screen(), 2, &sig));
        assert_eq!(right_text(p.screen(), 0, 12).as_deref(), Some("ls"));
        assert_eq!(right_text(p.screen(), 2, 0), None);
    }
}
