//! One bridged session channel: the per-channel task that the server handler spawns.
//!
//! Phases: collect the user's `pty-req`/`env` until `shell`/`exec`/`subsystem`; pick the
//! target (from the login, or the menu); resolve the route; start the recording (refusing
//! the session if that is impossible under `fail-closed`); connect to the target; replay
//! the requests there; then pump both directions (`pump.rs`) until both sides closed.

mod forward;
mod msg;
mod pump;
mod record;
mod sftp;
mod setup;

use std::sync::Arc;

use russh::server::{Handle, Msg};
use russh::{ChannelId, ChannelWriteHalf};
use serde_json::json;

pub(crate) use msg::{PtyReq, Start, TargetMsg, UserMsg};
pub(crate) use forward::{Tunnel, run as run_forward};
pub(crate) use record::Rec;

use crate::config::ProxyConfig;
use crate::pipe::Pipe;
use crate::registry::LiveEntry;
use crate::{Proxy, UserIdentity, menu, target};

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

    fn close(&self) {
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
    let out = setup::UserOut { ctx: &ctx, to_user: &to_user };
    let Some((start, req)) = setup::collect(&ctx, &link, &out).await else {
        link.close();
        let _ = to_user.close().await;
        return;
    };
    let target_name = match (&ctx.who.login.target, &start) {
        (Some(t), _) => t.clone(),
        (None, Start::Shell) if req.pty.is_some() => {
            let _ = ctx.handle.channel_success(ctx.id).await;
            match menu::choose(&ctx, &link, &to_user).await {
                Some(t) => t,
                None => return out.finish_early(&link, 0, None).await,
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

    let cfg = ctx.proxy.client_config();
    let timeout = ctx.proxy.config().connect_timeout;
    let tc = match target::connect(ctx.proxy.gate(), cfg, &route, link.clone(), timeout, &target::Open::Session).await {
        Ok(tc) => tc,
        Err(e) => {
            let reason = match &e {
                target::ConnectError::HostKeyMismatch(_) => "host-key-mismatch",
                target::ConnectError::AuthFailed => "target-auth-failed",
                target::ConnectError::Unreachable(_) => "target-unreachable",
            };
            rec.event("target.error", json!({ "reason": reason, "detail": e.to_string() }));
            out.refuse(&link, &format!("gatehouse: {e}"), !replied).await;
            rec.finish(format!("{reason}: {e}"), None).await;
            return;
        }
    };

    let ok = setup::replay_on_target(&tc, &start, &req, &link).await;
    if !ok {
        let what = match &start {
            Start::Shell => "shell".to_string(),
            Start::Exec(_) => "command".to_string(),
            Start::Subsystem(s) => format!("subsystem {s}"),
        };
        out.refuse(&link, &format!("gatehouse: the target refused the {what} request"), !replied).await;
        rec.finish("target-refused".into(), None).await;
        tc.disconnect().await;
        return;
    }
    if !replied {
        let _ = ctx.handle.channel_success(ctx.id).await;
    }

    let rec = Arc::new(rec);
    let live_id = ctx.proxy.registry().insert(LiveEntry::new(meta, link.clone(), rec.clone()));
    let sftp = matches!(&start, Start::Subsystem(s) if s == "sftp");
    let end = pump::run(&ctx, &link, &to_user, &tc, &rec, sftp).await;
    ctx.proxy.registry().remove(live_id);
    link.close();
    tc.disconnect().await;
    let (reason, exit) = end.reason();
    let (bin, bout) = rec.bytes();
    tracing::info!(user = %ctx.who.login.user, target = %target_name, %reason, bytes_in = bin, bytes_out = bout, "session ended");
    rec.finish(reason, exit).await;
}
