//! Before the pumps run: collecting the user's requests, deciding the forwarding they
//! asked for, telling the user why a session is refused, building the recording's
//! metadata, replaying the requests on the target, and holding what the user sends
//! meanwhile (so nothing typed ahead is lost, and a user who leaves is noticed at once).

use std::collections::VecDeque;
use std::time::Duration;

use russh::ChannelWriteHalf;
use russh::server::Msg;

use super::msg::{PtyReq, Start, TargetMsg, UserMsg, X11Req};
use super::{Ctx, Link};
use crate::control::Route;
use crate::pipe::Weight;
use crate::UserIdentity;
use crate::target::TargetConn;

/// The requests a user made before starting the channel.
#[derive(Default)]
pub(crate) struct Requests {
    pub(crate) pty: Option<PtyReq>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) x11: Option<X11Req>,
    pub(crate) agent: bool,
    /// Refusals of connection-wide requests, to show on this channel's stderr.
    pub(crate) notes: Vec<String>,
}

/// Waits for `shell`/`exec`/`subsystem`, gathering the requests before it (the handler
/// has answered them already). `None` when the channel closed first.
pub(crate) async fn collect(link: &Link) -> Option<(Start, Requests)> {
    let mut req = Requests::default();
    loop {
        match link.up.pop().await {
            UserMsg::Pty(p) => req.pty = Some(p),
            UserMsg::Env(name, value) => req.env.push((name, value)),
            UserMsg::X11(x) => req.x11 = Some(x),
            UserMsg::Agent => req.agent = true,
            UserMsg::Note(n) => req.notes.push(n),
            UserMsg::Resize { cols, rows, pix_w, pix_h } => {
                if let Some(p) = req.pty.as_mut() {
                    (p.cols, p.rows, p.pix_w, p.pix_h) = (cols, rows, pix_w, pix_h);
                }
            }
            UserMsg::Start(s) => return Some((s, req)),
            UserMsg::Close | UserMsg::Terminate(_) => return None,
            UserMsg::Data(_) | UserMsg::Inject(_) | UserMsg::Signal(_) | UserMsg::Eof => {}
        }
    }
}

/// What the user sent while the bridge was busy (choosing, connecting, replaying):
/// handed to the up pump before anything newer.
#[derive(Default)]
pub(crate) struct Early {
    pub(crate) held: VecDeque<UserMsg>,
    bytes: usize,
}

impl Early {
    /// Holds what the user sends until they close the channel (or the connection drops),
    /// then returns. Once `limit` bytes are held it stops reading, so a client pouring
    /// data into a session that has no target yet is held back by its SSH window.
    pub(crate) async fn until_gone(&mut self, link: &Link, limit: usize) {
        loop {
            if self.bytes >= limit {
                return std::future::pending().await;
            }
            // `pop` is cancel-safe: an item is only taken in the poll that returns it.
            match link.up.pop().await {
                UserMsg::Close | UserMsg::Terminate(_) => return,
                m => {
                    self.bytes += m.weight();
                    self.held.push_back(m);
                }
            }
        }
    }
}

/// What forwarding the bridge relays for this session, decided by the route.
#[derive(Default)]
pub(crate) struct Forwarding {
    pub(crate) agent: bool,
    pub(crate) x11: Option<X11Req>,
}

/// Decides the agent and X11 forwarding the user asked for: relayed when the target
/// allows it; otherwise refused, audited, and said on the user's stderr.
pub(crate) async fn forwarding(ctx: &Ctx, route: &Route, req: &Requests, out: &UserOut<'_>) -> Forwarding {
    let mut f = Forwarding::default();
    let target = &route.target.name;
    let refuse = |what: &'static str, allowance: &str| {
        let who = &ctx.who;
        let detail = format!("{what} to {target}: not allowed (the target lacks --allow {allowance})");
        ctx.proxy.gate().audit_forward(&who.login.user, who.peer, Some(target), what, false, &detail);
        format!("gatehouse: {what} refused by gatehouse policy for {target}\r\n")
    };
    let mut said: String = req.notes.iter().map(|n| format!("{n}\r\n")).collect();
    if req.agent {
        if route.allow.agent {
            f.agent = true;
        } else {
            said += &refuse("agent forwarding", "agent");
        }
    }
    if let Some(x) = &req.x11 {
        if route.allow.x11 {
            f.x11 = Some(x.clone());
        } else {
            said += &refuse("X11 forwarding", "x11");
        }
    }
    if !said.is_empty() {
        out.stderr(&said).await;
    }
    f
}

/// Writes to the user's channel outside the pumps.
pub(crate) struct UserOut<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) to_user: &'a ChannelWriteHalf<Msg>,
}

impl UserOut<'_> {
    /// Tells the user why there is no session (stderr, exit status 1) and closes the
    /// channel. `reply` answers the pending shell/exec/subsystem request first, so the
    /// client shows the message and the exit status instead of a bare "request failed"
    /// (OpenSSH exits at once on a failed request, before printing what came with it).
    pub(crate) async fn refuse(&self, link: &Link, message: &str, reply: bool) {
        tracing::info!(user = %self.ctx.who.login.user, "refused: {message}");
        if reply {
            let _ = self.ctx.handle.channel_success(self.ctx.id).await;
        }
        self.stderr(&format!("{message}\r\n")).await;
        self.finish_early(link, 1).await;
    }

    /// A line (or lines) on the user's stderr.
    pub(crate) async fn stderr(&self, text: &str) {
        let _ = self.to_user.extended_data_bytes(1, text.as_bytes().to_vec()).await;
    }

    /// Ends a channel that never reached a target.
    pub(crate) async fn finish_early(&self, link: &Link, status: u32) {
        let _ = self.ctx.handle.exit_status_request(self.ctx.id, status).await;
        let _ = self.to_user.eof().await;
        let _ = self.to_user.close().await;
        link.close();
    }
}

/// The recording's 5W metadata for this channel.
pub(crate) fn meta(ctx: &Ctx, route: &Route, start: &Start, req: &Requests) -> gatehouse_recorder::SessionMeta {
    let (channel, command) = match start {
        Start::Shell => ("shell".to_string(), None),
        Start::Exec(c) => ("exec".to_string(), Some(String::from_utf8_lossy(c).into_owned())),
        Start::Subsystem(s) if s == "sftp" => ("sftp".to_string(), None),
        Start::Subsystem(s) => (format!("subsystem:{s}"), None),
    };
    gatehouse_recorder::SessionMeta {
        channel: Some(channel),
        command,
        term: req.pty.as_ref().map(|p| p.term.clone()),
        cols: req.pty.as_ref().map(|p| p.cols as u16),
        rows: req.pty.as_ref().map(|p| p.rows as u16),
        ..route_meta(&ctx.who, route)
    }
}

/// The 5W fields every recording of `who` on `route` carries: who, from where, to what
/// account on which target, how they logged in.
pub(crate) fn route_meta(who: &UserIdentity, route: &Route) -> gatehouse_recorder::SessionMeta {
    gatehouse_recorder::SessionMeta {
        user: Some(who.login.user.clone()),
        account: Some(route.account.clone()),
        target: Some(route.target.name.clone()),
        target_addr: Some(format!("{}:{}", route.target.host, route.target.port)),
        source_addr: who.peer.map(|p| p.ip().to_string()),
        source_port: who.peer.map(|p| p.port()),
        client: Some(who.client.clone()).filter(|c| !c.is_empty()),
        protocol: Some("ssh".into()),
        auth_method: Some(who.auth_method.clone()),
        mfa: who.mfa.clone(),
        ..Default::default()
    }
}

/// Why replaying the requests on the target did not start the session.
pub(crate) enum NotStarted {
    /// The target said no to the start request.
    Refused,
    /// The target closed the channel or connection first.
    Closed,
    /// No answer within the timeout.
    Silent(Duration),
}

/// The start request in words (`the subsystem sftp request`).
pub(crate) fn start_words(start: &Start) -> String {
    match start {
        Start::Shell => "shell".into(),
        Start::Exec(_) => "command".into(),
        Start::Subsystem(s) => format!("subsystem {s}"),
    }
}

/// Sends the user's env, pty, forwarding and start requests to the target and waits for
/// its answers (in order; a target answers requests in the order it got them). `Ok`
/// carries lines for the user about forwarding the target itself refused. Anything else
/// the target sends meanwhile goes to `held`, for the down pump.
pub(crate) async fn replay_on_target(
    tc: &TargetConn,
    start: &Start,
    req: &Requests,
    fwd: &Forwarding,
    link: &Link,
    timeout: Duration,
    held: &mut VecDeque<TargetMsg>,
) -> Result<Vec<String>, NotStarted> {
    for (k, v) in &req.env {
        let _ = tc.channel.set_env(false, k.clone(), v.clone()).await;
    }
    if let Some(p) = &req.pty {
        let _ = tc.channel.request_pty(false, &p.term, p.cols, p.rows, p.pix_w, p.pix_h, &p.modes).await;
    }
    let mut expect: Vec<&str> = Vec::new();
    if let Some(x) = &fwd.x11 {
        let _ = tc.channel.request_x11(true, x.single, x.proto.clone(), x.cookie.clone(), x.screen).await;
        expect.push("X11 forwarding");
    }
    if fwd.agent {
        let _ = tc.channel.agent_forward(true).await;
        expect.push("agent forwarding");
    }
    let sent = match start {
        Start::Shell => tc.channel.request_shell(true).await,
        Start::Exec(cmd) => tc.channel.exec(true, cmd.clone()).await,
        Start::Subsystem(name) => tc.channel.request_subsystem(true, name.clone()).await,
    };
    if sent.is_err() {
        return Err(NotStarted::Closed);
    }
    let mut notes = Vec::new();
    let wait = async {
        for what in expect {
            match next_reply(link, held).await {
                Some(true) => {}
                Some(false) => notes.push(format!("gatehouse: the target refused {what}\r\n")),
                None => return Err(NotStarted::Closed),
            }
        }
        match next_reply(link, held).await {
            Some(true) => Ok(()),
            Some(false) => Err(NotStarted::Refused),
            None => Err(NotStarted::Closed),
        }
    };
    let answered = tokio::time::timeout(timeout, wait).await;
    match answered {
        Ok(Ok(())) => Ok(notes),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(NotStarted::Silent(timeout)),
    }
}

/// The target's next request answer; `None` when the channel closed first.
async fn next_reply(link: &Link, held: &mut VecDeque<TargetMsg>) -> Option<bool> {
    loop {
        match link.down.pop().await {
            TargetMsg::Reply(ok) => return Some(ok),
            TargetMsg::Close => return None,
            // OpenSSH answers first, but nothing a target says may be lost.
            other => held.push_back(other),
        }
    }
}
