//! The full-text search index (tantivy), under `<data_dir>/index`.
//!
//! One document per command, one per distinct screen line, and one per file transfer the
//! proxy recorded (see [`transfer_text`]). Fields (the schema is
//! checked on open; a mismatch asks for `gatehouse reindex`):
//!
//! | field | type | what |
//! |---|---|---|
//! | `kind` | raw string, stored, fast | `shell`, `program-input` (commands), `screen` (a screen line) or `file` (a file transfer) |
//! | `text` | words, positions, stored | the command line, the screen line, or the transfer in words |
//! | `grams` | trigrams, positions | `text` again, for substring queries |
//! | `output` | words, positions, stored | a command's output excerpt |
//! | `session` | raw string, stored, fast | session id |
//! | `seq` | u64, stored | the command's order in its session (screen lines and file transfers: their order) |
//! | `user`, `account`, `target`, `source_addr` | raw string, stored | the session's 5W fields |
//! | `time` | date (µs), indexed, stored, fast | wall-clock time of the command (Enter) or of the line's first sighting |
//! | `offset` | u64, stored, fast | the same moment in µs since session start: where a player seeks |
//! | `t_end` | u64, stored | command end, µs since session start |
//! | `cwd` | stored | working directory, where known |
//! | `exit` | i64, stored | exit status, where known |
//! | `provisional` | raw string | the session id, on a live command shown before its record is final |
//!
//! Secrets never get here: command text comes from the extractor, which drops input typed
//! without echo, and screen text is output, which never contains it.

mod docs;
mod events;
mod tokenizer;

pub use docs::{IndexSink, SessionContext};
pub use events::{FILE_KIND, human_bytes, transfer_text};
pub(crate) use docs::kind_name;
pub use tokenizer::{MAX_GRAM_CHARS, PAD, TRIGRAMS, TrigramTokenizer, WORDS, fold, query_trigrams};

use std::path::{Path, PathBuf};

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::error::{Error, Result};

/// The fields of the index schema (see the module docs).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // each field is documented in the table above
pub struct Fields {
    pub kind: Field,
    pub text: Field,
    pub grams: Field,
    pub output: Field,
    pub session: Field,
    pub seq: Field,
    pub user: Field,
    pub account: Field,
    pub target: Field,
    pub source_addr: Field,
    pub time: Field,
    pub offset: Field,
    pub t_end: Field,
    pub cwd: Field,
    pub exit: Field,
    pub provisional: Field,
}

/// Segments larger than this are not merged further (see [`SearchIndex::sink`]).
pub const MAX_SEGMENT_DOCS: usize = 1_000_000;

/// The `kind` of a screen-line document.
pub const SCREEN_KIND: &str = "screen";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = |stored: bool| {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(WORDS)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let opts = TextOptions::default().set_indexing_options(indexing);
        if stored { opts.set_stored() } else { opts }
    };
    let grams = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TRIGRAMS)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let date = DateOptions::from(INDEXED).set_stored().set_fast().set_precision(DateTimePrecision::Microseconds);
    let fields = Fields {
        kind: b.add_text_field("kind", STRING | STORED | FAST),
        text: b.add_text_field("text", words(true)),
        grams: b.add_text_field("grams", grams),
        output: b.add_text_field("output", words(true)),
        session: b.add_text_field("session", STRING | STORED | FAST),
        seq: b.add_u64_field("seq", STORED),
        user: b.add_text_field("user", STRING | STORED),
        account: b.add_text_field("account", STRING | STORED),
        target: b.add_text_field("target", STRING | STORED),
        source_addr: b.add_text_field("source_addr", STRING | STORED),
        time: b.add_date_field("time", date),
        offset: b.add_u64_field("offset", STORED | FAST),
        t_end: b.add_u64_field("t_end", STORED),
        cwd: b.add_text_field("cwd", STORED),
        exit: b.add_i64_field("exit", STORED),
        provisional: b.add_text_field("provisional", STRING),
    };
    (b.build(), fields)
}

/// An open search index with gatehouse's schema and tokenizers.
#[derive(Clone)]
pub struct SearchIndex {
    index: Index,
    fields: Fields,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("dir", &self.dir).finish()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the directory) if there is none.
    pub fn open_or_create(dir: &Path) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if dir.join("meta.json").exists() {
            return SearchIndex::open(dir);
        }
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir, schema)?;
        Ok(SearchIndex::with_tokenizers(index, fields, Some(dir)))
    }

    /// Opens an existing index for reading or writing; `NotFound` if there is none, and a
    /// clear error if it was built with another schema.
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        if !dir.join("meta.json").exists() {
            return Err(Error::NotFound(format!(
                "search index in {} (run `gatehouse reindex` to build it)",
                dir.display()
            )));
        }
        let index = Index::open_in_dir(dir)?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(Error::corrupt(
                format!("search index in {}", dir.display()),
                "it was built by another version of gatehouse; run `gatehouse reindex` to rebuild it",
            ));
        }
        Ok(SearchIndex::with_tokenizers(index, fields, Some(dir)))
    }

    /// Removes the index in `dir` and creates an empty one (a full rebuild).
    pub fn recreate(dir: &Path) -> Result<SearchIndex> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        SearchIndex::open_or_create(dir)
    }

    /// An index in memory (tests).
    pub fn in_memory() -> SearchIndex {
        let (schema, fields) = schema();
        SearchIndex::with_tokenizers(Index::create_in_ram(schema), fields, None)
    }

    fn with_tokenizers(index: Index, fields: Fields, dir: Option<&Path>) -> SearchIndex {
        index.tokenizers().register(WORDS, tokenizer::words());
        index.tokenizers().register(TRIGRAMS, TrigramTokenizer::default());
        SearchIndex { index, fields, dir: dir.map(Path::to_path_buf) }
    }

    /// The schema's fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The tantivy index (for building queries).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// A reader that picks up new commits within a moment of them (watches the index).
    pub fn reader(&self) -> Result<IndexReader> {
        Ok(self.index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into()?)
    }

    /// The writer: one per index at a time (a second process gets `Unavailable`).
    /// `heap_bytes` is its indexing memory budget, split over `threads`.
    pub fn sink(&self, threads: usize, heap_bytes: usize) -> Result<IndexSink> {
        let writer: tantivy::IndexWriter = self.index.writer_with_num_threads(threads.max(1), heap_bytes).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => Error::Unavailable {
                what: "search index".into(),
                detail: "another gatehouse process (serve or reindex) is writing it".into(),
            },
            other => other.into(),
        })?;
        // Segments stay at most about a million documents, each covering a stretch of time:
        // newest-first searches skip whole segments older than the hits they already have.
        let mut policy = tantivy::merge_policy::LogMergePolicy::default();
        policy.set_max_docs_before_merge(MAX_SEGMENT_DOCS);
        writer.set_merge_policy(Box::new(policy));
        Ok(IndexSink::new(writer, self.fields))
    }
}
