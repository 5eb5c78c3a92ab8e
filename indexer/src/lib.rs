//! Understanding terminal streams: replays a session's frames through a VT100 emulator
//! (`vt100`) to recover screens and the commands people ran (command extraction, the same
//! pure code the proxy runs live), stores screen keyframes for seeking, and writes the
//! full-text search index (`tantivy`) and the Parquet audit tables (`arrow`, `parquet`).
//!
//! - [`Extractor`]: command extraction; owns the session's one `vt100::Parser`.
//! - [`SessionIndexer`]: the per-session pipeline around it — commands, screen text seen
//!   ([`ScreenLines`]), recorded events, [`Keyframe`]s. Pure, no I/O. What it replays
//!   depends on the session's [`Stream`]: binary protocols (SFTP, scp, rsync, tunnels)
//!   are not screens; their file-transfer events are indexed instead.
//! - [`index`]: the search index under `<data_dir>/index` (schema and tokenizers there);
//!   searching it is the query crate's job.
//! - [`tables`]: the Parquet tables `sessions`, `commands`, `events` (schemas there).
//! - [`reindex`]: rebuilds all of it from the recordings; [`LiveIndexer`] keeps it current
//!   while `serve` records.
//! - [`screen_at`]: the exact screen at any moment of a session, from its keyframes.
//!
//! ```no_run
//! # async fn f(storage: gatehouse_recorder::Storage, manifest: gatehouse_recorder::Manifest) -> gatehouse_indexer::Result<()> {
//! use futures::StreamExt as _;
//! use gatehouse_indexer::{SessionIndexer, load_keyframes, screen_at};
//!
//! let mut pipeline = SessionIndexer::for_manifest(&manifest);
//! let mut frames = Box::pin(storage.frames(&manifest, 0));
//! while let Some(frame) = frames.next().await {
//!     pipeline.push(&frame?);
//! }
//! let found = pipeline.finish();
//! println!("{} commands, {} screen lines", found.stats.commands, found.stats.lines);
//!
//! let keyframes = load_keyframes(&storage.object_store(), &manifest).await?;
//! let at_one_minute = screen_at(&storage, &manifest, &keyframes, 60_000_000).await?;
//! println!("{}", at_one_minute.screen().contents());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod command;
mod error;
mod extract;
pub mod index;
mod keyframe;
mod live;
mod pipeline;
mod reindex;
mod scp;
mod screen_text;
mod stream;
pub mod tables;
mod vtstate;

pub use command::{CommandKind, CommandRecord};
pub use error::{Error, ErrorKind, Result};
pub use extract::Extractor;
pub use keyframe::{
    KEYFRAME_BYTES, Keyframe, apply_frame, decode_keyframes, encode_keyframes, initial_size, known_size,
    load_keyframes, redraw, replay_to, screen_at, store_keyframes,
};
pub use live::{COMMIT_INTERVAL, EventSink, LiveIndexer, POLL_INTERVAL};
pub use pipeline::{Batch, PipelineStats, RecordedEvent, SessionCommand, SessionIndexer, SessionOutput};
pub use reindex::{Progress, ReindexReport, reindex};
pub use screen_text::{MAX_LINE, SAMPLE_INTERVAL, SAMPLE_MIN_BYTES, ScreenLine, ScreenLines};
pub use stream::Stream;
