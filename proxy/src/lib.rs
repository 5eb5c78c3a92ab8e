//! The gate: an SSH server for users and an SSH client to targets (`russh`), bridged
//! while every byte goes to the recorder; identities, targets, credentials and the access
//! rules that join them (`control`); the registry of live sessions.
//!
//! ```no_run
//! # async fn f(control: gatehouse_proxy::ControlPlane, recorder: gatehouse_recorder::Recorder) -> gatehouse_proxy::Result<()> {
//! let proxy = gatehouse_proxy::Proxy::new(gatehouse_proxy::ProxyConfig::default(), control, recorder)?;
//! let listener = proxy.bind().await?;          // 127.0.0.1:2222 by default
//! let live = proxy.registry().clone();        // list / subscribe / inject / terminate
//! listener.run().await
//! # }
//! ```
//!
//! Inside: `server` (accept loop, thin russh handler) → `bridge` (one task per session
//! channel: setup, recording, the two pumps, SFTP decoding) → `target` (the client side);
//! `pipe` is the flow control between them, `gate` the view of the control plane.
#![warn(missing_docs)]

/// The control plane: users, targets, accounts, credentials, rules, lockout, audit.
pub mod control;
pub use control::{ControlPlane, MasterKey};

mod bridge;
mod demo_target;
mod config;
mod error;
mod gate;
mod login;
mod menu;
mod pipe;
mod registry;
mod server;
mod target;

pub use config::{DEFAULT_BANNER, DEFAULT_ENV_ALLOW, ProxyConfig};
pub use demo_target::DemoTarget;
pub use error::{Error, ErrorKind, Result};
pub use login::{Login, LoginError};
pub use registry::{LiveSession, Registry};
pub use server::{Listener, Proxy};

pub(crate) use server::UserIdentity;
