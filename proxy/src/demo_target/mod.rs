//! **Demo only.** A tiny SSH server bound to loopback that runs a shell (or a command) in
//! a PTY, so `gatehouse demo` has a target on a machine without sshd. It accepts exactly
//! one account with one password, chosen at start; it has no SFTP, no forwarding, and runs
//! commands as the user gatehouse runs as. Never expose it; real targets are real sshd.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use russh::keys::Algorithm;
use russh::keys::ssh_key::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelWriteHalf, MethodKind, MethodSet, Pty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, nix::pty::Winsize);

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
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                let h = DemoConn { creds: creds.clone(), pty: None, channels: Default::default() };
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

/// Per channel: the writer (until a shell/command takes it) and the command's input queue.
type Slot = (Option<ChannelWriteHalf<Msg>>, Option<tokio::sync::mpsc::Sender<Input>>);

struct DemoConn {
    creds: Arc<(String, String)>,
    pty: Option<(String, u16, u16)>,
    channels: std::collections::HashMap<ChannelId, Slot>,
}

enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Eof,
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
        let id = channel.id();
        let (_r, w) = channel.split();
        self.channels.insert(id, (Some(w), None));
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
        self.pty = Some((term.to_string(), cols as u16, rows as u16));
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.spawn(channel, None, session)
    }

    async fn exec_request(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.spawn(channel, Some(String::from_utf8_lossy(data).into_owned()), session)
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
}

impl DemoConn {
    async fn send(&mut self, channel: ChannelId, input: Input) {
        if let Some((_, Some(tx))) = self.channels.get(&channel) {
            let _ = tx.send(input).await;
        }
    }

    fn spawn(&mut self, channel: ChannelId, command: Option<String>, session: &mut Session) -> std::result::Result<(), russh::Error> {
        let Some((out_slot, slot)) = self.channels.get_mut(&channel) else { return Ok(()) };
        let Some(out) = out_slot.take() else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        let (term, cols, rows) = self.pty.clone().unwrap_or_else(|| ("dumb".into(), 80, 24));
        let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let Ok(pty) = nix::pty::openpty(&ws, None) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        let shell = std::env::var("SHELL").ok().filter(|s| std::path::Path::new(s).exists()).unwrap_or_else(|| "/bin/sh".into());
        let mut cmd = std::process::Command::new(&shell);
        if let Some(c) = &command {
            cmd.arg("-c").arg(c);
        } else {
            cmd.arg("-i");
        }
        let slave = pty.slave;
        let (i, o, e) = (dup(&slave), dup(&slave), dup(&slave));
        cmd.env("TERM", term).stdin(Stdio::from(i)).stdout(Stdio::from(o)).stderr(Stdio::from(e));
        // SAFETY: only async-signal-safe calls between fork and exec (setsid, ioctl).
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let Ok(mut child) = tokio::process::Command::from(cmd).spawn() else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        drop(slave);
        session.channel_success(channel)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Input>(16);
        *slot = Some(tx);
        let handle = session.handle();
        let master: OwnedFd = pty.master;
        let fd = master.as_raw_fd();
        let reader = std::fs::File::from(master.try_clone().expect("dup pty master"));
        let mut writer = tokio::fs::File::from_std(std::fs::File::from(master));
        tokio::spawn(async move {
            while let Some(input) = rx.recv().await {
                match input {
                    Input::Data(d) => {
                        if writer.write_all(&d).await.is_err() || writer.flush().await.is_err() {
                            break;
                        }
                    }
                    Input::Resize(c, r) => {
                        let ws = nix::pty::Winsize { ws_row: r, ws_col: c, ws_xpixel: 0, ws_ypixel: 0 };
                        // SAFETY: fd is the pty master, alive as long as `writer`.
                        let _ = unsafe { set_winsize(fd, &ws) };
                    }
                    Input::Eof => {
                        let _ = writer.write_all(&[4]).await; // ^D, as a terminal would
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut reader = tokio::fs::File::from_std(reader);
            let mut buf = vec![0u8; 32 * 1024];
            // EIO once the shell exited and the slave side is closed: that is EOF.
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 || out.data_bytes(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
            let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1);
            let _ = handle.exit_status_request(channel, status as u32).await;
            let _ = out.eof().await;
            let _ = out.close().await;
        });
        Ok(())
    }
}

fn dup(fd: &OwnedFd) -> OwnedFd {
    fd.try_clone().expect("dup pty slave")
}
