//! Understanding terminal streams: replays a session's frames through a VT100 emulator
//! (`vt100`) to recover screens and the commands people ran (command extraction, the same
//! pure code the proxy runs live), stores screen keyframes for seeking, and writes the
//! full-text search index (`tantivy`) and the Parquet audit tables (`arrow`, `parquet`).
#![warn(missing_docs)]

mod command;
mod extract;

pub use command::{CommandKind, CommandRecord};
pub use extract::Extractor;
