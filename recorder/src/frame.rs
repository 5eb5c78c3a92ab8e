//! The neutral model of a recording: one [`Frame`] per timestamped event.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Microseconds since the session started (monotonic clock). Never a float.
pub type Micros = u64;

/// One timestamped event of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Time of the event, in microseconds since the session started.
    pub t: Micros,
    /// What happened.
    pub data: FrameData,
}

/// The payload of a [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameData {
    /// Bytes the target sent to the user's terminal.
    Output(Bytes),
    /// Bytes the user sent to the target (keystrokes, pastes, uploaded data).
    Input(Bytes),
    /// The terminal changed size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// A free-text marker (asciicast "m" events, bookmarks).
    Marker(String),
    /// A structured event: command-rule decision, file transfer, tunnel, takeover...
    Event(Event),
}

/// A structured event carried inside a recording.
///
/// `kind` is a short dotted name (`"file.write"`, `"command.blocked"`, `"exit"`);
/// `data` holds its fields. The recorder stores it without interpreting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Short dotted name of the event.
    pub kind: String,
    /// The event's fields.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Frame {
    /// An output frame.
    pub fn output(t: Micros, bytes: impl Into<Bytes>) -> Self {
        Frame { t, data: FrameData::Output(bytes.into()) }
    }

    /// An input frame.
    pub fn input(t: Micros, bytes: impl Into<Bytes>) -> Self {
        Frame { t, data: FrameData::Input(bytes.into()) }
    }

    /// A resize frame.
    pub fn resize(t: Micros, cols: u16, rows: u16) -> Self {
        Frame { t, data: FrameData::Resize { cols, rows } }
    }

    /// A structured event frame.
    pub fn event(t: Micros, kind: impl Into<String>, data: serde_json::Value) -> Self {
        Frame { t, data: FrameData::Event(Event { kind: kind.into(), data }) }
    }
}
