//! What flows through a bridge's two pipes, in order: everything a user's channel said
//! (`UserMsg`, from the server handler) and everything the target's channel said
//! (`TargetMsg`, from the client handler). One ordered stream per direction keeps data,
//! EOF, exit status and close in the order the peer sent them.

use bytes::Bytes;
use russh::{Pty, Sig};

use crate::pipe::Weight;

/// Control messages count this much against a pipe's limits, so a flood of them is
/// bounded like data.
const CONTROL_WEIGHT: usize = 64;

/// How a session channel started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    /// An interactive shell.
    Shell,
    /// A command.
    Exec(Vec<u8>),
    /// A subsystem (`sftp`).
    Subsystem(String),
}

/// The terminal a user asked for.
#[derive(Debug, Clone)]
pub(crate) struct PtyReq {
    pub(crate) term: String,
    pub(crate) cols: u32,
    pub(crate) rows: u32,
    pub(crate) pix_w: u32,
    pub(crate) pix_h: u32,
    pub(crate) modes: Vec<(Pty, u32)>,
}

/// An `x11-req`: what the target's sshd needs to set up `DISPLAY` (OpenSSH sends a fake
/// cookie here and swaps in the real one on its side, so it is passed through as is).
#[derive(Debug, Clone)]
pub(crate) struct X11Req {
    pub(crate) single: bool,
    pub(crate) proto: String,
    pub(crate) cookie: String,
    pub(crate) screen: u32,
}

/// From the user's channel.
#[derive(Debug)]
pub(crate) enum UserMsg {
    /// `pty-req` (already answered by the handler).
    Pty(PtyReq),
    /// `env`, an allowed variable (already answered by the handler).
    Env(String, String),
    /// `x11-req` (answered by the handler; the bridge decides and relays).
    X11(X11Req),
    /// `auth-agent-req@openssh.com` (the bridge decides and relays).
    Agent,
    /// Words for the user's stderr about a connection-wide request that was refused
    /// (a `-R` forward), which has no channel of its own to say it on.
    Note(String),
    /// `shell` / `exec` / `subsystem` (answered by the bridge once the target answered).
    Start(Start),
    /// Channel data (keystrokes, uploads, SFTP requests).
    Data(Bytes),
    /// `window-change`.
    Resize { cols: u32, rows: u32, pix_w: u32, pix_h: u32 },
    /// `signal`.
    Signal(Sig),
    /// The user sent EOF.
    Eof,
    /// The user closed the channel (or the connection went away).
    Close,
    /// Input injected by a registry caller (takeover).
    Inject(Bytes),
    /// A registry caller ends the session, with a message for the user.
    Terminate(String),
}

/// From the target's channel.
#[derive(Debug)]
pub(crate) enum TargetMsg {
    /// stdout / terminal output.
    Data(Bytes),
    /// Extended data (stderr is 1).
    Ext(u32, Bytes),
    /// The target answered a request (`shell`, `exec`, `subsystem`, `pty-req`, `env`).
    Reply(bool),
    /// `exit-status`.
    ExitStatus(u32),
    /// `exit-signal`.
    ExitSignal { signal: Sig, core_dumped: bool, message: String },
    /// The target sent EOF.
    Eof,
    /// The target closed the channel, or its connection ended.
    Close,
}

impl Weight for UserMsg {
    fn weight(&self) -> usize {
        match self {
            UserMsg::Data(b) | UserMsg::Inject(b) => b.len(),
            _ => CONTROL_WEIGHT,
        }
    }
}

impl Weight for TargetMsg {
    fn weight(&self) -> usize {
        match self {
            TargetMsg::Data(b) | TargetMsg::Ext(_, b) => b.len(),
            _ => CONTROL_WEIGHT,
        }
    }
}

/// The SSH name of a signal (`INT`, `TERM`, ...), without the `SIG` prefix.
pub(crate) fn sig_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT".into(),
        Sig::ALRM => "ALRM".into(),
        Sig::FPE => "FPE".into(),
        Sig::HUP => "HUP".into(),
        Sig::ILL => "ILL".into(),
        Sig::INT => "INT".into(),
        Sig::KILL => "KILL".into(),
        Sig::PIPE => "PIPE".into(),
        Sig::QUIT => "QUIT".into(),
        Sig::SEGV => "SEGV".into(),
        Sig::TERM => "TERM".into(),
        Sig::USR1 => "USR1".into(),
        Sig::Custom(c) => c.clone(),
    }
}
