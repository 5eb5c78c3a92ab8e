//! Understanding terminal streams: replays a session's frames through a VT100 emulator
//! (`vt100`) to recover screens and the commands people ran (command extraction, the same
//! pure code the proxy runs live), stores screen keyframes for seeking, and writes the
//! full-text search index (`tantivy`) and the Parquet audit tables (`arrow`, `parquet`).
#![warn(missing_docs)]

mod command;
mod error;
mod extract;
pub mod index;
mod keyframe;
mod live;
mod pipeline;
mod reindex;
mod screen_text;
pub mod tables;
mod vtstate;

pub use command::{CommandKind, CommandRecord};
pub use error::{Error, ErrorKind, Result};
pub use extract::Extractor;
pub use keyframe::{
    KEYFRAME_BYTES, Keyframe, apply_frame, decode_keyframes, encode_keyframes, initial_size,
    load_keyframes, replay_to, screen_at, store_keyframes,
};
pub use live::{COMMIT_INTERVAL, LiveIndexer, POLL_INTERVAL};
pub use pipeline::{Batch, PipelineStats, RecordedEvent, SessionCommand, SessionIndexer, SessionOutput};
pub use reindex::{Progress, ReindexReport, reindex};
pub use screen_text::{MAX_LINE, SAMPLE_INTERVAL, SAMPLE_MIN_BYTES, ScreenLine};
