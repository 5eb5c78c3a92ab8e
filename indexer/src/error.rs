//! The indexer's one error type. Callers branch on [`Error::kind`]; foreign errors
//! (tantivy, arrow/parquet, object_store, the recorder, I/O) are converted here and
//! nowhere else.

use std::path::PathBuf;

/// What went wrong, coarsely: what a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The session, keyframe file or index does not exist.
    NotFound,
    /// Stored data failed a check: a keyframe file, an index, a recording segment.
    Corrupt,
    /// Storage or the index cannot serve now (network, the index locked by another process).
    Unavailable,
    /// The caller's input is wrong: a bad query, a bad time.
    Invalid,
    /// A local I/O error.
    Io,
}

/// The indexer's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Stored data named `what` failed a check.
    #[error("{what} is corrupt: {detail}")]
    Corrupt {
        /// What is corrupt.
        what: String,
        /// Which check failed.
        detail: String,
    },
    /// Storage or the index cannot serve the request now.
    #[error("{what} unavailable: {detail}")]
    Unavailable {
        /// What is unavailable.
        what: String,
        /// Why.
        detail: String,
    },
    /// Bad input from the caller.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        detail: String,
    },
    /// Local I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The recorder failed (reading a session).
    #[error(transparent)]
    Recorder(#[from] gatehouse_recorder::Error),
    /// The search index failed.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// Writing a Parquet table failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building an Arrow batch failed (a schema mismatch: a bug).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// The indexer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::Io { .. } => ErrorKind::Io,
            Error::Recorder(e) => match e.kind() {
                gatehouse_recorder::ErrorKind::NotFound => ErrorKind::NotFound,
                gatehouse_recorder::ErrorKind::Corrupt => ErrorKind::Corrupt,
                gatehouse_recorder::ErrorKind::Unavailable => ErrorKind::Unavailable,
                gatehouse_recorder::ErrorKind::Invalid => ErrorKind::Invalid,
                gatehouse_recorder::ErrorKind::Io => ErrorKind::Io,
            },
            Error::Index(e) => match e {
                tantivy::TantivyError::LockFailure(..) => ErrorKind::Unavailable,
                tantivy::TantivyError::IoError(_) => ErrorKind::Io,
                tantivy::TantivyError::InvalidArgument(_) => ErrorKind::Invalid,
                _ => ErrorKind::Corrupt,
            },
            Error::Parquet(_) | Error::Arrow(_) => ErrorKind::Corrupt,
            Error::Store(e) => match e {
                object_store::Error::NotFound { .. } => ErrorKind::NotFound,
                _ => ErrorKind::Unavailable,
            },
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Corrupt { what: what.into(), detail: detail.to_string() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
