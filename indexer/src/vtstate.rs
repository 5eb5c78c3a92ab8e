//! Where the VT parser stands at the end of each output frame, without a second parser.
//!
//! A keyframe may only be taken at a frame boundary where the emulator is in its ground
//! state: not inside an escape sequence, an OSC/DCS string, or a UTF-8 character. `vt100`
//! does not expose its parser state, so [`VtTail`] infers it from the bytes: ESC (0x1B)
//! starts a new sequence from any state, so only the bytes after a frame's last ESC
//! matter, and those are few. Frames without an ESC inherit the previous frame's state.
//! The cost is one reverse `memchr` per frame plus a short tail scan.

/// The inferred parser state at the end of the bytes seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Printing text; `utf8_need` continuation bytes still expected.
    Ground,
    /// Just after ESC.
    Escape,
    /// ESC followed by intermediate bytes (0x20..=0x2F), waiting for the final byte.
    EscapeIntermediate,
    /// Inside a CSI sequence, waiting for its final byte.
    Csi,
    /// Inside a DCS header (parameters), waiting for its final byte.
    DcsHeader,
    /// Inside an OSC string (ended by BEL or ST).
    Osc,
    /// Inside a DCS/SOS/PM/APC string (ended by ST only).
    Passthrough,
}

/// Tracks whether the byte stream seen so far ends in the emulator's ground state.
#[derive(Debug, Clone)]
pub(crate) struct VtTail {
    state: State,
    utf8_need: u8,
}

impl Default for VtTail {
    fn default() -> Self {
        VtTail { state: State::Ground, utf8_need: 0 }
    }
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

impl VtTail {
    /// Whether everything seen so far ends at a clean boundary: a fresh parser fed the
    /// following bytes behaves exactly like the running one.
    pub(crate) fn at_ground(&self) -> bool {
        self.state == State::Ground && self.utf8_need == 0
    }

    /// Accounts for one more chunk of output.
    pub(crate) fn advance(&mut self, bytes: &[u8]) {
        let rest = match memchr::memrchr(ESC, bytes) {
            Some(at) => {
                self.state = State::Escape;
                self.utf8_need = 0;
                &bytes[at + 1..]
            }
            None => bytes,
        };
        self.scan(rest);
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Ground => {
                    self.ground_tail(bytes);
                    return;
                }
                State::Osc => match memchr::memchr3(BEL, CAN, SUB, bytes) {
                    Some(at) => {
                        self.state = State::Ground;
                        bytes = &bytes[at + 1..];
                    }
                    None => return,
                },
                State::Passthrough => match memchr::memchr2(CAN, SUB, bytes) {
                    Some(at) => {
                        self.state = State::Ground;
                        bytes = &bytes[at + 1..];
                    }
                    None => return,
                },
                _ => {
                    self.step(bytes[0]);
                    bytes = &bytes[1..];
                }
            }
        }
    }

    /// One byte in a short sequence state (Escape, CSI, DCS header).
    fn step(&mut self, b: u8) {
        if b == CAN || b == SUB {
            self.state = State::Ground;
            return;
        }
        // Other C0 controls execute without leaving the sequence; DEL is ignored.
        if b < 0x20 || b == 0x7f {
            return;
        }
        self.state = match (self.state, b) {
            (State::Escape, b'[') => State::Csi,
            (State::Escape, b']') => State::Osc,
            (State::Escape, b'P') => State::DcsHeader,
            (State::Escape, b'X' | b'^' | b'_') => State::Passthrough,
            (State::Escape | State::EscapeIntermediate, 0x20..=0x2f) => State::EscapeIntermediate,
            (State::Escape | State::EscapeIntermediate, _) => State::Ground,
            (State::Csi, 0x40..=0x7e) => State::Ground,
            (State::DcsHeader, 0x40..=0x7e) => State::Passthrough,
            (state, _) => state,
        };
    }

    /// In ground state only an unfinished UTF-8 character can leave us off a boundary
    /// (the chunk holds no ESC past this point).
    fn ground_tail(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        // Finish a character begun in an earlier chunk.
        while self.utf8_need > 0 {
            match bytes.first() {
                Some(b) if b & 0xc0 == 0x80 => {
                    self.utf8_need -= 1;
                    bytes = &bytes[1..];
                }
                // A new lead byte or ASCII ends the broken character (vte replaces it).
                Some(_) => self.utf8_need = 0,
                None => return,
            }
        }
        let tail = &bytes[bytes.len().saturating_sub(4)..];
        self.utf8_need = 0;
        for (i, &b) in tail.iter().enumerate().rev() {
            if b & 0xc0 == 0x80 {
                continue; // a continuation byte: look further back for its lead
            }
            let len = match b {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => 1, // ASCII or an invalid lead: complete as far as vte is concerned
            };
            let have = tail.len() - i;
            if have < len {
                self.utf8_need = (len - have) as u8;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends_at_ground(chunks: &[&[u8]]) -> bool {
        let mut t = VtTail::default();
        for c in chunks {
            t.advance(c);
        }
        t.at_ground()
    }

    #[test]
    fn table() {
        let cases: &[(&[&[u8]], bool)] = &[
            (&[b"plain text\r\n"], true),
            (&[b"\x1b[31mred\x1b[0m"], true),
            (&[b"\x1b[31"], false),
            (&[b"\x1b[31", b"m"], true),
            (&[b"\x1b"], false),
            (&[b"\x1b", b"[?2004h"], true),
            (&[b"\x1b]0;title"], false),
            (&[b"\x1b]0;title", b" more"], false),
            (&[b"\x1b]0;title", b" more\x07after"], true),
            (&[b"\x1b]0;title\x1b\\"], true),
            (&[b"\x1bP1$r", b"payload"], false),
            (&[b"\x1bP1$rpayload\x1b\\x"], true),
            (&[b"\x1b(B"], true),
            (&[b"\x1b("], false),
            (&[b"\x1b[1;2\x18"], true),
            (&[b"caf\xc3"], false),
            (&[b"caf\xc3", b"\xa9"], true),
            (&[b"\xe4\xb8"], false),
            (&[b"\xe4", b"\xb8", b"\xad ok"], true),
            (&[b"\xe4\xb8\xad"], true),
            (&[b"\xf0\x9f\x98"], false),
            (&[b"\xf0\x9f\x98\x80"], true),
            (&[b"\x1b[m\xe4\xb8"], false),
            (&[b""], true),
        ];
        for (chunks, want) in cases {
            assert_eq!(ends_at_ground(chunks), *want, "{chunks:?}");
        }
    }
}
