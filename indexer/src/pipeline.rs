//! The per-session pipeline: every frame goes once through the session's single VT
//! emulator (owned by the [`Extractor`]); around it, the pipeline collects commands,
//! screen text, recorded events and keyframes.
//!
//! Per output frame, the measured work is: the extractor's `push` (vt100 processing plus
//! command extraction); a `memchr2` scan for newlines/ESC deciding where the screen must be
//! sampled ([`ScreenText`]), a screen read at those points; a reverse `memchr` for the VT
//! boundary state ([`VtTail`]); and, every few seconds or few hundred KiB, a keyframe.

use bytes::Bytes;
use gatehouse_recorder::{Event, Frame, FrameData, Manifest, Micros};

use crate::command::CommandRecord;
use crate::extract::Extractor;
use crate::keyframe::{Keyframe, KeyframeBuilder, initial_size};
use crate::screen_text::{Cut, ScreenLine, ScreenText};
use crate::vtstate::VtTail;

/// A structured event found in a recording (`FrameData::Event`, or a marker as kind
/// `"marker"` with `{"text": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// When, µs since session start.
    pub t: Micros,
    /// The event.
    pub event: Event,
}

/// A command with its position in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCommand {
    /// 0-based order of the command in its session.
    pub seq: u32,
    /// The command record.
    pub record: CommandRecord,
}

/// What the pipeline found since the last [`SessionIndexer::take`].
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Completed commands.
    pub commands: Vec<SessionCommand>,
    /// Screen lines seen for the first time.
    pub lines: Vec<ScreenLine>,
    /// Recorded events.
    pub events: Vec<RecordedEvent>,
}

impl Batch {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.lines.is_empty() && self.events.is_empty()
    }

    fn append(&mut self, other: Batch) {
        self.commands.extend(other.commands);
        self.lines.extend(other.lines);
        self.events.extend(other.events);
    }
}

/// Counters of one session's pipeline run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    /// Frames pushed.
    pub frames: u64,
    /// Output bytes processed.
    pub output_bytes: u64,
    /// Commands found.
    pub commands: u64,
    /// Distinct screen lines found.
    pub lines: u64,
    /// Keyframes taken.
    pub keyframes: u64,
}

/// Everything the pipeline found in a session.
#[derive(Debug, Default)]
pub struct SessionOutput {
    /// Commands, lines and events not taken yet.
    pub batch: Batch,
    /// All keyframes, in time order.
    pub keyframes: Vec<Keyframe>,
    /// Counters.
    pub stats: PipelineStats,
}

/// Replays one session and collects what the index and tables need. Pure: no I/O.
pub struct SessionIndexer {
    extractor: Extractor,
    tail: VtTail,
    keyframes: KeyframeBuilder,
    text: ScreenText,
    last_t: Micros,
    /// Frames applied with time `last_t` (a keyframe's `skip`).
    same_t: u32,
    next_seq: u32,
    pending: Batch,
    stats: PipelineStats,
}

impl SessionIndexer {
    /// A pipeline for a terminal of `cols`×`rows`.
    pub fn new(cols: u16, rows: u16) -> SessionIndexer {
        SessionIndexer {
            extractor: Extractor::new(cols, rows),
            tail: VtTail::default(),
            keyframes: KeyframeBuilder::default(),
            text: ScreenText::default(),
            last_t: 0,
            same_t: 0,
            next_seq: 0,
            pending: Batch::default(),
            stats: PipelineStats::default(),
        }
    }

    /// A pipeline for a recorded session (its initial terminal size).
    pub fn for_manifest(manifest: &Manifest) -> SessionIndexer {
        let (cols, rows) = initial_size(manifest);
        SessionIndexer::new(cols, rows)
    }

    /// The emulated screen after the frames pushed so far.
    pub fn screen(&self) -> &vt100::Screen {
        self.extractor.screen()
    }

    /// Feeds one frame (frames in time order).
    pub fn push(&mut self, frame: &Frame) {
        let t = frame.t;
        if self.text.due(t) {
            self.sample(t, true);
        }
        match &frame.data {
            FrameData::Output(bytes) => self.output(t, bytes),
            FrameData::Resize { .. } => {
                self.sample(t, false);
                self.extract(frame);
                self.keyframes.resized();
            }
            FrameData::Input(_) => self.extract(frame),
            FrameData::Event(event) => self.pending.events.push(RecordedEvent { t, event: event.clone() }),
            FrameData::Marker(text) => self.pending.events.push(RecordedEvent {
                t,
                event: Event { kind: "marker".into(), data: serde_json::json!({ "text": text }) },
            }),
        }
        self.stats.frames += 1;
        if t == self.last_t {
            self.same_t += 1;
        } else {
            self.last_t = t;
            self.same_t = 1;
        }
        if self.keyframes.due(t) && self.tail.at_ground() {
            let screen = self.extractor.screen();
            if self.keyframes.take(screen, t, self.stats.frames, self.same_t) {
                self.stats.keyframes += 1;
            }
        }
    }

    /// Takes what was found since the last call (for live indexing).
    pub fn take(&mut self) -> Batch {
        std::mem::take(&mut self.pending)
    }

    /// Ends the session: the last command, the final screen's lines, all keyframes.
    pub fn finish(mut self) -> SessionOutput {
        let t = self.last_t;
        self.sample(t, false);
        let records = self.extractor.finish();
        let mut batch = std::mem::take(&mut self.pending);
        let mut rest = Batch::default();
        for record in records {
            rest.commands.push(SessionCommand { seq: self.next_seq, record });
            self.next_seq += 1;
        }
        self.stats.commands += rest.commands.len() as u64;
        batch.append(rest);
        SessionOutput { batch, keyframes: self.keyframes.finish(), stats: self.stats }
    }

    fn output(&mut self, t: Micros, bytes: &Bytes) {
        self.stats.output_bytes += bytes.len() as u64;
        let (rows, _) = self.extractor.screen().size();
        let mut rest = bytes.clone();
        while let Some(cut) = self.text.scan(&rest, rows.get()) {
            let at = match cut {
                Cut::After(at) | Cut::Before(at) => at,
            };
            self.apply_output(t, rest.slice(..at));
            self.sample(t, false);
            rest = rest.slice(at..);
        }
        self.apply_output(t, rest);
        self.tail.advance(bytes);
        self.keyframes.output(bytes.len());
    }

    fn apply_output(&mut self, t: Micros, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.text.applied();
        self.extract(&Frame { t, data: FrameData::Output(bytes) });
    }

    fn extract(&mut self, frame: &Frame) {
        for record in self.extractor.push(frame) {
            self.pending.commands.push(SessionCommand { seq: self.next_seq, record });
            self.next_seq += 1;
            self.stats.commands += 1;
        }
    }

    fn sample(&mut self, t: Micros, skip_cursor_line: bool) {
        let before = self.pending.lines.len();
        self.text.sample(self.extractor.screen(), t, skip_cursor_line, &mut self.pending.lines);
        self.stats.lines += (self.pending.lines.len() - before) as u64;
    }
}
