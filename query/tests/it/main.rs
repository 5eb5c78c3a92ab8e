//! Integration tests of the query crate: an index built by the real pipeline, searched.

mod search;
