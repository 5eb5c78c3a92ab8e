//! Before the pumps run: collecting the user's requests, telling the user why a session
//! is refused, building the recording's metadata, replaying the requests on the target.

use russh::ChannelWriteHalf;
use russh::server::Msg;

use super::msg::{PtyReq, Start, TargetMsg, UserMsg};
use super::{Ctx, Link};
use crate::control::Route;
use crate::target::TargetConn;

/// The requests a user made before starting the channel.
#[derive(Default)]
pub(crate) struct Requests {
    pub(crate) pty: Option<PtyReq>,
    pub(crate) env: Vec<(String, String)>,
}

/// Waits for `shell`/`exec`/`subsystem`, answering `pty-req` and `env` on the way.
/// `None` when the channel closed first.
pub(crate) async fn collect(ctx: &Ctx, link: &Link, _out: &UserOut<'_>) -> Option<(Start, Requests)> {
    let mut req = Requests::default();
    loop {
        match link.up.pop().await {
            UserMsg::Pty(p) => {
                req.pty = Some(p);
                let _ = ctx.handle.channel_success(ctx.id).await;
            }
            UserMsg::Env(name, value) => {
                let allowed = ctx.proxy.config().env_allowed(&name);
                if allowed {
                    req.env.push((name, value));
                    let _ = ctx.handle.channel_success(ctx.id).await;
                } else {
                    tracing::debug!(%name, "env variable not in the allow-list");
                    let _ = ctx.handle.channel_failure(ctx.id).await;
                }
            }
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

/// Writes to the user's channel outside the pumps.
pub(crate) struct UserOut<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) to_user: &'a ChannelWriteHalf<Msg>,
}

impl UserOut<'_> {
    /// Tells the user why there is no session (stderr, exit status 1) and closes the
    /// channel. `reply` answers the pending shell/exec/subsystem request first, so the
    /// client shows the message instead of a bare "request failed".
    pub(crate) async fn refuse(&self, link: &Link, message: &str, reply: bool) {
        tracing::info!(user = %self.ctx.who.login.user, "refused: {message}");
        if reply {
            let _ = self.ctx.handle.channel_success(self.ctx.id).await;
        }
        let text = format!("{message}\r\n");
        let _ = self.to_user.extended_data_bytes(1, text.into_bytes()).await;
        self.finish_early(link, 1, None).await;
    }

    /// Ends a channel that never reached a target.
    pub(crate) async fn finish_early(&self, link: &Link, status: u32, _why: Option<&str>) {
        let _ = self.ctx.handle.exit_status_request(self.ctx.id, status).await;
        let _ = self.to_user.eof().await;
        let _ = self.to_user.close().await;
        link.close();
    }
}

/// The recording's 5W metadata for this channel.
pub(crate) fn meta(ctx: &Ctx, route: &Route, start: &Start, req: &Requests) -> gatehouse_recorder::SessionMeta {
    let who = &ctx.who;
    let (channel, command) = match start {
        Start::Shell => ("shell".to_string(), None),
        Start::Exec(c) => ("exec".to_string(), Some(String::from_utf8_lossy(c).into_owned())),
        Start::Subsystem(s) if s == "sftp" => ("sftp".to_string(), None),
        Start::Subsystem(s) => (format!("subsystem:{s}"), None),
    };
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
        channel: Some(channel),
        command,
        term: req.pty.as_ref().map(|p| p.term.clone()),
        cols: req.pty.as_ref().map(|p| p.cols as u16),
        rows: req.pty.as_ref().map(|p| p.rows as u16),
        title: None,
    }
}

/// Sends the user's env, pty and start request to the target; true when the target
/// accepted the start request.
pub(crate) async fn replay_on_target(tc: &TargetConn, start: &Start, req: &Requests, link: &Link) -> bool {
    for (k, v) in &req.env {
        let _ = tc.channel.set_env(false, k.clone(), v.clone()).await;
    }
    if let Some(p) = &req.pty {
        let _ = tc.channel.request_pty(false, &p.term, p.cols, p.rows, p.pix_w, p.pix_h, &p.modes).await;
    }
    let sent = match start {
        Start::Shell => tc.channel.request_shell(true).await,
        Start::Exec(cmd) => tc.channel.exec(true, cmd.clone()).await,
        Start::Subsystem(name) => tc.channel.request_subsystem(true, name.clone()).await,
    };
    if sent.is_err() {
        return false;
    }
    loop {
        match link.down.pop().await {
            TargetMsg::Reply(ok) => return ok,
            TargetMsg::Close => return false,
            // Nothing else is expected before the reply; OpenSSH answers first.
            other => tracing::debug!(?other, "target message before the start reply"),
        }
    }
}
