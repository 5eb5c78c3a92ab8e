//! The recording itself: every byte of a session, as timestamped [`Frame`]s, sealed into
//! zstd-compressed, checksummed, hash-chained segments in object storage, with a
//! [`Manifest`] per session. The recorder knows nothing about terminals or SSH: it stores
//! frames and metadata.
//!
//! ```no_run
//! # async fn demo() -> gatehouse_recorder::Result<()> {
//! use gatehouse_recorder::*;
//! let storage = Storage::from_url("file:///var/lib/gatehouse/store")?;
//! let recorder = Recorder::open(storage.clone(), RecorderConfig::new("/var/lib/gatehouse/spool")).await?;
//! let mut session = recorder.start(SessionMeta { user: Some("alice".into()), ..Default::default() }).await?;
//! session.write(FrameData::Output("$ ".into()))?;           // sync, cheap: the proxy's hot path
//! let manifest = session.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await?;
//! let frames = storage.frames(&manifest, 0);                  // Stream<Item = Result<Frame>>
//! # Ok(()) }
//! ```
//!
//! # Write path and durability
//!
//! [`SessionWriter::write`] appends the encoded frame to the session's open segment in
//! memory; every 64 KiB, and at least every [`RecorderConfig::flush_interval`] (200 ms),
//! the new bytes are appended to the session's write-ahead file in the spool (copied
//! into the file's shared mapping: the page cache has them, and a killed process
//! cannot take them along), so a process killed with SIGKILL loses at most that
//! interval. A segment's write-ahead file is opened by its first flush, so a typed
//! session's `write` does no file system work itself: the flush for time runs on the
//! spool ticker's thread. (A session with 64 KiB unflushed, or 4 KiB of output before
//! its segment's first flush, flushes or opens the file in `write`; so does the first
//! segment after start-up, which finds out whether the file system can reserve space
//! for the file's mapping.) A segment seals at
//! [`RecorderConfig::seal_bytes`] (4 MiB raw) or [`RecorderConfig::seal_age`] (5 s at
//! most; 2.5–5 s, spread per segment), whichever comes first; sealer threads compress it
//! into the spool, and the uploader puts it in the store (retrying with backoff as long
//! as needed), then the manifest, and only then deletes it from the spool.
//! [`Recorder::open`] recovers a previous process's spool: its sessions become
//! `interrupted` (or keep their state if they had finished).
//! The spool is bounded; when full, [`SpoolPolicy`] decides between refusing
//! (`fail-closed`) and recording the loss (`best-effort`).
//!
//! # Storage
//!
//! [`Storage::from_url`] takes `file:///abs/path`, `memory://` or
//! `s3://bucket/prefix[?key=value&...]`. S3 reads the usual AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, ...); query keys (`endpoint`, `region`, `access_key_id`,
//! `secret_access_key`, `allow_http`, `virtual_hosted_style_request`) override them. A
//! plain-HTTP endpoint on a loopback address needs no `allow_http`. Objects:
//!
//! ```text
//! sessions/YYYY/MM/DD/<session-id>/manifest.json    (the UTC day of the UUIDv7 id's time)
//! sessions/YYYY/MM/DD/<session-id>/00000000.seg     (sequence number, zero-padded)
//! ```
//!
//! # Segment format, version 2
//!
//! All integers little-endian. 96-byte header, zstd body, CRC-32 trailer:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `GHSEG\r\n\x1a` |
//! | 8 | 2 | format version (2; 1 is still read) |
//! | 10 | 2 | header length (96) |
//! | 12 | 16 | session id (UUID bytes) |
//! | 28 | 8 | sequence number, from 0 |
//! | 36 | 8 | time of the first frame (µs since session start) |
//! | 44 | 8 | time of the last frame |
//! | 52 | 4 | frame count |
//! | 56 | 4 | uncompressed body length |
//! | 60 | 4 | compressed body length |
//! | 64 | 32 | SHA-256 of the previous segment object (zeros for segment 0) |
//! | 96 | n | body: one zstd frame |
//! | 96+n | 4 | CRC-32 (IEEE) of bytes `0..96+n` |
//!
//! The SHA-256 of a whole segment object is listed in the manifest
//! ([`SegmentInfo::hash`]) and repeated in the next segment's header; the manifest's
//! `chain_head` is the last one's. [`Storage::verify`] checks all of it.
//!
//! The uncompressed body holds the frames as columns, so that zstd sees the terminal
//! output as one contiguous text:
//!
//! ```text
//! output_len: u32 LE | meta_len: u32 LE | output payloads | meta | other payloads
//! ```
//!
//! Each frame has a header: `tag: u8` (0 output, 1 input, 2 resize, 3 marker, 4 event),
//! `dt` (µs since the previous frame of the segment; the first frame's is its absolute
//! time), then for a resize `cols, rows`, otherwise `len`, the length of its payload: the
//! next `len` bytes of the output column (output frames) or of the other column (input;
//! marker: UTF-8; event: JSON `{"kind", "data"}`).
//!
//! In format 2, `meta` stores these headers field by field, so that zstd codes each
//! distribution on its own (keystroke timing, the one part of a recording that hardly
//! compresses, takes a third less room than in rows):
//!
//! ```text
//! frames: u32 | inputs: u32 | wide_len: u32 | input_lens_len: u32
//! tags            one u8 per frame
//! input dt        4 planes of `inputs` bytes: byte 0 of every input frame's dt (u32 LE), then byte 1, ...
//! other dt        4 planes of `frames - inputs` bytes, the same for all other frames
//! wide            LEB128 dts of the frames whose plane value is 0xFFFFFFFF (71 minutes or more)
//! input lens      LEB128, one per input frame
//! other lens      LEB128, one per other frame (two for a resize: cols, rows)
//! ```
//!
//! In format 1, `meta` holds the same fields as rows, frame after frame: `tag: u8,
//! dt: LEB128`, then `cols: LEB128, rows: LEB128` or `len: LEB128`.
//!
//! The spool's write-ahead files hold the open segment's columns in chunks, one per
//! flush, each with the bytes every column gained since the previous one; sealing
//! concatenates them. (Spool files of format 1 held rows, frame after frame: `tag, dt,
//! len, payload` or `tag, dt, cols, rows`; they are still read.)
#![warn(missing_docs)]

pub mod asciicast;
mod codec;
mod columns;
mod error;
mod frame;
mod layout;
mod manifest;
mod segment;
mod storage;
mod tap;
mod write;

pub use error::{Error, ErrorKind, Result};
pub use frame::{Event, Frame, FrameData, Micros};
pub use manifest::{MANIFEST_FORMAT, Manifest, RecordingState, SegmentInfo, SessionMeta};
pub use storage::{Problem, SessionFilter, Storage, VerifyReport};
pub use tap::{LiveTap, TAP_CAPACITY, TapReceiver};
pub use write::{Recorder, RecorderConfig, SessionEnd, SessionWriter, SpoolPolicy, tune_allocator};
