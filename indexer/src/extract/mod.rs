//! Command extraction: recovers the command lines a person ran from a session's frames.
//!
//! (Early version: replays output through the session's single `vt100` parser; the
//! extraction state machine lands next.)

use std::num::NonZeroU16;

use gatehouse_recorder::{Frame, FrameData};

use crate::command::CommandRecord;

/// Replays one session's frames and yields the command lines people ran.
///
/// Pure: no I/O, no clocks (time comes from the frames). Owns the session's single
/// `vt100::Parser`; the indexing pipeline reads screens through [`Extractor::screen`].
pub struct Extractor {
    parser: vt100::Parser,
}

impl Extractor {
    /// An extractor for a terminal of `cols`×`rows` (zero is treated as 1).
    pub fn new(cols: u16, rows: u16) -> Extractor {
        Extractor { parser: vt100::Parser::new(nz(rows), nz(cols), 0) }
    }

    /// Feeds one frame; returns the commands completed by it, oldest first.
    pub fn push(&mut self, frame: &Frame) -> Vec<CommandRecord> {
        match &frame.data {
            FrameData::Output(bytes) => self.parser.process(bytes),
            FrameData::Resize { cols, rows } => self.parser.set_size(nz(*rows), nz(*cols)),
            _ => {}
        }
        Vec::new()
    }

    /// Ends the session; returns the commands still open (e.g. the last one).
    pub fn finish(self) -> Vec<CommandRecord> {
        Vec::new()
    }

    /// The emulated terminal as of the last frame pushed.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}
