//! Per-session metadata: the 5W fields, recording state, and the segment list that closes
//! the hash chain. Stored as `manifest.json` next to the session's segments.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::frame::Micros;

/// Version of the manifest JSON layout; bumped on incompatible change.
pub const MANIFEST_FORMAT: u32 = 1;

/// Who, what, where and from where: filled by whoever starts the session
/// (the SSH proxy, `gatehouse record`, `gatehouse import`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionMeta {
    /// The gatehouse user (who).
    pub user: Option<String>,
    /// The account on the target the session runs as (where).
    pub account: Option<String>,
    /// The target's name (where).
    pub target: Option<String>,
    /// The target's address `host:port`, as connected to.
    pub target_addr: Option<String>,
    /// The user's source IP address (from where).
    pub source_addr: Option<String>,
    /// The user's source port.
    pub source_port: Option<u16>,
    /// The client's software, e.g. the SSH version string `SSH-2.0-OpenSSH_9.2p1`.
    pub client: Option<String>,
    /// `"ssh"`, `"local"` (gatehouse record), `"import"` (asciicast import).
    pub protocol: Option<String>,
    /// How the user authenticated: `"publickey"`, `"password"`, ...
    pub auth_method: Option<String>,
    /// Second factor used, if any: `"totp"`.
    pub mfa: Option<String>,
    /// What the channel ran: `"shell"`, `"exec"`, `"sftp"`, `"subsystem:NAME"`.
    pub channel: Option<String>,
    /// The exec command line, or the recorded local command.
    pub command: Option<String>,
    /// The terminal type (`TERM`), when there is a terminal.
    pub term: Option<String>,
    /// Initial terminal width in columns.
    pub cols: Option<u16>,
    /// Initial terminal height in rows.
    pub rows: Option<u16>,
    /// Free-form title (asciicast title, for instance).
    pub title: Option<String>,
}

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    /// Still being written.
    Live,
    /// Ended normally; every frame is in the store.
    Complete,
    /// The recording process stopped without ending the session (crash, kill); what
    /// reached the spool was recovered.
    Interrupted,
    /// Recording failed (storage refused, spool full under `fail-closed`).
    Failed,
}

/// One sealed segment, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Sequence number, from 0, without gaps.
    pub seq: u64,
    /// Time of the first frame.
    pub first_t: Micros,
    /// Time of the last frame.
    pub last_t: Micros,
    /// Number of frames.
    pub frames: u64,
    /// Uncompressed size of the encoded frames.
    pub raw_bytes: u64,
    /// Size of the segment object as stored.
    pub stored_bytes: u64,
    /// Hex SHA-256 of the whole segment object (the next segment's `prev_hash`).
    pub hash: String,
}

/// Everything known about one session, apart from its frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version, [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The session id, a UUIDv7 (time-ordered).
    pub id: Uuid,
    /// The 5W metadata.
    pub meta: SessionMeta,
    /// Wall-clock time the session started; frame times count from here.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Wall-clock time the session ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it ended: `"exit"`, `"client-disconnect"`, `"terminated: ..."`, ...
    #[serde(default)]
    pub end_reason: Option<String>,
    /// Exit status of the remote command or shell, when known.
    #[serde(default)]
    pub exit_status: Option<i32>,
    /// Recording state.
    pub state: RecordingState,
    /// Total output bytes (target → user).
    #[serde(default)]
    pub bytes_out: u64,
    /// Total input bytes (user → target).
    #[serde(default)]
    pub bytes_in: u64,
    /// Total number of frames.
    #[serde(default)]
    pub frames: u64,
    /// Duration: time of the last frame.
    #[serde(default)]
    pub duration: Micros,
    /// Sealed segments in order.
    #[serde(default)]
    pub segments: Vec<SegmentInfo>,
    /// Hex SHA-256 of the last segment: the head of the hash chain.
    #[serde(default)]
    pub chain_head: Option<String>,
    /// Losses recorded under the `best-effort` spool policy, as human-readable notes.
    #[serde(default)]
    pub losses: Vec<String>,
}

impl Manifest {
    /// A new, live manifest for a session starting now.
    pub fn new(id: Uuid, meta: SessionMeta, started_at: OffsetDateTime) -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            id,
            meta,
            started_at,
            ended_at: None,
            end_reason: None,
            exit_status: None,
            state: RecordingState::Live,
            bytes_out: 0,
            bytes_in: 0,
            frames: 0,
            duration: 0,
            segments: Vec::new(),
            chain_head: None,
            losses: Vec::new(),
        }
    }
}
