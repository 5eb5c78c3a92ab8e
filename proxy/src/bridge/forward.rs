//! A port-forwarding tunnel (`-L`, `-W`, `-J` to a target that allows it): the target's
//! sshd makes the TCP connection, gatehouse bridges it with the same pumps as a session,
//! and the recording holds only the audit: `tunnel.open` (who, from where, to where) and
//! `tunnel.close` (bytes each way, duration). The tunnel's own bytes are not stored.

use std::sync::Arc;
use std::time::Instant;

use russh::ChannelWriteHalf;
use russh::server::Msg;
use serde_json::json;

use super::{Ctx, Link, Rec, pump};
use crate::control::Route;
use crate::target;

/// Where the tunnel goes and comes from.
pub(crate) struct Tunnel {
    pub(crate) host: String,
    pub(crate) port: u32,
    pub(crate) from_addr: String,
    pub(crate) from_port: u32,
}

/// Runs one tunnel to its end.
pub(crate) async fn run(ctx: Ctx, link: Arc<Link>, to_user: ChannelWriteHalf<Msg>, route: Route, t: Tunnel) {
    let to = format!("{}:{}", t.host, t.port);
    let who = &ctx.who;
    let meta = gatehouse_recorder::SessionMeta {
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
        channel: Some("direct-tcpip".into()),
        command: Some(to.clone()),
        ..Default::default()
    };
    let rec = match ctx.proxy.recorder().start(meta).await {
        Ok(w) => Rec::new(w, false),
        Err(e) => {
            tracing::error!(user = %who.login.user, %to, "tunnel refused, recording unavailable: {e}");
            link.up.close();
            let _ = to_user.close().await;
            return;
        }
    };
    rec.event("tunnel.open", json!({ "to": to, "from": format!("{}:{}", t.from_addr, t.from_port) }));
    let started = Instant::now();
    let open = target::Open::DirectTcpip { host: t.host, port: t.port, from_addr: t.from_addr, from_port: t.from_port };
    let cfg = ctx.proxy.client_config();
    let timeout = ctx.proxy.config().connect_timeout;
    let tc = match target::connect(ctx.proxy.gate(), cfg, &route, link.clone(), timeout, &open).await {
        Ok(tc) => tc,
        Err(e) => {
            rec.event("tunnel.error", json!({ "to": to, "detail": e.to_string() }));
            link.up.close();
            link.down.close();
            let _ = to_user.close().await;
            rec.finish(format!("tunnel-failed: {e}"), None).await;
            return;
        }
    };
    let end = pump::run(&ctx, &link, &to_user, &tc, &rec, false).await;
    link.up.close();
    link.down.close();
    tc.disconnect().await;
    let (bytes_in, bytes_out) = rec.bytes();
    rec.event(
        "tunnel.close",
        json!({ "to": to, "bytes_in": bytes_in, "bytes_out": bytes_out, "duration_ms": started.elapsed().as_millis() as u64 }),
    );
    tracing::info!(user = %who.login.user, %to, bytes_in, bytes_out, "tunnel closed");
    let (reason, _) = end.reason();
    rec.finish(reason, None).await;
}
