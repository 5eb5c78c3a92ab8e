//! Tunnels: every forwarded connection a target's policy allows, each a recorded session
//! of its own whose recording holds only the audit, `tunnel.open` (who, from where, to
//! where) and `tunnel.close` (bytes each way, duration); the tunnel's bytes themselves are
//! not stored. They run on the same pumps as sessions.
//!
//! Two directions: the user opens it (`-L`, `-W`, `-J`: direct-tcpip, the target's sshd
//! makes the TCP connection), or the target opens it back towards the user (`-R`
//! connections, the user's agent, X11 clients), and the user's client makes the final hop.

use std::sync::Arc;
use std::time::Instant;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, client};
use serde_json::json;

use super::pump::{self, Held};
use super::{Ctx, Link, Rec, TargetMsg, UserMsg};
use crate::control::Route;
use crate::target::{self, Reverse};
use crate::{Proxy, UserIdentity};

/// What a tunnel connects.
pub(crate) struct Tunnel {
    /// The recording's channel kind: `direct-tcpip`, `forwarded-tcpip`, `auth-agent`, `x11`.
    pub(crate) kind: &'static str,
    /// Where the bytes go, in words (`host:port`, `the user's agent`).
    pub(crate) to: String,
    /// Where they come from.
    pub(crate) from: String,
    ends: Ends,
}

/// The addresses the channel open carries.
enum Ends {
    Direct { host: String, port: u32, from_addr: String, from_port: u32 },
    Forwarded { addr: String, port: u32, from_addr: String, from_port: u32 },
    Agent,
    X11 { from_addr: String, from_port: u32 },
}

impl Tunnel {
    /// `-L`/`-W`/`-J`: to `host:port` as the target's sshd resolves it.
    pub(crate) fn direct(host: &str, port: u32, from_addr: &str, from_port: u32) -> Tunnel {
        Tunnel {
            kind: "direct-tcpip",
            to: format!("{host}:{port}"),
            from: format!("{from_addr}:{from_port}"),
            ends: Ends::Direct { host: host.into(), port, from_addr: from_addr.into(), from_port },
        }
    }

    /// A connection to the target's `addr:port` listener of a `-R` forward, on to the user.
    pub(crate) fn forwarded(addr: &str, port: u32, from_addr: &str, from_port: u32) -> Tunnel {
        Tunnel {
            kind: "forwarded-tcpip",
            to: format!("the user's -R forward of {addr}:{port}"),
            from: format!("{from_addr}:{from_port} on the target"),
            ends: Ends::Forwarded { addr: addr.into(), port, from_addr: from_addr.into(), from_port },
        }
    }

    /// A program on the target using the user's forwarded agent.
    pub(crate) fn agent() -> Tunnel {
        Tunnel { kind: "auth-agent", to: "the user's agent".into(), from: "the target".into(), ends: Ends::Agent }
    }

    /// An X11 client on the target drawing on the user's display.
    pub(crate) fn x11(from_addr: &str, from_port: u32) -> Tunnel {
        Tunnel {
            kind: "x11",
            to: "the user's X display".into(),
            from: format!("{from_addr}:{from_port} on the target"),
            ends: Ends::X11 { from_addr: from_addr.into(), from_port },
        }
    }
}

/// Starts the tunnel's recording; `None` (the tunnel is refused) when the recorder cannot
/// take it: under fail-closed nothing passes unaudited.
async fn start_recording(proxy: &Proxy, who: &UserIdentity, route: &Route, t: &Tunnel) -> Option<Rec> {
    let meta = gatehouse_recorder::SessionMeta {
        channel: Some(t.kind.into()),
        command: Some(t.to.clone()),
        ..super::setup::route_meta(who, route)
    };
    match proxy.recorder().start(meta).await {
        Ok(w) => {
            let rec = Rec::new(w, false);
            rec.event("tunnel.open", json!({ "kind": t.kind, "to": t.to, "from": t.from }));
            Some(rec)
        }
        Err(e) => {
            tracing::error!(user = %who.login.user, to = %t.to, "{} refused, recording unavailable: {e}", t.kind);
            None
        }
    }
}

/// Pumps a tunnel to its end and closes its recording with the audit figures.
async fn pump_and_finish(
    ctx: &Ctx,
    link: &Link,
    to_user: &ChannelWriteHalf<Msg>,
    to_target: &ChannelWriteHalf<client::Msg>,
    rec: Rec,
    t: &Tunnel,
) {
    let started = Instant::now();
    let end = pump::run(ctx, link, to_user, to_target, &rec, pump::Watch::default(), Held::default()).await;
    link.close();
    let (bytes_in, bytes_out) = rec.bytes();
    let duration_ms = started.elapsed().as_millis() as u64;
    rec.event("tunnel.close", json!({ "kind": t.kind, "to": t.to, "bytes_in": bytes_in, "bytes_out": bytes_out, "duration_ms": duration_ms }));
    tracing::info!(user = %ctx.who.login.user, kind = t.kind, to = %t.to, bytes_in, bytes_out, "tunnel closed");
    let (reason, _) = end.reason();
    rec.finish(reason, None).await;
}

/// Runs a user-opened tunnel (its channel already accepted) to its end.
pub(crate) async fn run_direct(ctx: Ctx, link: Arc<Link>, to_user: ChannelWriteHalf<Msg>, route: Route, t: Tunnel) {
    let Some(rec) = start_recording(&ctx.proxy, &ctx.who, &route, &t).await else {
        link.close();
        let _ = to_user.close().await;
        return;
    };
    let Ends::Direct { host, port, from_addr, from_port } = &t.ends else { unreachable!("run_direct takes direct tunnels") };
    let open = target::Open::DirectTcpip { host: host.clone(), port: *port, from_addr: from_addr.clone(), from_port: *from_port };
    let cfg = ctx.proxy.client_config();
    let timeout = ctx.proxy.config().connect_timeout;
    let tc = match target::connect(ctx.proxy.gate(), cfg, &route, Some(link.clone()), timeout, &open).await {
        Ok(tc) => tc,
        Err(e) => {
            rec.event("tunnel.error", json!({ "to": t.to, "detail": e.to_string() }));
            link.close();
            let _ = to_user.close().await;
            rec.finish(format!("tunnel-failed: {e}"), None).await;
            return;
        }
    };
    pump_and_finish(&ctx, &link, &to_user, &tc.channel, rec, &t).await;
    tc.disconnect().await;
}

/// Opens the user's side of a target-opened tunnel.
async fn open_to_user(user: &russh::server::Handle, t: &Tunnel) -> Result<Channel<Msg>, russh::Error> {
    match &t.ends {
        Ends::Forwarded { addr, port, from_addr, from_port } => {
            user.channel_open_forwarded_tcpip(addr.clone(), *port, from_addr.clone(), *from_port).await
        }
        Ends::Agent => user.channel_open_agent().await,
        Ends::X11 { from_addr, from_port } => user.channel_open_x11(from_addr.clone(), *from_port).await,
        Ends::Direct { .. } => Err(russh::Error::WrongChannel),
    }
}

/// Runs a tunnel the target opened (`-R` connection, agent, X11): opens the user's side,
/// then accepts the target's, then pumps. Refused on the target's side if the user's
/// client refuses or the tunnel cannot be recorded.
pub(crate) async fn run_reverse(rev: Arc<Reverse>, from_target: Channel<client::Msg>, reply: client::ChannelOpenHandle, t: Tunnel) {
    let Some(rec) = start_recording(&rev.proxy, &rev.who, &rev.route, &t).await else {
        reply.reject(russh::ChannelOpenFailure::ResourceShortage).await;
        return;
    };
    let timeout = rev.proxy.config().connect_timeout;
    let to_user = match tokio::time::timeout(timeout, open_to_user(&rev.user, &t)).await {
        Ok(Ok(c)) => c,
        failed => {
            let detail = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {timeout:?}"),
            };
            rec.event("tunnel.error", json!({ "to": t.to, "detail": format!("the user's client refused: {detail}") }));
            reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            rec.finish(format!("tunnel-failed: the user's client refused: {detail}"), None).await;
            return;
        }
    };
    reply.accept().await;
    let link = Arc::new(Link::new(rev.proxy.config()));
    let ctx = Ctx { proxy: rev.proxy.clone(), who: rev.who.clone(), id: to_user.id(), handle: rev.user.clone() };
    let (user_read, user_write) = to_user.split();
    let (target_read, target_write) = from_target.split();
    let feeders = (
        tokio::spawn(feed_up(user_read, link.clone())),
        tokio::spawn(feed_down(target_read, link.clone())),
    );
    pump_and_finish(&ctx, &link, &user_write, &target_write, rec, &t).await;
    feeders.0.abort();
    feeders.1.abort();
}

/// Carries a user-side channel's queue into the bridge (for channels the server handler
/// does not route: the ones gatehouse opened towards the user).
async fn feed_up(mut read: ChannelReadHalf, link: Arc<Link>) {
    while let Some(m) = read.wait().await {
        let msg = match m {
            ChannelMsg::Data { data } => UserMsg::Data(data),
            ChannelMsg::Eof => UserMsg::Eof,
            ChannelMsg::Close => break,
            _ => continue,
        };
        if !link.up.push(msg, &link.down.writer).await {
            return;
        }
    }
    link.up.force_push(UserMsg::Close);
}

/// The same for a target-side channel the target opened.
async fn feed_down(mut read: ChannelReadHalf, link: Arc<Link>) {
    while let Some(m) = read.wait().await {
        let msg = match m {
            ChannelMsg::Data { data } => TargetMsg::Data(data),
            ChannelMsg::ExtendedData { data, ext } => TargetMsg::Ext(ext, data),
            ChannelMsg::Eof => TargetMsg::Eof,
            ChannelMsg::Close => break,
            _ => continue,
        };
        if !link.down.push(msg, &link.up.writer).await {
            return;
        }
    }
    link.down.force_push(TargetMsg::Close);
}
