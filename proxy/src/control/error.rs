//! The control plane's error: one enum, with a [`ErrorKind`] callers branch on.

/// What went wrong, coarsely: what a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist (for [`Error::NoRoute`]: the target or account).
    NotFound,
    /// It exists, but no rule lets this user reach it.
    Denied,
    /// The input is malformed (a name, a key, a selector, a config entry).
    Invalid,
    /// The thing already exists.
    Conflict,
    /// Stored data cannot be read back: wrong master key or tampering.
    Corrupt,
    /// The database could not be read or written.
    Storage,
}

/// A control-plane error. Each message says what and where.
///
/// [`Error::NoRoute`] is special: its `Display` is the same for an unknown target and a
/// denied one, so it is safe to show to the connecting user; the precise reason is in
/// [`Error::kind`], [`Error::NoRoute::reason`] and the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user may not reach this target/account, or it does not exist.
    #[error("unknown target or access denied: {target}")]
    NoRoute {
        /// The target name the user asked for.
        target: String,
        /// [`ErrorKind::NotFound`] or [`ErrorKind::Denied`]; never show it to the user.
        kind: ErrorKind,
        /// The precise reason, for logs and the audit event only.
        reason: String,
    },
    /// A management call named something that does not exist.
    #[error("{what} not found: {name}")]
    NotFound {
        /// "user", "target", "account", "rule", …
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A management call would create something that exists already.
    #[error("{what} already exists: {name}")]
    Conflict {
        /// "user", "target", …
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Malformed input.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being read ("user name", "public key", "rule selector `x=`", …).
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A secret could not be decrypted.
    #[error(
        "cannot decrypt {what}: the master key does not match the one it was stored with, \
         or the stored data was tampered with"
    )]
    Decrypt {
        /// Which secret.
        what: String,
    },
    /// Loading or creating the master key failed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("control database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database schema is newer than this build understands, or otherwise unusable.
    #[error("control database {path}: {reason}")]
    Schema {
        /// The database file.
        path: String,
        /// Why it is unusable.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// What went wrong, coarsely.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoRoute { kind, .. } => *kind,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Invalid { .. } | Error::MasterKey(_) => ErrorKind::Invalid,
            Error::Decrypt { .. } => ErrorKind::Corrupt,
            Error::Sqlite(_) | Error::Schema { .. } | Error::Io { .. } => ErrorKind::Storage,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), reason: reason.into() }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// The control plane's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
