//! The recording itself: every byte of a session, as timestamped [`Frame`]s, sealed into
//! zstd-compressed, checksummed, hash-chained segments in object storage, with a
//! [`Manifest`] per session.
//!
//! The recorder knows nothing about terminals or SSH: it stores frames and metadata.
#![warn(missing_docs)]

pub mod asciicast;
mod error;
mod frame;
mod manifest;

pub use error::{Error, ErrorKind, Result};
pub use frame::{Event, Frame, FrameData, Micros};
pub use manifest::{MANIFEST_FORMAT, Manifest, RecordingState, SegmentInfo, SessionMeta};
