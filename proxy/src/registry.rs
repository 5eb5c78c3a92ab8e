//! The in-process registry of live sessions: list them with their metadata, subscribe to
//! one (through the recorder's live tap), inject input into it, or terminate it with a
//! message shown to the user. The web's live view and takeover build on this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gatehouse_recorder::{Recorder, SessionMeta, TapReceiver};
use uuid::Uuid;

use crate::bridge::{Link, Rec, UserMsg};
use crate::error::{Error, Result};

/// A live session as listed.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The recorded session's id.
    pub id: Uuid,
    /// Its metadata (who, where, from where, what).
    pub meta: SessionMeta,
    /// Bytes from the user so far.
    pub bytes_in: u64,
    /// Bytes to the user so far.
    pub bytes_out: u64,
}

/// What the registry holds for one live session.
pub(crate) struct LiveEntry {
    meta: SessionMeta,
    link: Arc<Link>,
    rec: Arc<Rec>,
}

impl LiveEntry {
    pub(crate) fn new(meta: SessionMeta, link: Arc<Link>, rec: Arc<Rec>) -> LiveEntry {
        LiveEntry { meta, link, rec }
    }
}

/// The registry. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    live: Arc<Mutex<HashMap<Uuid, LiveEntry>>>,
    recorder: Recorder,
}

impl Registry {
    pub(crate) fn new(recorder: Recorder) -> Registry {
        Registry { live: Arc::default(), recorder }
    }

    pub(crate) fn insert(&self, entry: LiveEntry) -> Uuid {
        let id = entry.rec.id();
        self.live.lock().expect("registry lock").insert(id, entry);
        id
    }

    pub(crate) fn remove(&self, id: Uuid) {
        self.live.lock().expect("registry lock").remove(&id);
    }

    /// The live sessions, oldest first (ids are UUIDv7, so time-ordered).
    pub fn list(&self) -> Vec<LiveSession> {
        let live = self.live.lock().expect("registry lock");
        let mut out: Vec<LiveSession> = live
            .iter()
            .map(|(id, e)| {
                let (bytes_in, bytes_out) = e.rec.bytes();
                LiveSession { id: *id, meta: e.meta.clone(), bytes_in, bytes_out }
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    /// Frames of a live session as they are recorded, from now on.
    pub fn subscribe(&self, id: Uuid) -> Result<TapReceiver> {
        if !self.live.lock().expect("registry lock").contains_key(&id) {
            return Err(Error::NotFound(format!("live session {id}")));
        }
        self.recorder.tap().subscribe(id).ok_or_else(|| Error::NotFound(format!("live tap of session {id}")))
    }

    /// Sends `input` to the target as if the user typed it (recorded as input, with a
    /// `session.inject` event).
    pub fn inject(&self, id: Uuid, input: impl Into<Bytes>) -> Result<()> {
        let live = self.live.lock().expect("registry lock");
        let e = live.get(&id).ok_or_else(|| Error::NotFound(format!("live session {id}")))?;
        if e.link.up.try_push(UserMsg::Inject(input.into())) {
            Ok(())
        } else {
            Err(Error::Busy(format!("session {id} is not accepting input right now")))
        }
    }

    /// Ends a live session; the user sees `message`.
    pub fn terminate(&self, id: Uuid, message: &str) -> Result<()> {
        let live = self.live.lock().expect("registry lock");
        let e = live.get(&id).ok_or_else(|| Error::NotFound(format!("live session {id}")))?;
        // A terminate is never refused for lack of room: it is what frees the room.
        if !e.link.up.try_push(UserMsg::Terminate(message.to_string())) {
            e.link.up.force_push(UserMsg::Terminate(message.to_string()));
        }
        Ok(())
    }
}
