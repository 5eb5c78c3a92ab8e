//! The proxy's error type (the control plane's own errors convert into it).

use std::path::PathBuf;

/// What kind of failure, for callers to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such live session, target, ...
    NotFound,
    /// The session cannot take this now (its input queue is full).
    Busy,
    /// Bad configuration or input.
    Invalid,
    /// Files, sockets.
    Io,
    /// The control plane failed.
    Control,
}

/// A proxy error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not found.
    #[error("not found: {0}")]
    NotFound(String),
    /// Busy.
    #[error("busy: {0}")]
    Busy(String),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// An I/O error on a path or address.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path or address.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The host key file is unreadable or malformed.
    #[error("host key {path}: {why}")]
    HostKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The control plane failed.
    #[error(transparent)]
    Control(#[from] crate::control::Error),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Invalid(_) | Error::HostKey { .. } => ErrorKind::Invalid,
            Error::Io { .. } => ErrorKind::Io,
            Error::Control(_) => ErrorKind::Control,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

/// Result with the proxy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
