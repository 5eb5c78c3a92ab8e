//! The HTTP API and browser UI (`axum`): search, the replay player, live view and
//! takeover, approvals, reports.
//!
//! Not built yet: this crate is a placeholder so the workspace shows the whole data flow.
//! It holds no code and serves nothing.
#![warn(missing_docs)]
