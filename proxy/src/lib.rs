//! The gate: an SSH server for users and an SSH client to targets (`russh`), bridged
//! while every byte goes to the recorder; identities, targets, credentials and the access
//! rules that join them; the registry of live sessions.
#![warn(missing_docs)]

/// The control plane: users, targets, accounts, credentials, rules, lockout, audit.
pub mod control;
pub use control::{ControlPlane, MasterKey};
