//! The text a terminal printed, line by line, read off the output byte stream.
//!
//! Reading rows back out of `vt100` costs about as much per row as emulating it, so the
//! lines of scrolling output are taken from the bytes as they go by instead: printable runs
//! are kept, escape sequences are skipped (colours do not split words), and the controls
//! that move the cursor decide where a line ends. Rules:
//! - `\n` ends a line; `\r` followed by printing starts the line over (what was there gets
//!   overwritten: progress bars keep their last state); backspace removes a character
//!   (the echo of an edit); tab is a space;
//! - cursor addressing (`CUP`, `CUU`/`CUD`, `CHA`, `VPA`, `RI`, `NEL`), erase in display,
//!   reset and alternate-screen switches end the line (full-screen programs draw row by row
//!   this way); `CUF` (cursor forward, a space-saving trick of curses) is a space;
//! - everything else (SGR, erase in line, modes, OSC titles, DCS strings) is skipped.
//!
//! Known limits: edits in the middle of a typed line and partial redraws of full-screen
//! programs give fragments (full-screen screens are also read whole, see the parent
//! module); a line longer than [`MAX_LINE`] bytes is cut there.

/// Lines are cut at this many bytes (a huge line without newline is indexed in pieces).
pub const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the names say where in an escape sequence we are
enum Esc {
    /// Not in a sequence.
    None,
    /// After ESC.
    Esc,
    /// ESC plus intermediates, waiting for the final byte.
    EscInt,
    /// In a CSI sequence: the first parameter so far, and whether it is private (`?`).
    Csi { param: u32, private: bool, first: bool },
    /// In an OSC string (ends with BEL or ST).
    Osc,
    /// In a DCS/SOS/PM/APC string (ends with ST).
    Str,
    /// ESC inside a string: `\` ends it.
    StrEsc,
}

/// Splits an output byte stream into printed lines.
#[derive(Debug)]
pub(crate) struct Printed {
    line: Vec<u8>,
    esc: Esc,
    /// A carriage return was seen: the next printed byte starts the line over.
    cr: bool,
}

impl Default for Printed {
    fn default() -> Self {
        Printed { line: Vec::with_capacity(256), esc: Esc::None, cr: false }
    }
}

impl Printed {
    /// Feeds output bytes; calls `emit` with each completed line (raw bytes, UTF-8 as the
    /// program sent it).
    pub(crate) fn feed(&mut self, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        let mut i = 0;
        let n = bytes.len();
        while i < n {
            if self.esc != Esc::None {
                // Most sequences are CSI with every byte in this chunk: skip to the final
                // byte in one go (the first parameter matters only for mode switches).
                if let Esc::Csi { param: 0, private, first: true } = self.esc {
                    let body = bytes[i..].iter().position(|&b| !(0x20..=0x3f).contains(&b));
                    if let Some(len) = body.filter(|&len| (0x40..=0x7e).contains(&bytes[i + len])) {
                        let params = &bytes[i..i + len];
                        let private = private || params.first().is_some_and(|b| matches!(b, b'?' | b'>' | b'<' | b'='));
                        let digits = params.iter().skip(usize::from(private)).take_while(|b| b.is_ascii_digit());
                        let param = digits.fold(0u32, |p, &d| p.saturating_mul(10).saturating_add(u32::from(d - b'0')));
                        self.esc = Esc::None;
                        self.csi(bytes[i + len], param, private, emit);
                        i += len + 1;
                        continue;
                    }
                }
                self.escape(bytes[i], emit);
                i += 1;
                continue;
            }
            // The common case: a run of printable bytes.
            let start = i;
            i += printable_run(&bytes[i..]);
            if i > start {
                if self.cr {
                    self.line.clear();
                    self.cr = false;
                }
                let mut run = &bytes[start..i];
                while !run.is_empty() {
                    let take = (MAX_LINE - self.line.len()).min(run.len());
                    self.line.extend_from_slice(&run[..take]);
                    run = &run[take..];
                    if self.line.len() >= MAX_LINE {
                        self.end_line(emit);
                    }
                }
            }
            if i == n {
                break;
            }
            let b = bytes[i];
            i += 1;
            match b {
                b'\n' | 0x0b | 0x0c => self.end_line(emit),
                b'\r' => self.cr = true,
                0x08 => self.backspace(),
                b'\t' => self.line.push(b' '),
                0x1b => self.esc = Esc::Esc,
                _ => {}
            }
        }
    }

    /// The line in progress, if any (the end of a session).
    pub(crate) fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        self.end_line(emit);
    }

    fn end_line(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.line.is_empty() {
            emit(&self.line);
            self.line.clear();
        }
        self.cr = false;
    }

    fn backspace(&mut self) {
        // Remove one whole UTF-8 character.
        while let Some(b) = self.line.pop() {
            if b & 0xc0 != 0x80 {
                break;
            }
        }
    }

    fn escape(&mut self, b: u8, emit: &mut impl FnMut(&[u8])) {
        if (b == 0x18 || b == 0x1a) && !matches!(self.esc, Esc::None) {
            self.esc = Esc::None; // CAN/SUB abort any sequence
            return;
        }
        self.esc = match self.esc {
            Esc::None => Esc::None,
            Esc::Esc => match b {
                b'[' => Esc::Csi { param: 0, private: false, first: true },
                b']' => Esc::Osc,
                b'P' | b'X' | b'^' | b'_' => Esc::Str,
                0x20..=0x2f => Esc::EscInt,
                b'c' | b'M' | b'D' | b'E' => {
                    self.end_line(emit);
                    Esc::None
                }
                0x1b => Esc::Esc,
                _ => Esc::None,
            },
            Esc::EscInt => {
                if (0x30..=0x7e).contains(&b) {
                    Esc::None
                } else {
                    Esc::EscInt
                }
            }
            Esc::Csi { param, private, first } => match b {
                b'0'..=b'9' if first => {
                    Esc::Csi { param: param.saturating_mul(10).saturating_add(u32::from(b - b'0')), private, first }
                }
                b'?' | b'>' | b'<' | b'=' => Esc::Csi { param, private: true, first },
                b';' | b':' => Esc::Csi { param, private, first: false },
                0x40..=0x7e => {
                    self.csi(b, param, private, emit);
                    Esc::None
                }
                0x1b => Esc::Esc,
                _ => Esc::Csi { param, private, first },
            },
            Esc::Osc => match b {
                0x07 => Esc::None,
                0x1b => Esc::StrEsc,
                _ => Esc::Osc,
            },
            Esc::Str => {
                if b == 0x1b {
                    Esc::StrEsc
                } else {
                    Esc::Str
                }
            }
            Esc::StrEsc => {
                if b == b'\\' {
                    Esc::None
                } else {
                    // Not a string terminator: a new sequence started.
                    self.esc = Esc::Esc;
                    self.escape(b, emit);
                    return;
                }
            }
        };
    }

    fn csi(&mut self, final_byte: u8, param: u32, private: bool, emit: &mut impl FnMut(&[u8])) {
        match (final_byte, private) {
            (b'H' | b'f' | b'A' | b'B' | b'E' | b'F' | b'G' | b'd' | b'`' | b'J' | b'S' | b'T', false) => {
                self.end_line(emit)
            }
            (b'C', false) if !self.line.is_empty() => self.line.push(b' '),
            (b'h' | b'l', true) if matches!(param, 47 | 1047 | 1049) => self.end_line(emit),
            _ => {}
        }
    }
}

/// Length of the leading run of bytes that are neither C0 controls nor DEL, eight bytes at
/// a time (the scan runs over every output byte, so it must cost a small fraction of the
/// emulation's per-byte work).
pub(crate) fn printable_run(bytes: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let x = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        // A byte below 0x20 (high bit clear and below after subtracting), or equal to 0x7f.
        let below = x.wrapping_sub(LO * 0x20) & !x & HI;
        let del = {
            let y = x ^ (LO * 0x7f);
            y.wrapping_sub(LO) & !y & HI
        };
        let hit = below | del;
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] >= 0x20 && bytes[i] != 0x7f {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = Printed::default();
        let mut out = Vec::new();
        let mut emit = |l: &[u8]| out.push(String::from_utf8_lossy(l).into_owned());
        for c in chunks {
            p.feed(c, &mut emit);
        }
        p.flush(&mut emit);
        out
    }

    #[test]
    fn table() {
        let cases: &[(&[&[u8]], &[&str])] = &[
            (&[b"plain\r\nsecond\r\n"], &["plain", "second"]),
            (&[b"\x1b[01;34mdir\x1b[0m and \x1b[32mexe\x1b[m\r\n"], &["dir and exe"]),
            (&[b"$ ", b"l", b"s", b"x", b"\x08\x1b[K", b" -la", b"\r\n"], &["$ ls -la"]),
            (&[b"\rProgress: 10%", b"\rProgress: 90%", b"\r\x1b[Kdone\r\n"], &["done"]),
            (&[b"abc\r", b"\ndef\n"], &["abc", "def"]),
            (&[b"\x1b]0;window title\x07visible\n"], &["visible"]),
            (&[b"\x1b]0;title\x1b\\after\n"], &["after"]),
            (&[b"\x1b[2;1Hrow two\x1b[3;1Hrow three\x1b[J"], &["row two", "row three"]),
            (&[b"split \x1b[3", b"1mcolour\x1b", b"[0m here\n"], &["split colour here"]),
            (&[b"caf\xc3", b"\xa9 \xe6\x97\xa5\xe6\x9c\xac\n"], &["café 日本"]),
            (&[b"ab\xe6\x97\xa5\x08\x08x\n"], &["ax"]),
            (&[b"word\x1b[5Cnext\n"], &["word next"]),
            (&[b"top\x1b[?1049hfull\x1b[?1049lback\n"], &["top", "full", "back"]),
            (&[b"a\tb\x07c\n"], &["a bc"]),
            (&[b"\x1bP1$rignored\x1b\\shown\n"], &["shown"]),
            (&[b"unterminated"], &["unterminated"]),
        ];
        for (chunks, want) in cases {
            assert_eq!(lines(chunks), *want, "{chunks:?}");
        }
    }

    #[test]
    fn printable_runs_stop_at_controls_and_del() {
        for len in 0..40 {
            for stop in [0x00u8, 0x07, 0x0a, 0x1b, 0x1f, 0x7f] {
                let mut v: Vec<u8> = (0..len).map(|i| [b'a', 0x20, 0x7e, 0x80, 0xe6, 0xff][i % 6]).collect();
                assert_eq!(printable_run(&v), len);
                v.push(stop);
                v.extend_from_slice(b"tail text");
                assert_eq!(printable_run(&v), len, "len {len} stop {stop:#x}");
            }
        }
    }

    #[test]
    fn huge_lines_are_cut() {
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        let got = lines(&[&big]);
        assert_eq!(got.iter().map(String::len).collect::<Vec<_>>(), [MAX_LINE, MAX_LINE, 10]);
    }
}
