//! One bridged channel's recording: a [`SessionWriter`] shared by the two directions of
//! the bridge (each write is a short, synchronous append to the spool, so a plain mutex
//! held for that append is enough), plus the byte counts for the manifest.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use gatehouse_recorder::{FrameData, Manifest, SessionEnd, SessionWriter};

/// The recording of one session channel.
pub(crate) struct Rec {
    id: uuid::Uuid,
    writer: Mutex<Option<SessionWriter>>,
    /// Tunnels are audited by events and byte counts only; their bytes are not stored.
    record_data: bool,
    failed: AtomicBool,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Rec {
    pub(crate) fn new(writer: SessionWriter, record_data: bool) -> Rec {
        Rec {
            id: writer.id(),
            writer: Mutex::new(Some(writer)),
            record_data,
            failed: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    /// Appends a frame. A recorder error means the recording can no longer be kept (under
    /// `best-effort` the recorder notes losses itself and does not fail): the bridge then
    /// ends the session.
    pub(crate) fn write(&self, data: FrameData) {
        let mut guard = self.writer.lock().expect("recording lock");
        if let Some(w) = guard.as_mut()
            && let Err(e) = w.write(data)
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            tracing::error!(session = %w.id(), "recording failed: {e}");
        }
    }

    pub(crate) fn input(&self, b: &Bytes) {
        self.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
        if self.record_data {
            self.write(FrameData::Input(b.clone()));
        }
    }

    pub(crate) fn output(&self, b: &Bytes) {
        self.bytes_out.fetch_add(b.len() as u64, Ordering::Relaxed);
        if self.record_data {
            self.write(FrameData::Output(b.clone()));
        }
    }

    pub(crate) fn event(&self, kind: &str, data: serde_json::Value) {
        self.write(FrameData::Event(gatehouse_recorder::Event { kind: kind.into(), data }));
    }

    /// The recorded session's id.
    pub(crate) fn id(&self) -> uuid::Uuid {
        self.id
    }

    /// Whether recording failed (the session must end).
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Bytes from the user, bytes to the user.
    pub(crate) fn bytes(&self) -> (u64, u64) {
        (self.bytes_in.load(Ordering::Relaxed), self.bytes_out.load(Ordering::Relaxed))
    }

    /// Ends the recording.
    pub(crate) async fn finish(&self, reason: String, exit_status: Option<i32>) -> Option<Manifest> {
        let writer = self.writer.lock().expect("recording lock").take()?;
        let id = writer.id();
        match writer.finish(SessionEnd { reason, exit_status }).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(session = %id, "finishing the recording failed: {e}");
                None
            }
        }
    }
}
