//! The per-session pipeline: every frame goes once through the session's single VT
//! emulator (owned by the [`Extractor`]); around it, the pipeline collects commands,
//! screen text, recorded events and keyframes.
//!
//! Per output frame the work is: the extractor's `push` (vt100 processing plus command
//! extraction); the printed-text scan of the bytes and de-duplication of finished lines
//! ([`ScreenText`]), plus a whole-screen read about once a second while a full-screen
//! program runs; a reverse `memchr` for the VT boundary state ([`VtTail`]); and, every
//! 512 KiB of output, a keyframe.

use bytes::Bytes;
use gatehouse_recorder::{Event, Frame, FrameData, Manifest, Micros, SessionMeta};

use crate::command::CommandRecord;
use crate::extract::Extractor;
use crate::keyframe::{Keyframe, KeyframeBuilder, initial_size, known_size};
use crate::scp::{Direction, ScpDecoder};
use crate::screen_text::{ScreenLines, ScreenText};
use crate::stream::{Stream, looks_binary};
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
    pub lines: ScreenLines,
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
        self.lines.append(other.lines);
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
    /// Whole-screen reads for screen text.
    pub screen_reads: u64,
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
    /// Keyframes are taken (off for live indexing: the final pass takes them).
    keyframing: bool,
    /// What the data frames carry.
    stream: Stream,
    /// A text stream turned out binary: its output is no longer replayed.
    binary_seen: bool,
    /// A legacy scp transfer's file decoder.
    scp: Option<ScpDecoder>,
    /// For a finished session run as one command (`ssh host CMD`): that command's exit
    /// status and end, which are the session's.
    exec_end: Option<(Option<i32>, Micros)>,
}

impl SessionIndexer {
    /// A pipeline for a terminal of `cols`×`rows` (zero: unknown, see [`known_size`]).
    pub fn new(cols: u16, rows: u16) -> SessionIndexer {
        let (cols, rows) = known_size(cols, rows);
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
            keyframing: true,
            stream: Stream::Terminal,
            binary_seen: false,
            scp: None,
            exec_end: None,
        }
    }

    /// The same pipeline for another kind of stream (see [`Stream`]).
    pub fn with_stream(mut self, stream: Stream) -> SessionIndexer {
        self.stream = stream;
        self
    }

    /// Decodes the files of a legacy scp transfer from its frames, if `meta` is one.
    fn with_scp(mut self, meta: &SessionMeta) -> SessionIndexer {
        if meta.channel.as_deref() == Some("exec") && self.stream == Stream::Binary {
            self.scp = meta.command.as_deref().and_then(ScpDecoder::for_command);
        }
        self
    }

    /// The same pipeline without keyframes (live indexing, where the pass over the stored
    /// recording at the end takes them).
    pub fn without_keyframes(mut self) -> SessionIndexer {
        self.keyframing = false;
        self
    }

    /// A pipeline for a recorded session: its initial terminal size, and its stream
    /// kind from the manifest's channel (see [`Stream::of`]).
    pub fn for_manifest(manifest: &Manifest) -> SessionIndexer {
        let (cols, rows) = initial_size(manifest);
        let mut p = SessionIndexer::new(cols, rows).with_stream(Stream::of(&manifest.meta)).with_scp(&manifest.meta);
        if manifest.meta.channel.as_deref() == Some("exec") && manifest.ended_at.is_some() {
            p.exec_end = Some((manifest.exit_status, manifest.duration));
        }
        p
    }

    /// A pipeline for a live session, from the metadata it started with (no keyframes:
    /// the final pass over the stored recording takes them).
    pub fn for_meta(meta: &SessionMeta) -> SessionIndexer {
        SessionIndexer::new(meta.cols.unwrap_or(0), meta.rows.unwrap_or(0))
            .without_keyframes()
            .with_stream(Stream::of(meta))
            .with_scp(meta)
    }

    /// The emulated screen after the frames pushed so far.
    pub fn screen(&self) -> &vt100::Screen {
        self.extractor.screen()
    }

    /// Feeds one frame (frames in time order).
    pub fn push(&mut self, frame: &Frame) {
        let t = frame.t;
        if let Some(scp) = &mut self.scp {
            let carrying = match (&frame.data, scp.direction()) {
                (FrameData::Input(b), Direction::Upload) | (FrameData::Output(b), Direction::Download) => Some(b),
                _ => None,
            };
            for (kind, data) in carrying.map(|b| scp.feed(b)).unwrap_or_default() {
                self.pending.events.push(RecordedEvent { t, event: Event { kind: kind.into(), data } });
            }
        }
        match &frame.data {
            FrameData::Output(bytes) if !self.replays_output(bytes) => self.stats.output_bytes += bytes.len() as u64,
            // Without a terminal, input is data piped to the command, not typed lines.
            FrameData::Input(_) | FrameData::Resize { .. } if self.stream != Stream::Terminal => {}
            FrameData::Output(bytes) => self.output(t, frame, bytes),
            FrameData::Resize { cols, rows } if *cols == 0 || *rows == 0 => {
                let (cols, rows) = known_size(*cols, *rows);
                self.extract(&Frame { t, data: FrameData::Resize { cols, rows } });
            }
            FrameData::Resize { .. } => self.extract(frame),
            FrameData::Input(_) => self.extract(frame),
            FrameData::Event(event) => {
                // A command run without a shell (`ssh host CMD`) is a command too.
                if event.kind == "exec"
                    && let Some(command) = event.data.get("command").and_then(|c| c.as_str())
                {
                    let (exit, t_end) = self.exec_end.map_or((None, None), |(exit, end)| (exit, Some(end)));
                    self.add_command(CommandRecord {
                        t,
                        t_end,
                        command: command.to_string(),
                        kind: crate::command::CommandKind::Shell,
                        cwd: None,
                        exit,
                        output_excerpt: None,
                    });
                }
                self.pending.events.push(RecordedEvent { t, event: event.clone() });
            }
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
        if self.keyframing && self.keyframes.due() && self.tail.at_ground() {
            let screen = self.extractor.screen();
            if self.keyframes.take(screen, t, self.stats.frames, self.same_t) {
                self.stats.keyframes += 1;
            }
        }
    }

    /// The command accepted last while the extractor still holds its record (it is
    /// released when the next command starts), with the sequence number it will get.
    pub fn running(&self) -> Option<SessionCommand> {
        let record = self.extractor.running_command()?.clone();
        Some(SessionCommand { seq: self.next_seq, record })
    }

    /// Takes what was found since the last call (for live indexing).
    pub fn take(&mut self) -> Batch {
        std::mem::take(&mut self.pending)
    }

    /// Ends the session: the last command, the final screen's lines, all keyframes.
    pub fn finish(mut self) -> SessionOutput {
        let t = self.last_t;
        let before = self.pending.lines.len();
        self.text.finish(self.extractor.screen(), t, &mut self.pending.lines);
        self.stats.lines += (self.pending.lines.len() - before) as u64;
        self.stats.screen_reads += 1;
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

    /// Whether an output chunk goes through the emulator: always for a terminal, never
    /// for a binary protocol, and for a command without a terminal until its output
    /// turns out not to be text.
    fn replays_output(&mut self, bytes: &[u8]) -> bool {
        match self.stream {
            Stream::Terminal => true,
            Stream::Binary => false,
            Stream::Text => {
                self.binary_seen = self.binary_seen || looks_binary(bytes);
                !self.binary_seen
            }
        }
    }

    fn output(&mut self, t: Micros, frame: &Frame, bytes: &Bytes) {
        self.stats.output_bytes += bytes.len() as u64;
        self.extract(frame);
        let before = self.pending.lines.len();
        self.text.output(t, bytes, &mut self.pending.lines);
        let screen = self.extractor.screen();
        if self.text.read_due(t, screen.alternate_screen()) {
            self.text.read(screen, t, &mut self.pending.lines);
            self.stats.screen_reads += 1;
        }
        self.stats.lines += (self.pending.lines.len() - before) as u64;
        self.tail.advance(bytes);
        self.keyframes.output(bytes.len());
    }

    fn extract(&mut self, frame: &Frame) {
        for record in self.extractor.push(frame) {
            self.add_command(record);
        }
    }

    fn add_command(&mut self, record: CommandRecord) {
        self.pending.commands.push(SessionCommand { seq: self.next_seq, record });
        self.next_seq += 1;
        self.stats.commands += 1;
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_fixtures::terminal::realistic_session;

    use super::*;

    fn run(seed: u64, bytes: usize) -> (gatehouse_fixtures::terminal::Workload, SessionOutput) {
        let w = realistic_session(seed, bytes);
        let mut p = SessionIndexer::new(w.cols, w.rows);
        let mut taken = Batch::default();
        for (i, frame) in w.frames.iter().enumerate() {
            p.push(frame);
            if i % 50 == 0 {
                taken.append(p.take());
            }
        }
        let mut out = p.finish();
        taken.append(std::mem::take(&mut out.batch));
        out.batch = taken;
        (w, out)
    }

    #[test]
    fn finds_the_typed_commands_and_the_screen_text() {
        let (w, out) = run(21, 200_000);
        // Every typed line, in order (whether the extractor calls it shell or program
        // input is its own business).
        let commands: Vec<&str> = out.batch.commands.iter().map(|c| c.record.command.as_str()).collect();
        assert_eq!(commands, w.commands);
        let seqs: Vec<u32> = out.batch.commands.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u32).collect::<Vec<_>>());
        // Output the shell printed is in the screen text, once per distinct line.
        let lines: Vec<&str> = out.batch.lines.iter().map(|l| l.text).collect();
        assert!(lines.iter().any(|l| l.contains("proxy_pass http://upstream_")), "grep output seen");
        assert!(lines.iter().any(|l| l.contains("日本語のテキストを表示します")), "CJK seen");
        let distinct: std::collections::HashSet<&&str> = lines.iter().collect();
        assert_eq!(distinct.len(), lines.len(), "no line twice");
        assert_eq!(out.stats.lines, lines.len() as u64);
        // Secrets typed without echo appear nowhere.
        for secret in &w.secrets {
            assert!(!commands.iter().any(|c| c.contains(secret.as_str())), "secret in a command");
            assert!(!lines.iter().any(|l| l.contains(secret.as_str())), "secret in screen text");
        }
        assert!(!w.secrets.is_empty());
    }

    #[test]
    fn every_line_of_a_flood_is_kept_even_when_it_scrolls_by_at_once() {
        let mut p = SessionIndexer::new(80, 24);
        p.push(&Frame::output(0, "$ ".as_bytes().to_vec()));
        let flood: String = (0..500).map(|i| format!("line number {i} of the flood\r\n")).collect();
        p.push(&Frame::output(10, flood.clone().into_bytes()));
        let out = p.finish();
        for i in 0..500 {
            let want = format!("line number {i} of the flood");
            assert!(out.batch.lines.iter().any(|l| l.text.ends_with(&want)), "{want} missing");
        }
    }

    #[test]
    fn an_exec_request_is_a_command() {
        let mut p = SessionIndexer::new(80, 24);
        p.push(&Frame::event(3, "exec", serde_json::json!({"command": "rm -rf /tmp/build"})));
        p.push(&Frame::output(4, b"done\r\n".to_vec()));
        let out = p.finish();
        let got: Vec<_> = out.batch.commands.iter().map(|c| (c.seq, c.record.t, c.record.command.as_str())).collect();
        assert_eq!(got, [(0, 3, "rm -rf /tmp/build")]);
        assert_eq!(out.batch.events.len(), 1);
    }

    #[test]
    fn a_finished_exec_session_gives_its_command_the_exit_status_and_end() {
        let meta = gatehouse_recorder::SessionMeta {
            channel: Some("exec".into()),
            command: Some("make test".into()),
            ..Default::default()
        };
        let mut manifest = Manifest::new(uuid::Uuid::now_v7(), meta, time::OffsetDateTime::now_utc());
        let run = |manifest: &Manifest| {
            let mut p = SessionIndexer::for_manifest(manifest);
            p.push(&Frame::event(3, "exec", serde_json::json!({"command": "make test"})));
            p.push(&Frame::output(4, b"1 failed\r\n".to_vec()));
            let record = p.finish().batch.commands.remove(0).record;
            (record.command, record.exit, record.t_end)
        };
        // Still running (a live manifest): neither is known yet.
        assert_eq!(run(&manifest), ("make test".to_string(), None, None));
        manifest.ended_at = Some(time::OffsetDateTime::now_utc());
        manifest.exit_status = Some(2);
        manifest.duration = 9_000;
        assert_eq!(run(&manifest), ("make test".to_string(), Some(2), Some(9_000)));
        // A shell session's status is not its commands'.
        manifest.meta.channel = Some("shell".into());
        assert_eq!(run(&manifest), ("make test".to_string(), None, None));
    }

    #[test]
    fn events_and_markers_are_collected() {
        let mut p = SessionIndexer::new(80, 24);
        p.push(&Frame::event(5, "file.write", serde_json::json!({"path": "/etc/hosts", "bytes": 12})));
        p.push(&Frame { t: 6, data: FrameData::Marker("checkpoint".into()) });
        let out = p.finish();
        let kinds: Vec<&str> = out.batch.events.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(kinds, ["file.write", "marker"]);
        assert_eq!(out.batch.events[1].event.data["text"], "checkpoint");
    }
}
