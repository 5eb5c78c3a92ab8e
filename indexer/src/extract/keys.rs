//! The input side: which typed bytes end a line (Enter, Ctrl-C), which are text, and which
//! are pasted (bracketed paste: an Enter inside a paste is text, not a line end).
//!
//! Input bytes are never turned into command text (the screen is the only source of
//! text), so no-echo input such as passwords cannot leak from here.

/// A key that matters to line tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// Enter (`\r` or `\n`): the line editor accepts the line.
    Enter,
    /// Ctrl-C: the line is abandoned.
    Interrupt,
    /// A byte of text (printable, or part of a UTF-8 character).
    Text,
    /// Anything else: editing keys, escape sequences, other control characters.
    Other,
}

/// Escape-sequence state carried across input frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Esc {
    #[default]
    None,
    /// Just read ESC.
    Start,
    /// Inside `ESC [` … final byte; `params` holds the first bytes to spot `200~`/`201~`.
    Csi { len: u8, params: [u8; 4] },
    /// `ESC O x`: one more byte.
    Ss3,
}

/// Splits typed bytes into [`Key`]s, tracking bracketed pastes across frames.
#[derive(Debug, Default)]
pub(crate) struct KeyScanner {
    esc: Esc,
    in_paste: bool,
}

impl KeyScanner {
    /// Scans one input frame. `bracketed` says whether the terminal is in bracketed-paste
    /// mode: only then do paste markers make the Enters between them literal text.
    pub(crate) fn scan(&mut self, bytes: &[u8], bracketed: bool, mut on_key: impl FnMut(Key)) {
        // (Used for keys the state machine ignores but whose paste markers still count.)
        for &b in bytes {
            let key = self.step(b, bracketed);
            on_key(key);
        }
    }

    /// Reads one typed byte.
    pub(crate) fn step(&mut self, b: u8, bracketed: bool) -> Key {
        match self.esc {
            Esc::Start if b < 0x20 => {
                // A lone Escape (vi mode) followed by a control key: the key counts.
                self.esc = Esc::None;
                self.step(b, bracketed)
            }
            Esc::Start => {
                self.esc = match b {
                    b'[' => Esc::Csi { len: 0, params: [0; 4] },
                    b'O' => Esc::Ss3,
                    _ => Esc::None, // Alt-key
                };
                Key::Other
            }
            Esc::Csi { len, mut params } => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = Esc::None;
                    if b == b'~' && len == 3 && bracketed {
                        match &params[..3] {
                            b"200" => self.in_paste = true,
                            b"201" => self.in_paste = false,
                            _ => {}
                        }
                    }
                } else {
                    if usize::from(len) < params.len() {
                        params[usize::from(len)] = b;
                    }
                    self.esc = Esc::Csi { len: len.saturating_add(1), params };
                }
                Key::Other
            }
            Esc::Ss3 => {
                self.esc = Esc::None;
                Key::Other
            }
            Esc::None => match b {
                0x1b => {
                    self.esc = Esc::Start;
                    Key::Other
                }
                b'\r' | b'\n' if self.in_paste => Key::Text,
                b'\r' | b'\n' => Key::Enter,
                0x03 if !self.in_paste => Key::Interrupt,
                0x20..=0x7e | 0x80..=0xff => Key::Text,
                _ => Key::Other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(frames: &[&[u8]], bracketed: bool) -> String {
        let mut s = KeyScanner::default();
        let mut out = String::new();
        for f in frames {
            s.scan(f, bracketed, |k| {
                out.push(match k {
                    Key::Enter => 'E',
                    Key::Interrupt => 'C',
                    Key::Text => 't',
                    Key::Other => '.',
                })
            });
        }
        out
    }

    #[test]
    fn table() {
        let cases: &[(&[&[u8]], bool, &str)] = &[
            (&[b"ls\r"], false, "ttE"),
            (&[b"a\nb"], false, "tEt"),
            (&[b"x\x03"], false, "tC"),
            // Arrow keys and Alt-word moves are not text.
            (&[b"\x1b[A\x1bb\x1bOB"], false, "........"),
            // Backspace and Ctrl-A/E/U/W/K are editing keys.
            (&[b"\x7f\x01\x05\x15\x17\x0b"], false, "......"),
            // Enter inside a bracketed paste is text; after it, a line end.
            (&[b"\x1b[200~a\rb\r\x1b[201~\r"], true, "......tttt......E"),
            // Markers split across frames.
            (&[b"\x1b[20", b"0~\r", b"\x1b[201~", b"\r"], true, "......t......E"),
            // Without bracketed-paste mode the program sees real line ends.
            (&[b"\x1b[200~a\r\x1b[201~"], false, "......tE......"),
            // Escape then Enter (vi mode: leave insert mode, accept the line).
            (&[b"\x1b", b"\r"], false, ".E"),
            // UTF-8 bytes are text.
            (&[&[0xc3, 0xa9]], false, "tt"),
        ];
        for (frames, bracketed, want) in cases {
            assert_eq!(keys(frames, *bracketed), *want, "{frames:?}");
        }
    }
}
