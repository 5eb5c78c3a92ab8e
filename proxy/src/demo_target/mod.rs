//! **Demo only.** A tiny SSH server bound to loopback, so `gatehouse demo` has a target on
//! a machine without sshd: a shell or command (in a PTY when asked for one, else on pipes)
//! and an `sftp` subsystem, all as the user gatehouse runs as, starting in its home
//! directory. It accepts exactly one account with one password, chosen at start, and has
//! no forwarding. Never expose it; real targets are real sshd.

mod process;
mod sftp;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::Algorithm;
use russh::keys::ssh_key::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use process::{Input, Term};

/// A running demo target.
pub struct DemoTarget {
    addr: SocketAddr,
    host_key: PublicKey,
    task: tokio::task::JoinHandle<()>,
}

impl DemoTarget {
    /// Starts the demo target on `127.0.0.1:<free port>` accepting `account`/`password`.
    pub async fn start(account: &str, password: &str) -> Result<DemoTarget> {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .map_err(|e| Error::Invalid(format!("demo target host key: {e}")))?;
        let host_key = key.public_key().clone();
        let config = Arc::new(russh::server::Config {
            server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-gatehouse-demo-target")),
            methods: MethodSet::from(&[MethodKind::Password][..]),
            keys: vec![key],
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await.map_err(|e| Error::io("demo target: binding 127.0.0.1", e))?;
        let addr = tcp.local_addr().map_err(|e| Error::io("demo target", e))?;
        let creds = Arc::new((account.to_string(), password.to_string()));
        let home = Arc::new(std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_dir()).unwrap_or_else(|| "/".into()));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                let h = DemoConn { creds: creds.clone(), home: home.clone(), channels: HashMap::new() };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(s) = russh::server::run_stream(config, stream, h).await {
                        let _ = s.await;
                    }
                });
            }
        });
        Ok(DemoTarget { addr, host_key, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its host key (to pin in the control plane).
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One channel: its terminal request, and the channel until a request starts it, then
/// the running command's input queue.
#[derive(Default)]
struct Slot {
    term: Option<Term>,
    channel: Option<Channel<Msg>>,
    input: Option<mpsc::Sender<Input>>,
}

struct DemoConn {
    creds: Arc<(String, String)>,
    home: Arc<PathBuf>,
    channels: HashMap<ChannelId, Slot>,
}

impl russh::server::Handler for DemoConn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> std::result::Result<Auth, Self::Error> {
        Ok(if user == self.creds.0 && password == self.creds.1 { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        self.channels.insert(channel.id(), Slot { channel: Some(channel), ..Slot::default() });
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(slot) => {
                slot.term = Some(Term { name: term.to_string(), cols: cols as u16, rows: rows as u16 });
                session.channel_success(channel)?;
            }
            None => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.start(channel, None, session)
    }

    async fn exec_request(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.start(channel, Some(String::from_utf8_lossy(data).into_owned()), session)
    }

    async fn subsystem_request(&mut self, channel: ChannelId, name: &str, session: &mut Session) -> std::result::Result<(), Self::Error> {
        let taken = self.channels.get_mut(&channel).and_then(|s| s.channel.take());
        match taken {
            Some(ch) if name == "sftp" => {
                session.channel_success(channel)?;
                // Data reaches the SFTP server through the channel's own queue, not `data()`.
                sftp::serve(ch, (*self.home).clone(), session.handle(), channel);
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        self.send(channel, Input::Resize(cols as u16, rows as u16)).await;
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.send(channel, Input::Data(data.to_vec())).await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.send(channel, Input::Eof).await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> std::result::Result<(), Self::Error> {
        // Dropping the input queue ends the command's stdin.
        self.channels.remove(&channel);
        Ok(())
    }
}

impl DemoConn {
    async fn send(&mut self, channel: ChannelId, input: Input) {
        if let Some(tx) = self.channels.get(&channel).and_then(|s| s.input.as_ref()) {
            let _ = tx.send(input).await;
        }
    }

    /// Starts a shell (`command` None) or a command on `channel`, once.
    fn start(&mut self, channel: ChannelId, command: Option<String>, session: &mut Session) -> std::result::Result<(), russh::Error> {
        let Some(slot) = self.channels.get_mut(&channel) else { return session.channel_failure(channel) };
        let Some(ch) = slot.channel.take() else { return session.channel_failure(channel) };
        // Input arrives through `data()`; the channel's own queue is not read.
        let (_read, out) = ch.split();
        match process::spawn(command.as_deref(), slot.term.clone(), &self.home, out, session.handle(), channel) {
            Ok(tx) => {
                slot.input = Some(tx);
                session.channel_success(channel)
            }
            Err(e) => {
                tracing::warn!("demo target: cannot start {command:?}: {e}");
                session.channel_failure(channel)
            }
        }
    }
}
