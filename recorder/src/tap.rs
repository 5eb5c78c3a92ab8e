//! The live tap: subscribers (live view, live indexing) receive a session's frames as
//! they are written. Each session has a broadcast ring; a subscriber that falls more than
//! [`TAP_CAPACITY`] frames behind skips ahead (and is told how many it missed) instead of
//! slowing the session down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::frame::Frame;
use crate::manifest::SessionMeta;

/// Frames a subscriber may lag behind before it skips ahead. The ring is allocated up
/// front for every live session (about 100 bytes a slot, subscriber or not), so 4096 cost
/// ~400 KiB per idle session, more than the rest of a proxied session together; 256 bulk
/// SSH chunks are still up to 8 MiB of backlog for a slow viewer.
pub const TAP_CAPACITY: usize = 256;

/// Session starts a [`LiveTap::starts`] receiver may fall behind by before it is told it
/// lagged.
const STARTS_CAPACITY: usize = 1024;

/// The registry of live sessions and their frame broadcasts.
#[derive(Debug, Clone)]
pub struct LiveTap {
    sessions: Arc<Mutex<HashMap<Uuid, Live>>>,
    /// Every session start, as it happens: a follower learns of a session that ends before
    /// it could have seen it in [`LiveTap::live`].
    starts: broadcast::Sender<(Uuid, SessionMeta)>,
}

impl Default for LiveTap {
    fn default() -> Self {
        LiveTap { sessions: Arc::default(), starts: broadcast::channel(STARTS_CAPACITY).0 }
    }
}

#[derive(Debug)]
struct Live {
    meta: SessionMeta,
    tx: TapSender,
}

/// The writer's end of a session's broadcast.
#[derive(Debug, Clone)]
pub(crate) struct TapSender {
    tx: broadcast::Sender<Frame>,
    /// Subscribers, counted here because `broadcast::Sender::receiver_count` takes a lock
    /// and the writer asks on every frame.
    subscribers: Arc<AtomicUsize>,
}

impl TapSender {
    /// True when someone listens (so the frame is worth cloning).
    pub(crate) fn wanted(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn send(&self, frame: Frame) {
        // No subscriber lagging behind can block this: the ring overwrites.
        let _ = self.tx.send(frame);
    }
}

impl LiveTap {
    /// The live sessions and their metadata.
    pub fn live(&self) -> Vec<(Uuid, SessionMeta)> {
        let map = self.sessions.lock().expect("tap lock");
        let mut out: Vec<_> = map.iter().map(|(id, l)| (*id, l.meta.clone())).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Every session started from now on, with its metadata at the start (also those that
    /// end at once). A receiver that falls behind gets `Lagged` and should look at
    /// [`LiveTap::live`] again.
    pub fn starts(&self) -> broadcast::Receiver<(Uuid, SessionMeta)> {
        self.starts.subscribe()
    }

    /// Subscribes to a live session's frames from now on; `None` if it is not live.
    pub fn subscribe(&self, id: Uuid) -> Option<TapReceiver> {
        let map = self.sessions.lock().expect("tap lock");
        map.get(&id).map(|l| {
            l.tx.subscribers.fetch_add(1, Ordering::Relaxed);
            TapReceiver { rx: l.tx.tx.subscribe(), skipped: 0, subscribers: l.tx.subscribers.clone() }
        })
    }

    pub(crate) fn register(&self, id: Uuid, meta: SessionMeta) -> TapSender {
        let (tx, _) = broadcast::channel(TAP_CAPACITY);
        let tx = TapSender { tx, subscribers: Arc::default() };
        self.sessions.lock().expect("tap lock").insert(id, Live { meta: meta.clone(), tx: tx.clone() });
        // No receiver is fine: nobody follows sessions.
        let _ = self.starts.send((id, meta));
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
    subscribers: Arc<AtomicUsize>,
}

impl Drop for TapReceiver {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
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
