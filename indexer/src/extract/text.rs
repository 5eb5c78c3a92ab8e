//! Reading text off the emulated screen: a row as text and its split at a column, a typed
//! line that may wrap over several rows, a right-aligned prompt (zsh `RPROMPT`) to cut
//! off, and where a prompt was drawn.
//!
//! Rows are read with `Screen::contents_between`, which walks a row's cells once; reading
//! cell by cell through `Screen::cell` costs a row lookup per cell. Columns are counted
//! the way `vt100` lays characters out (wide characters take two cells).

use unicode_width::UnicodeWidthChar;

use super::prompt::PromptSig;

/// The cells a character takes, as `vt100` draws it.
fn char_width(c: char) -> u16 {
    // `vt100` draws characters without a width as one cell and caps widths at two.
    match c.width() {
        Some(w) => w.min(2) as u16,
        None => 1,
    }
}

/// The cells a text takes.
pub(crate) fn width(s: &str) -> u16 {
    s.chars().map(char_width).sum()
}

/// The text of `row` (an empty cell between characters reads as a space), without
/// trailing blanks.
pub(crate) fn read_row(screen: &vt100::Screen, row: u16) -> String {
    let mut s = screen.contents_between(row, 0, row + 1, 0);
    s.truncate(s.trim_end().len());
    s
}

/// Splits a row's text at column `col`: the part left of it, padded with blanks to `col`
/// cells, and the rest.
pub(crate) fn split_at_col(row: &str, col: u16) -> (String, &str) {
    let mut width = 0;
    for (i, c) in row.char_indices() {
        if width >= col {
            return (row[..i].to_string(), &row[i..]);
        }
        width += char_width(c);
    }
    let mut left = row.to_string();
    left.extend(std::iter::repeat_n(' ', usize::from(col.saturating_sub(width))));
    (left, "")
}

/// The column right after the last place in `row` (not at its start) where the prompt
/// text `sig` appears (bash draws its prompt wherever the cursor is, e.g. after echoed
/// type-ahead).
pub(crate) fn find_in_row(row: &str, sig: &PromptSig) -> Option<u16> {
    let want = sig.text.trim_end();
    if want.is_empty() {
        return None;
    }
    let at = row.rfind(want).filter(|at| *at > 0)?;
    let before: u16 = row[..at].chars().map(char_width).sum();
    Some(before + sig.col)
}

/// The text typed from (`row`, `col`) to the end of `end_row`, as logical lines: wrapped
/// rows are joined, other row breaks become line breaks. Trailing blank lines dropped.
pub(crate) fn region(screen: &vt100::Screen, row: u16, col: u16, end_row: u16) -> Vec<String> {
    let (_, cols) = screen.size();
    let text = if end_row > row {
        screen.contents_between(row, col, end_row, cols.get())
    } else {
        screen.contents_between(row, col, row + 1, 0)
    };
    let mut lines: Vec<String> = text.split('\n').map(|l| l.trim_end().to_string()).collect();
    while lines.len() > 1 && lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// The last row of the logical line that continues `row` through auto-wrapped rows.
pub(crate) fn wrapped_end(screen: &vt100::Screen, mut row: u16) -> u16 {
    let (rows, _) = screen.size();
    while row + 1 < rows.get() && screen.row_wrapped(row) {
        row += 1;
    }
    row
}

/// How many rows right below `row` have text (up to the first blank row).
pub(crate) fn filled_rows_below(screen: &vt100::Screen, row: u16) -> u16 {
    let (rows, _) = screen.size();
    let mut n = 0;
    while row + n + 1 < rows.get() && !read_row(screen, row + n + 1).is_empty() {
        n += 1;
    }
    n
}

/// The first row of the logical line `row` belongs to (following wraps upwards).
pub(crate) fn wrapped_start(screen: &vt100::Screen, mut row: u16) -> u16 {
    while row > 0 && screen.row_wrapped(row - 1) {
        row -= 1;
    }
    row
}

/// Cuts a right prompt off the end of a typed line: `line` ends with `rprompt` after a
/// gap of at least two blanks.
pub(crate) fn strip_rprompt(line: &mut String, rprompt: &str) {
    if rprompt.is_empty() {
        return;
    }
    let trimmed = line.trim_end();
    if let Some(before) = trimmed.strip_suffix(rprompt)
        && (before.ends_with("  ") || before.trim().is_empty())
    {
        let keep = before.trim_end().len();
        line.truncate(keep);
    }
}

/// Cuts right-aligned text off a one-row typed line that starts at column `col` of a
/// terminal `cols` wide: text that ends at the right margin after a gap of at least two
/// blanks (a right prompt whose text changed since it was seen, e.g. a status or a clock).
pub(crate) fn strip_right_aligned(line: &mut String, col: u16, cols: u16) {
    let trimmed = line.trim_end();
    if col + width(trimmed) + 2 < cols {
        return;
    }
    if let Some(gap) = trimmed.rfind("  ") {
        let right = trimmed[gap..].trim();
        if !right.is_empty() && width(right) <= cols / 3 {
            let keep = trimmed[..gap].trim_end().len();
            line.truncate(keep);
        }
    }
}

/// Whether a row's text starts with the prompt `sig`.
pub(crate) fn starts_with(row: &str, sig: &PromptSig) -> bool {
    sig.col > 0 && split_at_col(row, sig.col).0.trim_end() == sig.text.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, bytes: &[u8]) -> vt100::Parser {
        let mut p =
            vt100::Parser::new(std::num::NonZeroU16::new(6).unwrap(), std::num::NonZeroU16::new(cols).unwrap(), 0);
        p.process(bytes);
        p
    }

    #[test]
    fn region_table() {
        // (columns, bytes, start row, start col, end row, lines)
        type Case<'a> = (u16, &'a [u8], u16, u16, u16, &'a [&'a str]);
        let cases: &[Case] = &[
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
    fn split_table() {
        let cases: &[(&str, u16, &str, &str)] = &[
            ("root@box:~# ls", 12, "root@box:~# ", "ls"),
            ("root@box:~#", 12, "root@box:~# ", ""),
            ("日本$ ls", 6, "日本$ ", "ls"),
            ("$ ", 0, "", "$ "),
        ];
        for (row, col, left, rest) in cases {
            assert_eq!(split_at_col(row, *col), (left.to_string(), *rest), "{row:?}");
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
    fn right_aligned_table() {
        // (line, its column, terminal width, kept)
        let cases: &[(&str, u16, u16, &str)] = &[
            ("echo pasted-two                         [0]", 14, 58, "echo pasted-two"),
            ("head -n 2 notes.txt                                ~", 7, 60, "head -n 2 notes.txt"),
            ("echo a  b", 14, 60, "echo a  b"),
            ("ls", 14, 60, "ls"),
        ];
        for (line, col, cols, want) in cases {
            let mut l = line.to_string();
            strip_right_aligned(&mut l, *col, *cols);
            assert_eq!(l, *want, "{line:?}");
        }
    }

    #[test]
    fn prompt_matching() {
        let p = screen(30, b"root@box:~# ls\r\n\x1b[31mroot\x1b[0m@box:~# pwd");
        let row0 = read_row(p.screen(), 0);
        let sig = PromptSig::new(split_at_col(&row0, 12).0, 12);
        assert_eq!(sig.text, "root@box:~# ");
        assert!(starts_with(&read_row(p.screen(), 1), &sig), "colours do not matter");
        assert!(!starts_with(&read_row(p.screen(), 2), &sig));
        let sig = PromptSig::new("$ ".into(), 2);
        assert!(!starts_with("echo ahead$ echo ahead", &sig));
        assert_eq!(find_in_row("echo ahead$ echo ahead", &sig), Some(12));
        assert_eq!(find_in_row("$ echo", &sig), None, "a prompt at the start is not mid-row");
    }
}
