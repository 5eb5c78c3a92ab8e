//! The idle timeout: how long a user's terminal (a shell, or the target menu) may go
//! without input before gatehouse ends it as unattended.

use std::time::Duration;

use tokio::time::Instant;

use super::{Link, UserMsg};

/// A user's silence, measured while reading what they send.
pub(crate) struct Idle {
    /// The timeout; `None` (or zero) for none.
    every: Option<Duration>,
    until: Option<Instant>,
}

impl Idle {
    pub(crate) fn new(every: Option<Duration>) -> Idle {
        let every = every.filter(|d| !d.is_zero());
        Idle { every, until: every.map(|d| Instant::now() + d) }
    }

    /// The user's next message, or `None` once they have sent nothing for the timeout.
    /// Typing, resizing the window, a signal or an auditor's takeover input start it over;
    /// a keep-alive from the client does not (it is no person's doing).
    pub(crate) async fn pop(&mut self, link: &Link) -> Option<UserMsg> {
        let msg = match self.until {
            None => link.up.pop().await,
            // `pop` takes an item only once it returns it: cutting its wait short loses
            // nothing.
            Some(at) => tokio::time::timeout_at(at, link.up.pop()).await.ok()?,
        };
        if let (Some(d), UserMsg::Data(_) | UserMsg::Inject(_) | UserMsg::Resize { .. } | UserMsg::Signal(_)) = (self.every, &msg) {
            self.until = Some(Instant::now() + d);
        }
        Some(msg)
    }

    /// What the user is told, and the session's end reason says, when it ran out.
    pub(crate) fn words(&self) -> String {
        let idle = self.every.unwrap_or_default();
        let secs = idle.as_secs();
        let span = if idle.subsec_nanos() != 0 {
            format!("{} s", idle.as_secs_f64())
        } else if secs >= 60 && secs.is_multiple_of(60) {
            format!("{} min", secs / 60)
        } else {
            format!("{secs} s")
        };
        format!("idle timeout: no input for {span}")
    }
}
