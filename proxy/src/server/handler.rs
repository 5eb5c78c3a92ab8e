//! The russh server `Handler` for one user connection. It stays thin: authentication goes
//! to the control plane; every channel callback becomes a [`UserMsg`] pushed into that
//! channel's bridge pipe (bounded; see `pipe.rs` for when the push waits), and the
//! per-channel bridge task does the work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty, Sig};

use super::remote::RemoteForwards;
use crate::bridge::{self, Link, PtyReq, Start, UserMsg, X11Req};
use crate::control::Route;
use crate::gate::{AuthOutcome, Gate};
use crate::login::Login;
use crate::{Proxy, UserIdentity};

/// At most this many channels per connection (OpenSSH's default `MaxSessions` is 10).
const MAX_CHANNELS: usize = 10;
/// At most this many refused `-R` requests are told on the next session channel.
const MAX_NOTES: usize = 8;

/// One user connection.
pub(crate) struct Conn {
    proxy: Proxy,
    peer: Option<SocketAddr>,
    client: String,
    login: Option<Login>,
    method: Option<&'static str>,
    /// First factor passed; a TOTP code is still due (keyboard-interactive).
    totp_due: bool,
    mfa: Option<&'static str>,
    authenticated: bool,
    channels: HashMap<ChannelId, Arc<Link>>,
    /// The route to the login's target, resolved once, for forwarding decisions.
    route: Option<Result<Route, String>>,
    /// The `-R` link to the target, opened on the first allowed `-R`.
    remote: Option<RemoteForwards>,
    /// Refused `-R` requests not yet told to the user: a global request's failure carries
    /// no words, so the next session channel shows them on its stderr.
    notes: Vec<String>,
}

impl Conn {
    pub(crate) fn new(proxy: Proxy, peer: Option<SocketAddr>) -> Conn {
        Conn {
            proxy,
            peer,
            client: String::new(),
            login: None,
            method: None,
            totp_due: false,
            mfa: None,
            authenticated: false,
            channels: HashMap::new(),
            route: None,
            remote: None,
            notes: Vec::new(),
        }
    }

    fn user(&self) -> String {
        self.login.as_ref().map(|l| l.user.clone()).unwrap_or_default()
    }

    fn target(&self) -> Option<String> {
        self.login.as_ref().and_then(|l| l.target.clone())
    }

    /// The route to the login's target (resolved on first use); `None` without a target
    /// (the menu) or when access is refused.
    async fn route(&mut self) -> Option<Route> {
        if !self.authenticated {
            return None;
        }
        if self.route.is_none() {
            let Login { user, account, target: Some(target) } = self.login.clone()? else { return None };
            self.route = Some(self.gate().resolve(&user, &target, account.as_deref()).await);
        }
        self.route.as_ref().and_then(|r| r.as_ref().ok()).cloned()
    }

    /// Whether the connection's target allows a forwarding kind, as far as the handler can
    /// tell: a login without a target (the menu) defers to the bridge, which decides once
    /// the target is chosen.
    async fn session_forwarding_allowed(&mut self, allowed: impl Fn(&Route) -> bool) -> bool {
        if self.target().is_none() {
            return true;
        }
        self.route().await.is_some_and(|r| allowed(&r))
    }

    /// Why a forwarding request is refused, in words for the user (after `route()`).
    fn forward_refusal(&self, what: &str) -> String {
        match (self.target(), &self.route) {
            (None, _) => format!("{what} needs a target: log in as user@target"),
            (Some(_), Some(Err(why))) => why.clone(),
            (Some(t), _) => format!("{what} through {t} is refused by gatehouse policy"),
        }
    }

    /// Records a refused `-R` and keeps words about it for the user.
    fn refuse_remote(&mut self, detail: &str) {
        self.refuse_forward("port forwarding", detail);
        // A few lines say it; a client asking for hundreds is not owed hundreds.
        if self.notes.len() < MAX_NOTES {
            self.notes.push(format!("gatehouse: refused: {detail}"));
        }
    }

    /// Records and logs a refused forwarding request.
    fn refuse_forward(&self, what: &str, detail: &str) {
        let (user, target) = (self.user(), self.target());
        tracing::info!(%user, ?target, "{what} refused: {detail}");
        self.gate().audit_forward(&user, self.peer, target.as_deref(), what, false, detail);
    }

    fn gate(&self) -> &Gate {
        self.proxy.gate()
    }

    fn source_ip(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Parses the login name once per attempt; a different name resets the TOTP step.
    fn login_for(&mut self, user: &str) -> Option<Login> {
        match Login::parse(user) {
            Ok(l) => {
                if self.login.as_ref().is_some_and(|old| old.user != l.user) {
                    self.totp_due = false;
                }
                self.login = Some(l.clone());
                Some(l)
            }
            Err(e) => {
                tracing::info!(peer = ?self.peer, "bad login name: {e}");
                None
            }
        }
    }

    fn outcome(&mut self, outcome: AuthOutcome, method: &'static str) -> Auth {
        match outcome {
            AuthOutcome::Accept => {
                self.method = Some(method);
                self.authenticated = true;
                Auth::Accept
            }
            AuthOutcome::NeedTotp => {
                self.method = Some(method);
                self.totp_due = true;
                Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
                    partial_success: true,
                }
            }
            AuthOutcome::Reject => Auth::reject(),
        }
    }

    async fn push(&mut self, id: ChannelId, msg: UserMsg) {
        if let Some(link) = self.channels.get(&id) {
            link.up.push(msg, &link.down.writer).await;
        }
    }

    fn identity(&self) -> UserIdentity {
        let login = self.login.clone().expect("authenticated connections have a login");
        UserIdentity {
            login,
            auth_method: self.method.unwrap_or("none").to_string(),
            mfa: self.mfa.map(str::to_string),
            peer: self.peer,
            client: self.client.clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The connection is gone: every bridge must end even if the client said nothing.
        for link in self.channels.values() {
            link.up.force_push(UserMsg::Close);
        }
        if let Some(remote) = self.remote.take() {
            remote.close();
        }
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        // OpenSSH prints the banner as it is: without a last newline, the password prompt
        // would run on from its end.
        Ok(self.proxy.config().banner.as_ref().map(|b| if b.ends_with('\n') { b.clone() } else { format!("{b}\n") }))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let Some(login) = self.login_for(user) else { return Ok(Auth::reject()) };
        let outcome = self.gate().auth_password(&login.user, password, self.source_ip()).await;
        Ok(self.outcome(outcome, "password"))
    }

    /// A key the client offers before signing with it: a lookup only, so the keys an agent
    /// tries in turn leave no audit event and never count towards lockout; the key that
    /// signs is audited in `auth_publickey`.
    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        let Some(login) = self.login_for(user) else { return Ok(Auth::reject()) };
        Ok(if self.gate().publickey_acceptable(&login.user, offer.public_key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        let Some(login) = self.login_for(user) else { return Ok(Auth::reject()) };
        let outcome = self.gate().auth_publickey(&login.user, key.public_key, self.source_ip()).await;
        Ok(self.outcome(outcome, "publickey"))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let same_user = Login::parse(user).ok().map(|l| l.user) == self.login.as_ref().map(|l| l.user.clone());
        if !self.totp_due || !same_user {
            return Ok(Auth::reject());
        }
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: "gatehouse".into(),
                instructions: "Second factor required.".into(),
                prompts: vec![("Verification code: ".into(), false)].into(),
            });
        };
        let code = response.next().map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
        let user = self.login.as_ref().map(|l| l.user.clone()).unwrap_or_default();
        if self.gate().auth_totp(&user, &code, self.source_ip()).await {
            self.mfa = Some("totp");
            self.authenticated = true;
            self.totp_due = false;
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        self.client = String::from_utf8_lossy(session.remote_sshid()).trim().to_string();
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !self.authenticated || self.channels.len() >= MAX_CHANNELS {
            return Ok(()); // dropping `reply` rejects the channel
        }
        let id = channel.id();
        // Incoming messages reach us through the callbacks below; russh's own per-channel
        // queue is dropped so it can never block its loop (see pipe.rs).
        let (_read, write) = channel.split();
        let link = Arc::new(Link::new(self.proxy.config()));
        self.channels.insert(id, link.clone());
        for note in std::mem::take(&mut self.notes) {
            link.up.force_push(UserMsg::Note(note));
        }
        let ctx = bridge::Ctx { proxy: self.proxy.clone(), who: self.identity(), id, handle: session.handle() };
        tokio::spawn(bridge::run(ctx, link, write));
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let what = format!("direct-tcpip to {host}:{port}");
        let Some(route) = self.route().await.filter(|r| r.allow.port_forward) else {
            let detail = self.forward_refusal("port forwarding");
            self.refuse_forward("port forwarding", &format!("{what}: {detail}"));
            // Code 1 (administratively prohibited) with words OpenSSH prints after it.
            reply.reject(russh::ChannelOpenFailure::Other { code: 1, reason: format!("gatehouse: {detail}") }).await;
            return Ok(());
        };
        let id = channel.id();
        let (_read, write) = channel.split();
        let link = Arc::new(Link::new(self.proxy.config()));
        self.channels.insert(id, link.clone());
        let ctx = bridge::Ctx { proxy: self.proxy.clone(), who: self.identity(), id, handle: session.handle() };
        let tunnel = bridge::Tunnel::direct(host, port, originator_address, originator_port);
        tokio::spawn(bridge::run_direct(ctx, link, write, route, tunnel));
        reply.accept().await;
        Ok(())
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, session: &mut Session) -> Result<bool, Self::Error> {
        let what = format!("remote forwarding (-R) of {address}:{port}");
        let Some(route) = self.route().await.filter(|r| r.allow.port_forward) else {
            let detail = self.forward_refusal("port forwarding");
            self.refuse_remote(&format!("{what}: {detail}"));
            return Ok(false);
        };
        if self.remote.is_none() {
            match RemoteForwards::open(&self.proxy, self.identity(), route.clone(), session.handle()).await {
                Ok(r) => self.remote = Some(r),
                Err(e) => {
                    self.refuse_remote(&format!("{what}: {e}"));
                    return Ok(false);
                }
            }
        }
        let remote = self.remote.as_ref().expect("opened above");
        match remote.listen(address, *port).await {
            Ok(p) => {
                let detail = format!("{} listens on {address}:{p} for {}", route.target.name, self.user());
                self.gate().audit_forward(&self.user(), self.peer, Some(&route.target.name), "port forwarding", true, &detail);
                if *port == 0 {
                    *port = p;
                }
                Ok(true)
            }
            Err(e) => {
                self.refuse_remote(&format!("{what}: {e}"));
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _session: &mut Session) -> Result<bool, Self::Error> {
        match &self.remote {
            Some(remote) => Ok(remote.cancel(address, port).await),
            None => Ok(false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        pix_w: u32,
        pix_h: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let req = PtyReq { term: term.into(), cols, rows, pix_w, pix_h, modes: modes.to_vec() };
        self.push(channel, UserMsg::Pty(req)).await;
        // Answered here, not by the bridge: russh remembers only the latest request's
        // want-reply per channel, and clients send the next request without waiting.
        session.channel_success(channel)?;
        Ok(())
    }

    async fn env_request(&mut self, channel: ChannelId, name: &str, value: &str, session: &mut Session) -> Result<(), Self::Error> {
        if self.proxy.config().env_allowed(name) {
            self.push(channel, UserMsg::Env(name.into(), value.into())).await;
            session.channel_success(channel)?;
        } else {
            tracing::debug!(%name, "env variable not in the allow-list");
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Start(Start::Shell)).await;
        Ok(())
    }

    async fn exec_request(&mut self, channel: ChannelId, data: &[u8], _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Start(Start::Exec(data.to_vec()))).await;
        Ok(())
    }

    async fn subsystem_request(&mut self, channel: ChannelId, name: &str, _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Start(Start::Subsystem(name.into()))).await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        pix_w: u32,
        pix_h: u32,
        _s: &mut Session,
    ) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Resize { cols, rows, pix_w, pix_h }).await;
        Ok(())
    }

    async fn signal(&mut self, channel: ChannelId, signal: Sig, _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Signal(signal)).await;
        Ok(())
    }

    /// The bridge decides (and audits, and tells the user) once the route is known; the
    /// answer here is the same decision where the target is already known. (OpenSSH asks
    /// for no answer to this request.)
    async fn agent_request(&mut self, channel: ChannelId, _s: &mut Session) -> Result<bool, Self::Error> {
        self.push(channel, UserMsg::Agent).await;
        Ok(self.session_forwarding_allowed(|r| r.allow.agent).await)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        single: bool,
        proto: &str,
        cookie: &str,
        screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let req = X11Req { single, proto: proto.into(), cookie: cookie.into(), screen };
        self.push(channel, UserMsg::X11(req)).await;
        // Answered now (the next request overwrites russh's want-reply flag), with the
        // decision the bridge will make.
        if self.session_forwarding_allowed(|r| r.allow.x11).await {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Data(Bytes::copy_from_slice(data))).await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Eof).await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _s: &mut Session) -> Result<(), Self::Error> {
        self.push(channel, UserMsg::Close).await;
        self.channels.remove(&channel);
        Ok(())
    }
}
