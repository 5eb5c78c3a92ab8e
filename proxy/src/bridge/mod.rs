//! One bridged session channel: the per-channel task that the server handler spawns.
//!
//! Phases: collect the user's `pty-req`/`env`/forwarding requests until
//! `shell`/`exec`/`subsystem`; pick the target (from the login, or the menu); resolve the
//! route and decide the forwarding; start the recording (refusing the session if that is
//! impossible under `fail-closed`); connect to the target and replay the requests there,
//! holding what the user sends meanwhile and giving up at once if the user leaves; then
//! pump both directions (`pump.rs`) until both sides closed.

mod msg;
mod idle;
mod pump;
mod record;
mod setup;
mod sftp;
mod tunnel;

use std::collections::VecDeque;
use std::sync::Arc;

use russh::server::{Handle, Msg};
use russh::{ChannelId, ChannelWriteHalf};
use serde_json::json;

pub(crate) use msg::{PtyReq, Start, TargetMsg, UserMsg, X11Req};
pub(crate) use record::Rec;
pub(crate) use idle::Idle;
pub(crate) use tunnel::{Tunnel, run_direct, run_reverse};

use crate::config::ProxyConfig;
use crate::control::Route;
use crate::pipe::Pipe;
use crate::registry::LiveEntry;
use crate::target::{self, Reverse, TargetConn};
use crate::{Proxy, UserIdentity, menu};
use pump::Held;
use setup::{Early, Forwarding, NotStarted, Requests, UserOut};

/// The two pipes of a bridge: `up` carries what the user's channel said, `down` what the
/// target's channel said.
pub(crate) struct Link {
    pub(crate) up: Pipe<UserMsg>,
    pub(crate) down: Pipe<TargetMsg>,
}

impl Link {
    pub(crate) fn new(config: &ProxyConfig) -> Link {
        Link {
            up: Pipe::new(config.pipe_soft_bytes, config.pipe_hard_bytes),
            down: Pipe::new(config.pipe_soft_bytes, config.pipe_hard_bytes),
        }
    }

    pub(crate) fn close(&self) {
        self.up.close();
        self.down.close();
    }
}

/// What the bridge task knows about its channel.
pub(crate) struct Ctx {
    pub(crate) proxy: Proxy,
    pub(crate) who: UserIdentity,
    pub(crate) id: ChannelId,
    pub(crate) handle: Handle,
}

/// Runs one session channel to its end.
pub(crate) async fn run(ctx: Ctx, link: Arc<Link>, to_user: ChannelWriteHalf<Msg>) {
    let out = UserOut { ctx: &ctx, to_user: &to_user };
    let Some((start, req)) = setup::collect(&link).await else {
        link.close();
        let _ = to_user.close().await;
        return;
    };
    let mut early = Early::default();
    let target_name = match (&ctx.who.login.target, &start) {
        (Some(t), _) => t.clone(),
        (None, Start::Shell) if req.pty.is_some() => {
            let _ = ctx.handle.channel_success(ctx.id).await;
            match menu::choose(&ctx, &link, &to_user).await {
                Some((t, typed_ahead)) => {
                    if !typed_ahead.is_empty() {
                        early.held.push_back(UserMsg::Data(typed_ahead));
                    }
                    t
                }
                None => return out.finish_early(&link, 0).await,
            }
        }
        (None, _) => {
            let msg = "gatehouse: no target given. Connect as user@target or user:account@target \
                       (or open the menu: ssh -t user@gatehouse)";
            return out.refuse(&link, msg, true).await;
        }
    };
    let replied = ctx.who.login.target.is_none();
    let account = ctx.who.login.account.as_deref();
    let route = match ctx.proxy.gate().resolve(&ctx.who.login.user, &target_name, account).await {
        Ok(r) => r,
        Err(why) => return out.refuse(&link, &format!("gatehouse: {why}"), !replied).await,
    };
    let fwd = setup::forwarding(&ctx, &route, &req, &out).await;

    let meta = setup::meta(&ctx, &route, &start, &req);
    let writer = match ctx.proxy.recorder().start(meta.clone()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(user = %ctx.who.login.user, target = %target_name, "recording unavailable: {e}");
            let msg = format!(
                "gatehouse: session refused: it cannot be recorded right now and the recording \
                 policy is fail-closed ({e})"
            );
            return out.refuse(&link, &msg, !replied).await;
        }
    };
    let rec = Rec::new(writer, true);
    if let Some(p) = &req.pty {
        rec.write(gatehouse_recorder::FrameData::Resize { cols: p.cols as u16, rows: p.rows as u16 });
    }
    if let Start::Exec(cmd) = &start {
        rec.event("exec", json!({ "command": String::from_utf8_lossy(cmd) }));
    }
    rec.event("session.start", json!({ "target": route.target.name, "account": route.account }));
    if rec.failed() {
        // The recorder took the session but cannot write it: nothing may run unrecorded.
        let msg = "gatehouse: session refused: it cannot be recorded right now and the recording \
                   policy is fail-closed";
        out.refuse(&link, msg, !replied).await;
        rec.finish("recording-failed".into(), None).await;
        return;
    }

    // Reaching the target takes a while (or forever, for a host that swallows packets):
    // a user who gives up meanwhile ends the session now, not at the timeout.
    let mut held_down = VecDeque::new();
    let soft = ctx.proxy.config().pipe_soft_bytes;
    let opened = tokio::select! {
        r = open_target(&ctx, &route, &link, &start, &req, &fwd, &mut held_down) => r,
        () = early.until_gone(&link, soft) => {
            tracing::info!(user = %ctx.who.login.user, target = %target_name, "user left while the target was being reached");
            rec.event("target.abandoned", json!({ "reason": "client-disconnect" }));
            link.close();
            rec.finish("client-disconnect".into(), None).await;
            return;
        }
    };
    let tc = match opened {
        Ok((tc, notes)) => {
            for note in notes {
                out.stderr(&note).await;
            }
            tc
        }
        Err((reason, msg, tc)) => {
            rec.event("target.error", json!({ "reason": reason, "detail": msg }));
            out.refuse(&link, &format!("gatehouse: {msg}"), !replied).await;
            rec.finish(if reason == "target-refused" { reason.into() } else { format!("{reason}: {msg}") }, None).await;
            if let Some(tc) = tc {
                tc.disconnect().await;
            }
            return;
        }
    };
    if !replied {
        let _ = ctx.handle.channel_success(ctx.id).await;
    }

    let rec = Arc::new(rec);
    let live_id = ctx.proxy.registry().insert(LiveEntry::new(meta, link.clone(), rec.clone()));
    let sftp = matches!(&start, Start::Subsystem(s) if s == "sftp");
    let held = Held { up: std::mem::take(&mut early.held), down: held_down };
    // Only a person's shell is left unattended: programs drive exec sessions, even with a
    // terminal (`ssh -tt` from Ansible, say, through a silent 20-minute upgrade).
    let person = matches!(start, Start::Shell) && req.pty.is_some();
    let idle = ctx.proxy.config().idle_timeout.filter(|_| person);
    let end = pump::run(&ctx, &link, &to_user, &tc.channel, &rec, pump::Watch { sftp, idle }, held).await;
    ctx.proxy.registry().remove(live_id);
    link.close();
    tc.disconnect().await;
    let (reason, exit) = end.reason();
    let (bin, bout) = rec.bytes();
    tracing::info!(user = %ctx.who.login.user, target = %target_name, %reason, bytes_in = bin, bytes_out = bout, "session ended");
    rec.finish(reason, exit).await;
}

/// Why a session never started on its target: (end reason, words for the user, the
/// connection if there is one to close).
type OpenError = (&'static str, String, Option<TargetConn>);

/// Connects to the route's target and starts the session there.
async fn open_target(
    ctx: &Ctx,
    route: &Route,
    link: &Arc<Link>,
    start: &Start,
    req: &Requests,
    fwd: &Forwarding,
    held_down: &mut VecDeque<crate::bridge::TargetMsg>,
) -> Result<(TargetConn, Vec<String>), OpenError> {
    let cfg = ctx.proxy.client_config();
    let timeout = ctx.proxy.config().connect_timeout;
    // Channels the target may open back (agent, X11) are accepted only when relayed.
    let reverse = Reverse::new(ctx, route.clone(), fwd.agent, fwd.x11.is_some(), false);
    let open = target::Open::Session { reverse };
    let tc = match target::connect(ctx.proxy.gate(), cfg, route, Some(link.clone()), timeout, &open).await {
        Ok(tc) => tc,
        Err(e) => {
            let reason = match &e {
                target::ConnectError::HostKeyMismatch(_) => "host-key-mismatch",
                target::ConnectError::AuthFailed => "target-auth-failed",
                target::ConnectError::Unreachable(_) => "target-unreachable",
            };
            return Err((reason, e.to_string(), None));
        }
    };
    match setup::replay_on_target(&tc, start, req, fwd, link, timeout, held_down).await {
        Ok(notes) => Ok((tc, notes)),
        Err(NotStarted::Refused) => {
            Err(("target-refused", format!("the target refused the {} request", setup::start_words(start)), Some(tc)))
        }
        Err(NotStarted::Closed) => Err((
            "target-closed",
            format!("the target closed the session while starting the {}", setup::start_words(start)),
            Some(tc),
        )),
        Err(NotStarted::Silent(t)) => Err((
            "target-timeout",
            format!("the target did not answer the {} request within {} s", setup::start_words(start), t.as_secs()),
            Some(tc),
        )),
    }
}
