//! Reading what the indexer wrote: full-text search over commands and screen text, and
//! session command listings. (5W reports and exports are a later issue.)
//!
//! ```no_run
//! use gatehouse_query::{Filters, SearchRequest, Searcher};
//! # fn main() -> gatehouse_query::Result<()> {
//! let searcher = Searcher::open(std::path::Path::new("gatehouse-data/index"))?;
//! let request = SearchRequest {
//!     query: Some("\"systemctl restart\" *nginx*".into()),
//!     filters: Filters { user: Some("alice".into()), ..Filters::default() },
//!     limit: 20,
//!     ..SearchRequest::default()
//! };
//! for hit in searcher.search(&request)? {
//!     println!("{} {} {}", hit.session, hit.time, hit.text);
//! }
//! # Ok(()) }
//! ```
//!
//! The query syntax is in [`syntax`].
#![warn(missing_docs)]

mod error;
mod newest;
mod search;
pub mod syntax;

pub use error::{Error, ErrorKind, Result};
pub use search::{Filters, Hit, SearchRequest, Searcher};
