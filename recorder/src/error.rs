//! The recorder's one error type. Callers branch on [`Error::kind`]; foreign errors
//! (object_store, I/O, JSON) are converted here and nowhere else.

use std::path::PathBuf;

/// What went wrong, coarsely: what a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The session, segment or object does not exist.
    NotFound,
    /// Stored data failed a check: bad magic, checksum, hash chain, undecodable frame.
    Corrupt,
    /// Storage cannot take or give data right now (network, full spool under fail-closed).
    Unavailable,
    /// The caller's input is wrong: a bad asciicast, a bad URL, a time going backwards.
    Invalid,
    /// A local I/O error (spool, files).
    Io,
}

/// The recorder's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Stored data named `what` failed a check.
    #[error("{what} is corrupt: {detail}")]
    Corrupt {
        /// What is corrupt (a segment path, a manifest).
        what: String,
        /// Which check failed.
        detail: String,
    },
    /// Storage cannot serve the request now.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Bad input from the caller.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        detail: String,
    },
    /// A bad asciicast line.
    #[error("asciicast line {line}: {detail}")]
    Cast {
        /// 1-based line number in the cast file.
        line: usize,
        /// What is wrong with it.
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
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Invalid { .. } | Error::Cast { .. } => ErrorKind::Invalid,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Invalid { what: what.into(), detail: detail.to_string() }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Corrupt { what: what.into(), detail: detail.to_string() }
    }

    pub(crate) fn cast(line: usize, detail: impl ToString) -> Self {
        Error::Cast { line, detail: detail.to_string() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Converts an object-store error about `path`: missing objects are `NotFound`,
    /// everything else (network, credentials, server errors) is `Unavailable`.
    pub(crate) fn store(path: &str, err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => Error::NotFound(path.to_string()),
            other => Error::Unavailable(format!("{path}: {other}")),
        }
    }
}

/// The recorder's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
