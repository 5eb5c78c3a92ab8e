//! The SSH client side: connections to targets, authenticated with the route's credential
//! (which the user never sees), host keys checked against the control plane's pin. Like
//! the server handler, the client handler only turns callbacks into [`TargetMsg`]s on the
//! bridge's pipe, for the one channel the bridge opened; channels the target opens back
//! (agent, X11, remote-forwarded connections) are accepted only when the bridge relays
//! that kind, and each becomes a tunnel of its own (`bridge::run_reverse`).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, ChannelOpenHandle, Msg};
use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::ssh_key::PublicKey;
use russh::{Channel, ChannelId, ChannelWriteHalf, Sig};

use crate::bridge::{self, Ctx, Link, TargetMsg};
use crate::control::{Credential, Route};
use crate::gate::{Gate, HostKeyCheck};
use crate::{Proxy, UserIdentity};

/// Why the target could not be reached, in words for the user.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// TCP connect or SSH handshake failed.
    Unreachable(String),
    /// The host key does not match the pinned one. Loud on purpose.
    HostKeyMismatch(String),
    /// The target refused the route's credential.
    AuthFailed,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Unreachable(e) => write!(f, "target unreachable: {e}"),
            ConnectError::HostKeyMismatch(e) => write!(f, "TARGET HOST KEY CHANGED: {e}"),
            ConnectError::AuthFailed => f.write_str("the target refused gatehouse's credential for this account"),
        }
    }
}

/// A live connection to a target with one bridged channel.
pub(crate) struct TargetConn {
    handle: client::Handle<TargetHandler>,
    /// Writes into the target's channel (waits for the target's window).
    pub(crate) channel: ChannelWriteHalf<Msg>,
}

impl TargetConn {
    /// Ends the connection politely.
    pub(crate) async fn disconnect(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// What a target may open back towards the user, and what is needed to do so.
pub(crate) struct Reverse {
    pub(crate) proxy: Proxy,
    pub(crate) who: UserIdentity,
    pub(crate) route: Route,
    /// The user's connection, to open the matching channel on.
    pub(crate) user: russh::server::Handle,
    agent: bool,
    x11: bool,
    forwarded_tcpip: bool,
}

impl Reverse {
    /// For a session channel that relays agent and/or X11 forwarding; `None` if neither.
    pub(crate) fn new(ctx: &Ctx, route: Route, agent: bool, x11: bool, forwarded_tcpip: bool) -> Option<Arc<Reverse>> {
        Reverse::from_parts(ctx.proxy.clone(), ctx.who.clone(), route, ctx.handle.clone(), agent, x11, forwarded_tcpip)
    }

    /// The same from its parts (the connection-wide remote-forward link has no channel).
    pub(crate) fn from_parts(
        proxy: Proxy,
        who: UserIdentity,
        route: Route,
        user: russh::server::Handle,
        agent: bool,
        x11: bool,
        forwarded_tcpip: bool,
    ) -> Option<Arc<Reverse>> {
        (agent || x11 || forwarded_tcpip)
            .then(|| Arc::new(Reverse { proxy, who, route, user, agent, x11, forwarded_tcpip }))
    }
}

pub(crate) struct TargetHandler {
    gate: Gate,
    target: String,
    /// The bridge this connection's channel feeds (none for a remote-forward link).
    link: Option<Arc<Link>>,
    /// The bridged channel, once open: other channels' traffic is not the session's.
    main: Arc<OnceLock<ChannelId>>,
    reverse: Option<Arc<Reverse>>,
    /// Set by the host-key check, read when the handshake fails.
    mismatch: Arc<Mutex<Option<String>>>,
}

impl TargetHandler {
    async fn push(&self, channel: ChannelId, msg: TargetMsg) {
        let Some(link) = &self.link else { return };
        if self.main.get().is_some_and(|m| *m != channel) {
            return;
        }
        link.down.push(msg, &link.up.writer).await;
    }

    /// Accepts a channel the target opened if the bridge relays `kind`, as a tunnel.
    fn reverse(&self, allowed: impl Fn(&Reverse) -> bool, channel: Channel<Msg>, reply: ChannelOpenHandle, kind: bridge::Tunnel) {
        match self.reverse.as_ref().filter(|r| allowed(r)) {
            Some(r) => {
                tokio::spawn(bridge::run_reverse(r.clone(), channel, reply, kind));
            }
            None => {
                tracing::warn!(target = %self.target, to = %kind.to, "the target opened a {} channel that was not asked for; refused", kind.kind);
                drop(reply); // rejects
            }
        }
    }
}

impl Drop for TargetHandler {
    fn drop(&mut self) {
        // The connection ended: the bridge must see a close even if the target never sent one.
        if let Some(link) = &self.link {
            link.down.force_push(TargetMsg::Close);
        }
    }
}

impl client::Handler for TargetHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.mismatch.lock().expect("lock") = Some("the target presented a certificate; gatehouse pins plain host keys".into());
            return Ok(false);
        };
        let key: &PublicKey = key;
        match self.gate.check_host_key(&self.target, key).await {
            HostKeyCheck::Ok => Ok(true),
            HostKeyCheck::Mismatch(detail) => {
                tracing::error!(target = %self.target, "host key mismatch: {detail}");
                *self.mismatch.lock().expect("lock") = Some(detail);
                Ok(false)
            }
        }
    }

    async fn data(&mut self, c: ChannelId, data: &[u8], _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Data(Bytes::copy_from_slice(data))).await;
        Ok(())
    }

    async fn extended_data(&mut self, c: ChannelId, ext: u32, data: &[u8], _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Ext(ext, Bytes::copy_from_slice(data))).await;
        Ok(())
    }

    async fn channel_success(&mut self, c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Reply(true)).await;
        Ok(())
    }

    async fn channel_failure(&mut self, c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Reply(false)).await;
        Ok(())
    }

    async fn exit_status(&mut self, c: ChannelId, status: u32, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::ExitStatus(status)).await;
        Ok(())
    }

    async fn exit_signal(
        &mut self,
        c: ChannelId,
        signal: Sig,
        core_dumped: bool,
        message: &str,
        _lang: &str,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::ExitSignal { signal, core_dumped, message: message.into() }).await;
        Ok(())
    }

    async fn channel_eof(&mut self, c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Eof).await;
        Ok(())
    }

    async fn channel_close(&mut self, c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(c, TargetMsg::Close).await;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.reverse(|r| r.agent, channel, reply, bridge::Tunnel::agent());
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: Channel<Msg>,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.reverse(|r| r.x11, channel, reply, bridge::Tunnel::x11(originator_address, originator_port));
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let kind = bridge::Tunnel::forwarded(connected_address, connected_port, originator_address, originator_port);
        self.reverse(|r| r.forwarded_tcpip, channel, reply, kind);
        Ok(())
    }

    // A target has no business opening sessions or connections towards the user.
    async fn server_channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _from: &str,
        _from_port: u32,
        reply: ChannelOpenHandle,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }
}

/// Which channel to open on the target.
pub(crate) enum Open {
    /// A session channel (shell, exec, subsystem), with what it may open back.
    Session { reverse: Option<Arc<Reverse>> },
    /// A TCP connection made by the target (`-L`, `-W`, `-J`), when the policy allows it.
    DirectTcpip { host: String, port: u32, from_addr: String, from_port: u32 },
}

/// How many bytes of a connection are read at once: a keystroke's packet is a few dozen
/// bytes, a bulk one 32 KiB (which bypasses this buffer and is read straight in place).
const READ_BUFFER: usize = 8 << 10;

/// Prepares a TCP connection to a user or a target for an SSH session:
/// - no Nagle delay, so keystrokes are sent at once;
/// - TCP keep-alive, so a peer that vanished without a FIN or RST (power loss, a dropped
///   network) is found even while the session is idle at the SSH level: about 30 s idle,
///   then 3 probes 10 s apart;
/// - a read buffer. russh reads each packet with two exact reads (its length, then the
///   rest); unbuffered, that is two `recv` calls per packet and a third that finds the
///   socket empty. Buffered, a small packet takes one `recv`, and as that read returns less
///   than asked, tokio knows the socket is drained without asking again. Measured against
///   the same build without it (`proxy_throughput`, `proxy_latency`, alternating): exec
///   throughput about 9 % higher, but the idle keystroke median about 5 µs slower, for
///   reasons not found yet; kept for throughput. 1 KiB buffers lost the throughput gain.
pub(crate) fn ssh_stream(stream: tokio::net::TcpStream) -> tokio::io::BufReader<tokio::net::TcpStream> {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP no-delay: {e}");
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka) {
        tracing::debug!("TCP keep-alive: {e}");
    }
    tokio::io::BufReader::with_capacity(READ_BUFFER, stream)
}

/// Connects to the route's target, checks its host key and logs in with the route's
/// credential. `link` receives the traffic of the channel opened next, if any.
pub(crate) async fn login(
    gate: &Gate,
    config: Arc<client::Config>,
    route: &Route,
    link: Option<Arc<Link>>,
    timeout: Duration,
    reverse: Option<Arc<Reverse>>,
) -> Result<(client::Handle<TargetHandler>, Arc<OnceLock<ChannelId>>), ConnectError> {
    let addr = format!("{}:{}", route.target.host, route.target.port);
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| ConnectError::Unreachable(format!("{addr}: no answer within {timeout:?}")))?
        .map_err(|e| ConnectError::Unreachable(format!("{addr}: {e}")))?;
    let stream = ssh_stream(stream);
    let mismatch = Arc::new(Mutex::new(None));
    let main = Arc::new(OnceLock::new());
    let handler = TargetHandler {
        gate: gate.clone(),
        target: route.target.name.clone(),
        link,
        main: main.clone(),
        reverse,
        mismatch: mismatch.clone(),
    };
    let connected = tokio::time::timeout(timeout, client::connect_stream(config, stream, handler)).await;
    let mut handle = match connected {
        Err(_) => return Err(ConnectError::Unreachable(format!("{addr}: SSH handshake timed out"))),
        Ok(Err(e)) => {
            if let Some(detail) = mismatch.lock().expect("lock").take() {
                return Err(ConnectError::HostKeyMismatch(detail));
            }
            return Err(ConnectError::Unreachable(format!("{addr}: {e}")));
        }
        Ok(Ok(h)) => h,
    };
    let auth = async {
        match &route.credential {
            Credential::Password(p) => handle.authenticate_password(route.account.clone(), p.as_str()).await,
            Credential::PrivateKey(k) => {
                let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
                let key = PrivateKeyWithHashAlg::new(Arc::new((**k).clone()), hash);
                handle.authenticate_publickey(route.account.clone(), key).await
            }
        }
    };
    match tokio::time::timeout(timeout, auth).await {
        Ok(Ok(r)) if r.success() => Ok((handle, main)),
        Ok(Ok(_)) => Err(ConnectError::AuthFailed),
        Ok(Err(e)) => Err(ConnectError::Unreachable(format!("{addr}: {e}"))),
        Err(_) => Err(ConnectError::Unreachable(format!("{addr}: no answer to authentication within {timeout:?}"))),
    }
}

/// Connects and logs in (see [`login`]), then opens one channel whose traffic flows into
/// `link.down`.
pub(crate) async fn connect(
    gate: &Gate,
    config: Arc<client::Config>,
    route: &Route,
    link: Option<Arc<Link>>,
    timeout: Duration,
    open: &Open,
) -> Result<TargetConn, ConnectError> {
    let addr = format!("{}:{}", route.target.host, route.target.port);
    let reverse = match open {
        Open::Session { reverse } => reverse.clone(),
        Open::DirectTcpip { .. } => None,
    };
    let (handle, main) = login(gate, config, route, link, timeout, reverse).await?;
    let opening = async {
        match open {
            Open::Session { .. } => handle.channel_open_session().await,
            Open::DirectTcpip { host, port, from_addr, from_port } => {
                handle.channel_open_direct_tcpip(host.clone(), *port, from_addr.clone(), *from_port).await
            }
        }
    };
    let channel = match tokio::time::timeout(timeout, opening).await {
        Ok(Ok(c)) => c,
        Ok(Err(russh::Error::ChannelOpenFailure(why))) => {
            return Err(ConnectError::Unreachable(format!("{addr}: the target refused the channel: {}", why.description())));
        }
        Ok(Err(e)) => return Err(ConnectError::Unreachable(format!("{addr}: opening a channel: {e}"))),
        Err(_) => return Err(ConnectError::Unreachable(format!("{addr}: no answer to opening a channel within {timeout:?}"))),
    };
    let _ = main.set(channel.id());
    // Messages arrive through the handler callbacks; see pipe.rs for why russh's own
    // per-channel queue is dropped.
    let (_read, write) = channel.split();
    Ok(TargetConn { handle, channel: write })
}
