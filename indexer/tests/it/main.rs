//! Integration tests of the indexer against real storage (a `file://` store written by the
//! real recorder), a real tantivy index on disk, and pyarrow reading the Parquet tables.

mod common;
mod extract;
mod live;
mod reindex;
mod tables;
