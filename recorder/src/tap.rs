//! The live tap: subscribers (live view, live indexing) receive a session's frames as
//! they are written. Each session has a broadcast ring; a subscriber that falls more than
//! [`TAP_CAPACITY`] frames behind skips ahead (and is told how many it missed) instead of
//! slowing the session down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::frame::Frame;
use crate::manifest::SessionMeta;

/// Frames a subscriber may lag behind before it skips ahead. A few thousand SSH chunks
/// are a few seconds of a busy session: enough for a browser on a slow link to keep up
/// in the common case, small enough to bound memory per session.
pub const TAP_CAPACITY: usize = 4096;

/// The registry of live sessions and their frame broadcasts.
#[derive(Debug, Clone, Default)]
pub struct LiveTap {
    sessions: Arc<Mutex<HashMap<Uuid, Live>>>,
}

#[derive(Debug)]
struct Live {
    meta: SessionMeta,
    tx: broadcast::Sender<Frame>,
}

impl LiveTap {
    /// The live sessions and their metadata.
    pub fn live(&self) -> Vec<(Uuid, SessionMeta)> {
        let map = self.sessions.lock().expect("tap lock");
        let mut out: Vec<_> = map.iter().map(|(id, l)| (*id, l.meta.clone())).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Subscribes to a live session's frames from now on; `None` if it is not live.
    pub fn subscribe(&self, id: Uuid) -> Option<TapReceiver> {
        let map = self.sessions.lock().expect("tap lock");
        map.get(&id).map(|l| TapReceiver { rx: l.tx.subscribe(), skipped: 0 })
    }

    pub(crate) fn register(&self, id: Uuid, meta: SessionMeta) -> broadcast::Sender<Frame> {
        let (tx, _) = broadcast::channel(TAP_CAPACITY);
        self.sessions.lock().expect("tap lock").insert(id, Live { meta, tx: tx.clone() });
        tx
    }

    pub(crate) fn update_meta(&self, id: Uuid, meta: &SessionMeta) {
        if let Some(l) = self.sessions.lock().expect("tap lock").get_mut(&id) {
            l.meta = meta.clone();
        }
    }

    /// Ends a session: subscribers get `None` once they have read what was sent.
    pub(crate) fn remove(&self, id: Uuid) {
        self.sessions.lock().expect("tap lock").remove(&id);
    }
}

/// One subscription to a live session.
#[derive(Debug)]
pub struct TapReceiver {
    rx: broadcast::Receiver<Frame>,
    skipped: u64,
}

impl TapReceiver {
    /// The next frame; `None` when the session has ended. A subscriber that fell too far
    /// behind resumes at the oldest frame still held ([`TapReceiver::skipped`] counts what
    /// it missed).
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            match self.rx.recv().await {
                Ok(frame) => return Some(frame),
                Err(broadcast::error::RecvError::Lagged(n)) => self.skipped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Frames this subscriber missed by falling behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
