//! Reading what the indexer wrote: full-text search over commands and screen text,
//! session and command listings, 5W reports and their exports (CSV, JSON, HTML, Parquet).
//!
//! Not built yet beyond what the search command needs; reports are a later issue.
#![warn(missing_docs)]
