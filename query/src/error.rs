//! The query crate's one error type; callers branch on [`Error::kind`].

/// What went wrong, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The index does not exist yet.
    NotFound,
    /// The query or a filter is malformed.
    Invalid,
    /// The index is damaged or from another version.
    Corrupt,
    /// Storage or I/O failed.
    Unavailable,
}

/// The query crate's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad query string or filter, with what is wrong.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// Opening or reading the index failed.
    #[error(transparent)]
    Indexer(#[from] gatehouse_indexer::Error),
    /// The search itself failed.
    #[error("search: {0}")]
    Search(#[from] tantivy::TantivyError),
}

/// The query crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        use gatehouse_indexer::ErrorKind as K;
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Indexer(e) => match e.kind() {
                K::NotFound => ErrorKind::NotFound,
                K::Invalid => ErrorKind::Invalid,
                K::Corrupt => ErrorKind::Corrupt,
                K::Unavailable | K::Io => ErrorKind::Unavailable,
            },
            Error::Search(_) => ErrorKind::Corrupt,
        }
    }
}
