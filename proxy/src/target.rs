//! The SSH client side: one connection to the target per bridged channel, authenticated
//! with the route's credential (which the user never sees), its host key checked against
//! the control plane's pin. Like the server handler, the client handler only turns
//! callbacks into [`TargetMsg`]s on the bridge's pipe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Msg};
use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::ssh_key::PublicKey;
use russh::{ChannelId, ChannelWriteHalf, Sig};

use crate::bridge::{Link, TargetMsg};
use crate::control::{Credential, Route};
use crate::gate::{Gate, HostKeyCheck};

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

/// A live connection to a target with one session channel.
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

struct TargetHandler {
    gate: Gate,
    target: String,
    link: Arc<Link>,
    /// Set by the host-key check, read when the handshake fails.
    mismatch: Arc<Mutex<Option<String>>>,
}

impl TargetHandler {
    async fn push(&self, msg: TargetMsg) {
        self.link.down.push(msg, &self.link.up.writer).await;
    }
}

impl Drop for TargetHandler {
    fn drop(&mut self) {
        // The connection ended: the bridge must see a close even if the target never sent one.
        self.link.down.force_push(TargetMsg::Close);
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

    async fn data(&mut self, _c: ChannelId, data: &[u8], _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Data(Bytes::copy_from_slice(data))).await;
        Ok(())
    }

    async fn extended_data(&mut self, _c: ChannelId, ext: u32, data: &[u8], _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Ext(ext, Bytes::copy_from_slice(data))).await;
        Ok(())
    }

    async fn channel_success(&mut self, _c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Reply(true)).await;
        Ok(())
    }

    async fn channel_failure(&mut self, _c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Reply(false)).await;
        Ok(())
    }

    async fn exit_status(&mut self, _c: ChannelId, status: u32, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::ExitStatus(status)).await;
        Ok(())
    }

    async fn exit_signal(
        &mut self,
        _c: ChannelId,
        signal: Sig,
        core_dumped: bool,
        message: &str,
        _lang: &str,
        _s: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.push(TargetMsg::ExitSignal { signal, core_dumped, message: message.into() }).await;
        Ok(())
    }

    async fn channel_eof(&mut self, _c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Eof).await;
        Ok(())
    }

    async fn channel_close(&mut self, _c: ChannelId, _s: &mut client::Session) -> Result<(), Self::Error> {
        self.push(TargetMsg::Close).await;
        Ok(())
    }
}

/// Which channel to open on the target.
pub(crate) enum Open {
    /// A session channel (shell, exec, subsystem).
    Session,
    /// A TCP connection made by the target (`-L`, `-W`, `-J`), when the policy allows it.
    DirectTcpip { host: String, port: u32, from_addr: String, from_port: u32 },
}

/// Connects to the route's target, checks its host key, logs in with the route's
/// credential and opens one channel whose traffic flows into `link.down`.
pub(crate) async fn connect(
    gate: &Gate,
    config: Arc<client::Config>,
    route: &Route,
    link: Arc<Link>,
    timeout: Duration,
    open: &Open,
) -> Result<TargetConn, ConnectError> {
    let addr = format!("{}:{}", route.target.host, route.target.port);
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| ConnectError::Unreachable(format!("{addr}: no answer within {timeout:?}")))?
        .map_err(|e| ConnectError::Unreachable(format!("{addr}: {e}")))?;
    // Keystrokes must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let mismatch = Arc::new(Mutex::new(None));
    let handler = TargetHandler { gate: gate.clone(), target: route.target.name.clone(), link, mismatch: mismatch.clone() };
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
    let auth = match &route.credential {
        Credential::Password(p) => handle.authenticate_password(route.account.clone(), p.as_str()).await,
        Credential::PrivateKey(k) => {
            let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new((**k).clone()), hash);
            handle.authenticate_publickey(route.account.clone(), key).await
        }
    };
    match auth {
        Ok(r) if r.success() => {}
        Ok(_) => return Err(ConnectError::AuthFailed),
        Err(e) => return Err(ConnectError::Unreachable(format!("{addr}: {e}"))),
    }
    let channel = match open {
        Open::Session => handle.channel_open_session().await,
        Open::DirectTcpip { host, port, from_addr, from_port } => {
            handle.channel_open_direct_tcpip(host.clone(), *port, from_addr.clone(), *from_port).await
        }
    }
    .map_err(|e| ConnectError::Unreachable(format!("{addr}: opening a channel: {e}")))?;
    // Messages arrive through the handler callbacks; see pipe.rs for why russh's own
    // per-channel queue is dropped.
    let (_read, write) = channel.split();
    Ok(TargetConn { handle, channel: write })
}
