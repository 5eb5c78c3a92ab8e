//! A command's output excerpt: its first output bytes, kept raw while it runs (a copy,
//! cheap on the hot path) and turned into plain text lines when a prompt shows.
//!
//! Reading rows off the emulated screen for every command would cost about as much as
//! emulating them; the excerpt only needs the first lines, so a small terminal-text
//! filter over the first few KiB is enough: escape sequences are dropped, a carriage
//! return starts the line over (progress bars keep their last state), a backspace erases.
//! Output drawn on the alternate screen (a full-screen program) is not output text: the
//! excerpt stops there.

/// Raw output bytes kept per command.
pub(crate) const RAW_BYTES: usize = 4096;
/// Lines in an excerpt.
pub(crate) const LINES: usize = 10;
/// Longest excerpt, in bytes.
pub(crate) const MAX_BYTES: usize = 1024;

/// The first output bytes of the running command.
#[derive(Debug, Default)]
pub(crate) struct Excerpt {
    raw: Vec<u8>,
}

impl Excerpt {
    /// Keeps the part of `piece` that still fits.
    pub(crate) fn push(&mut self, piece: &[u8]) {
        let room = RAW_BYTES - self.raw.len().min(RAW_BYTES);
        self.raw.extend_from_slice(&piece[..piece.len().min(room)]);
    }

    /// Whether more output would still be kept.
    pub(crate) fn wants_more(&self) -> bool {
        self.raw.len() < RAW_BYTES
    }

    /// The excerpt as text. `complete`: the output is over, so its last line counts even
    /// without a newline (otherwise it is the prompt being drawn).
    pub(crate) fn text(&self, complete: bool) -> Option<String> {
        let mut lines = plain_lines(&self.raw, complete);
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
        lines.truncate(LINES);
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut s = lines.join("\n");
        if s.len() > MAX_BYTES {
            let mut cut = MAX_BYTES;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        (!s.is_empty()).then_some(s)
    }
}

/// Terminal output as plain text lines (see the module doc), up to [`LINES`] + 1 lines.
/// Works on bytes: it runs for every command, so it must cost little per byte.
fn plain_lines(raw: &[u8], keep_partial: bool) -> Vec<String> {
    // Only the first lines are wanted: look no further than their end.
    let end = memchr::memchr_iter(b'\n', raw).nth(LINES).map_or(raw.len(), |i| i + 1);
    let raw = &raw[..end];
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        match b {
            0x1b => match raw.get(i) {
                Some(b'[') => {
                    let params = i + 1;
                    let mut j = params;
                    while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                        j += 1;
                    }
                    if raw.get(j) == Some(&b'h') && enters_alternate_screen(&raw[params..j]) {
                        // A full-screen program takes over: its screen is not output.
                        return finish(lines, &line, false);
                    }
                    i = j + 1;
                }
                Some(b']' | b'P' | b'_' | b'^') => {
                    // A string sequence (window title…): ends with BEL or ESC \.
                    while i < raw.len() && raw[i] != 0x07 && !(raw[i] == 0x1b && raw.get(i + 1) == Some(&b'\\')) {
                        i += 1;
                    }
                    i += if raw.get(i) == Some(&0x07) { 1 } else { 2 };
                }
                Some(b'(' | b')' | b'*' | b'+' | b'#') => i += 2,
                Some(_) => i += 1,
                None => {}
            },
            b'\r' if raw.get(i) == Some(&b'\n') => {}
            b'\r' => line.clear(),
            b'\n' => lines.push(String::from_utf8_lossy(&std::mem::take(&mut line)).into_owned()),
            0x08 => {
                // Erase one character (its UTF-8 continuation bytes too).
                while line.pop().is_some_and(|c| (0x80..0xc0).contains(&c)) {}
            }
            b'\t' => {
                let width = line.iter().filter(|c| !(0x80..0xc0).contains(*c)).count();
                line.resize(line.len() + 8 - width % 8, b' ');
            }
            b if b < 0x20 || b == 0x7f => {}
            _ => {
                // Printable text comes in runs: copy each in one go.
                let end = i + crate::screen_text::printable_run(&raw[i..]);
                line.extend_from_slice(&raw[i - 1..end]);
                i = end;
            }
        }
    }
    finish(lines, &line, keep_partial)
}

fn enters_alternate_screen(params: &[u8]) -> bool {
    params.first() == Some(&b'?') && params[1..].split(|c| *c == b';').any(|m| matches!(m, b"1049" | b"1047" | b"47"))
}

fn finish(mut lines: Vec<String>, line: &[u8], keep_partial: bool) -> Vec<String> {
    if keep_partial && !line.is_empty() {
        lines.push(String::from_utf8_lossy(line).into_owned());
    }
    for l in &mut lines {
        l.truncate(l.trim_end().len());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (raw output, output complete, excerpt)
        let cases: &[(&[u8], bool, Option<&str>)] = &[
            (b"\r\n\x1b[?2004l\rfile-a\r\nfile-b\r\n\x1b[?2004h", false, Some("file-a\nfile-b")),
            (b"\x1b[01;34mdir\x1b[0m  \x1b[01;32mrun.sh\x1b[0m\r\n", false, Some("dir  run.sh")),
            // The prompt being drawn (no newline yet) is not output...
            (b"done\r\nroot@box:~# ", false, Some("done")),
            // ...but at the end of a session the last line counts.
            (b"partial", true, Some("partial")),
            // A progress bar keeps its last state; a backspace erases.
            (b" 10%\r 50%\r100%\r\nab\x08c\r\n", false, Some("100%\nac")),
            (b"a\tb\r\n", false, Some("a       b")),
            (b"\x1b]0;title\x07shown\r\n", false, Some("shown")),
            (b"before\r\n\x1b[?1049h\x1b[Hvim screen\r\n", false, Some("before")),
            (b"\x1b[H\x1b[2J", false, None),
            (b"\r\r\n\xe6\x97\xa5\xe6\x9c\xac\r\n", false, Some("日本")),
            (b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", false, Some("1\n2\n3\n4\n5\n6\n7\n8\n9\n10")),
        ];
        for (raw, complete, want) in cases {
            let mut e = Excerpt::default();
            e.push(raw);
            assert_eq!(e.text(*complete).as_deref(), *want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn keeps_only_the_first_bytes() {
        let mut e = Excerpt::default();
        e.push(&vec![b'x'; RAW_BYTES + 10]);
        assert!(!e.wants_more());
        e.push(b"more");
        assert_eq!(e.raw.len(), RAW_BYTES);
    }
}
