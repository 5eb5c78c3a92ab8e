//! Rows of the three tables, built from manifests, pipeline findings and control-plane
//! events, and turned into Arrow record batches.

use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use gatehouse_recorder::{Manifest, RecordingState};
use time::OffsetDateTime;
use uuid::Uuid;

use super::schema::{commands_schema, events_schema, sessions_schema};
use crate::error::Result;
use crate::index::SessionContext;
use crate::pipeline::{RecordedEvent, SessionCommand};

/// One audit event for the `events` table.
///
/// Events inside a recording (`FrameData::Event`) become rows with `source =
/// "recording"`; events that happen outside any recording — authentication attempts,
/// access decisions, host-key events from the proxy's control plane — are passed in by the
/// binary as `EventRow`s with `source = "control-plane"`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// When it happened.
    pub time: OffsetDateTime,
    /// Short dotted name: `auth`, `access`, `exec`, `command.blocked`, `file.write`...
    pub kind: String,
    /// `recording` or `control-plane`.
    pub source: String,
    /// The session it belongs to, if any.
    pub session_id: Option<Uuid>,
    /// µs since the session's start, for events inside a recording.
    pub offset_us: Option<u64>,
    /// Who (the gatehouse user, or the name given at a failed login).
    pub user: Option<String>,
    /// The account on the target.
    pub account: Option<String>,
    /// The target.
    pub target: Option<String>,
    /// From where: source IP (or `ip:port`).
    pub source_addr: Option<String>,
    /// The client software.
    pub client: Option<String>,
    /// `password`, `publickey`, `totp`...
    pub auth_method: Option<String>,
    /// The second factor used, if any.
    pub mfa: Option<String>,
    /// `success`, `failure`, `partial`, `locked`, `allowed`, `denied`...
    pub outcome: Option<String>,
    /// A human-readable reason or description.
    pub detail: Option<String>,
    /// A file path, for file transfers.
    pub path: Option<String>,
    /// A byte count, for transfers.
    pub bytes: Option<i64>,
    /// The event's full fields as JSON.
    pub data: Option<serde_json::Value>,
}

impl EventRow {
    /// A control-plane event of `kind` at `time`, every other field empty.
    pub fn control_plane(time: OffsetDateTime, kind: impl Into<String>) -> EventRow {
        EventRow {
            time,
            kind: kind.into(),
            source: "control-plane".into(),
            session_id: None,
            offset_us: None,
            user: None,
            account: None,
            target: None,
            source_addr: None,
            client: None,
            auth_method: None,
            mfa: None,
            outcome: None,
            detail: None,
            path: None,
            bytes: None,
            data: None,
        }
    }

    /// The row of an event found in a recording, with the session's 5W fields.
    pub fn from_recording(manifest: &Manifest, ev: &RecordedEvent) -> EventRow {
        let ctx = SessionContext::of(manifest);
        let d = &ev.event.data;
        let text = |keys: &[&str]| {
            keys.iter().find_map(|k| match d.get(*k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Bool(b) => Some(if *b { "allowed" } else { "denied" }.to_string()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
        };
        EventRow {
            time: ctx.at(ev.t),
            kind: ev.event.kind.clone(),
            source: "recording".into(),
            session_id: Some(manifest.id),
            offset_us: Some(ev.t),
            user: manifest.meta.user.clone(),
            account: manifest.meta.account.clone(),
            target: manifest.meta.target.clone(),
            source_addr: manifest.meta.source_addr.clone(),
            client: manifest.meta.client.clone(),
            auth_method: manifest.meta.auth_method.clone(),
            mfa: manifest.meta.mfa.clone(),
            outcome: text(&["outcome", "decision", "result", "allowed"]),
            detail: text(&["detail", "reason", "message", "command", "rule", "text"]),
            path: text(&["path", "file", "filename"]),
            bytes: ["bytes", "size"].iter().find_map(|k| d.get(*k)?.as_i64()),
            data: (!d.is_null()).then(|| d.clone()),
        }
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn tz(b: TimestampMicrosecondBuilder) -> TimestampMicrosecondBuilder {
    b.with_timezone("UTC")
}

fn state_name(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Live => "live",
        RecordingState::Complete => "complete",
        RecordingState::Interrupted => "interrupted",
        RecordingState::Failed => "failed",
    }
}

/// A `sessions` row: the manifest plus what the pipeline counted.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The session's manifest.
    pub manifest: Manifest,
    /// Commands found.
    pub commands: u64,
    /// Events in the recording.
    pub events: u64,
}

/// A `commands` row.
#[derive(Debug, Clone)]
pub struct CommandRow {
    /// The session's facts.
    pub ctx: Arc<SessionContext>,
    /// The session's client software.
    pub client: Option<String>,
    /// The command.
    pub command: SessionCommand,
}

impl CommandRow {
    /// The command's wall-clock time.
    pub fn time(&self) -> OffsetDateTime {
        self.ctx.at(self.command.record.t)
    }
}

macro_rules! strings {
    ($rows:expr, $get:expr) => {{
        let mut b = StringBuilder::new();
        for r in $rows {
            b.append_option($get(r));
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

macro_rules! column {
    ($builder:expr, $rows:expr, $get:expr) => {{
        let mut b = $builder;
        for r in $rows {
            b.append_option($get(r));
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

pub(crate) fn sessions_batch(rows: &[SessionRow]) -> Result<RecordBatch> {
    let ms: Vec<&Manifest> = rows.iter().map(|r| &r.manifest).collect();
    let cols: Vec<ArrayRef> = vec![
        strings!(&ms, |m: &&Manifest| Some(m.id.to_string())),
        column!(tz(TimestampMicrosecondBuilder::new()), &ms, |m: &&Manifest| Some(micros(m.started_at))),
        column!(tz(TimestampMicrosecondBuilder::new()), &ms, |m: &&Manifest| m.ended_at.map(micros)),
        column!(Int64Builder::new(), &ms, |m: &&Manifest| Some(m.duration as i64)),
        strings!(&ms, |m: &&Manifest| m.meta.user.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.account.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.target.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.target_addr.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.source_addr.clone()),
        column!(Int32Builder::new(), &ms, |m: &&Manifest| m.meta.source_port.map(i32::from)),
        strings!(&ms, |m: &&Manifest| m.meta.client.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.protocol.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.auth_method.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.mfa.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.channel.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.command.clone()),
        strings!(&ms, |m: &&Manifest| m.meta.term.clone()),
        column!(Int32Builder::new(), &ms, |m: &&Manifest| m.meta.cols.map(i32::from)),
        column!(Int32Builder::new(), &ms, |m: &&Manifest| m.meta.rows.map(i32::from)),
        strings!(&ms, |m: &&Manifest| m.meta.title.clone()),
        strings!(&ms, |m: &&Manifest| Some(state_name(m.state))),
        strings!(&ms, |m: &&Manifest| m.end_reason.clone()),
        column!(Int32Builder::new(), &ms, |m: &&Manifest| m.exit_status),
        column!(Int64Builder::new(), &ms, |m: &&Manifest| Some(m.bytes_in as i64)),
        column!(Int64Builder::new(), &ms, |m: &&Manifest| Some(m.bytes_out as i64)),
        column!(Int64Builder::new(), &ms, |m: &&Manifest| Some(m.frames as i64)),
        column!(Int64Builder::new(), rows, |r: &SessionRow| Some(r.commands as i64)),
        column!(Int64Builder::new(), rows, |r: &SessionRow| Some(r.events as i64)),
        strings!(&ms, |m: &&Manifest| (!m.losses.is_empty()).then(|| m.losses.join("\n"))),
    ];
    Ok(RecordBatch::try_new(sessions_schema(), cols)?)
}

pub(crate) fn commands_batch(rows: &[CommandRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        strings!(rows, |r: &CommandRow| Some(r.ctx.session.to_string())),
        column!(Int32Builder::new(), rows, |r: &CommandRow| Some(r.command.seq as i32)),
        column!(tz(TimestampMicrosecondBuilder::new()), rows, |r: &CommandRow| Some(micros(r.time()))),
        column!(tz(TimestampMicrosecondBuilder::new()), rows, |r: &CommandRow| r
            .command
            .record
            .t_end
            .map(|t| micros(r.ctx.at(t)))),
        column!(Int64Builder::new(), rows, |r: &CommandRow| Some(r.command.record.t as i64)),
        column!(Int64Builder::new(), rows, |r: &CommandRow| r
            .command
            .record
            .t_end
            .map(|e| e.saturating_sub(r.command.record.t) as i64)),
        strings!(rows, |r: &CommandRow| Some(r.command.record.command.clone())),
        strings!(rows, |r: &CommandRow| Some(crate::index::kind_name(r.command.record.kind))),
        strings!(rows, |r: &CommandRow| r.command.record.cwd.clone()),
        column!(Int32Builder::new(), rows, |r: &CommandRow| r.command.record.exit),
        strings!(rows, |r: &CommandRow| r.command.record.output_excerpt.clone()),
        strings!(rows, |r: &CommandRow| r.ctx.user.clone()),
        strings!(rows, |r: &CommandRow| r.ctx.account.clone()),
        strings!(rows, |r: &CommandRow| r.ctx.target.clone()),
        strings!(rows, |r: &CommandRow| r.ctx.source_addr.clone()),
        strings!(rows, |r: &CommandRow| r.client.clone()),
    ];
    Ok(RecordBatch::try_new(commands_schema(), cols)?)
}

pub(crate) fn events_batch(rows: &[EventRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        column!(tz(TimestampMicrosecondBuilder::new()), rows, |r: &EventRow| Some(micros(r.time))),
        strings!(rows, |r: &EventRow| Some(r.kind.clone())),
        strings!(rows, |r: &EventRow| Some(r.source.clone())),
        strings!(rows, |r: &EventRow| r.session_id.map(|id| id.to_string())),
        column!(Int64Builder::new(), rows, |r: &EventRow| r.offset_us.map(|o| o as i64)),
        strings!(rows, |r: &EventRow| r.user.clone()),
        strings!(rows, |r: &EventRow| r.account.clone()),
        strings!(rows, |r: &EventRow| r.target.clone()),
        strings!(rows, |r: &EventRow| r.source_addr.clone()),
        strings!(rows, |r: &EventRow| r.client.clone()),
        strings!(rows, |r: &EventRow| r.auth_method.clone()),
        strings!(rows, |r: &EventRow| r.mfa.clone()),
        strings!(rows, |r: &EventRow| r.outcome.clone()),
        strings!(rows, |r: &EventRow| r.detail.clone()),
        strings!(rows, |r: &EventRow| r.path.clone()),
        column!(Int64Builder::new(), rows, |r: &EventRow| r.bytes),
        strings!(rows, |r: &EventRow| r.data.as_ref().map(|d| d.to_string())),
    ];
    Ok(RecordBatch::try_new(events_schema(), cols)?)
}
