//! Background load for the latency benchmark with little cost of its own: `n` sessions
//! whose two ends live in this process, so what loads the machine is the hop between
//! them (gatehouse, or the OpenSSH jump host for the control), not 600 client, sshd and
//! shell processes that in real life run on the users' and the targets' own machines.
//!
//! - [`Ticker`]: a small SSH server (russh) on loopback: a shell on it prints `tick` every
//!   200 ms (each session at its own phase) until the channel closes. It takes any
//!   password. Benchmark use only.
//! - [`Load`]: `n` russh clients, each with a PTY and a shell on the ticker, reading
//!   (and dropping) what arrives, as a terminal would; either through gatehouse (user
//!   `alice`, target `ticker`) or through the jump host (a `direct-tcpip` channel to the
//!   ticker, then SSH inside it: what `ssh -J` does).
//!
//! One runtime with one worker thread carries all of it. [`Load::active`] pauses and
//! resumes the printing of all sessions at once (they stay connected), so a benchmark can
//! take its quiet and its loaded samples in turns, under the same conditions of a shared
//! machine.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gatehouse_proxy::ControlPlane;
use gatehouse_proxy::control::{Allowances, Credential, NewTarget};
use russh::keys::ssh_key::{PrivateKey, PublicKey};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::proxy_env::{AnyKey, ProxyEnv};

/// The ticker's one account.
pub const ACCOUNT: &str = "bench";
/// The gatehouse target name of the ticker.
pub const TARGET: &str = "ticker";
/// How often each session prints.
pub const PERIOD: Duration = Duration::from_millis(200);

/// The runtime, the ticker server, and its gatehouse target.
pub struct Ticker {
    rt: Runtime,
    addr: SocketAddr,
    /// Whether the sessions print (all of them).
    active: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts the ticker and registers it with gatehouse as target `ticker` (account
    /// `bench`, host key pinned), allowed to alice by the environment's rule.
    pub fn start(env: &ProxyEnv) -> Ticker {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let host_key: PublicKey = key.public_key().clone();
        let config = Arc::new(russh::server::Config {
            server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-gatehouse-bench-ticker")),
            methods: MethodSet::from(&[MethodKind::Password][..]),
            keys: vec![key],
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let active = Arc::new(AtomicBool::new(true));
        let ticking = active.clone();
        let addr = rt.block_on(async {
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((stream, _)) = tcp.accept().await {
                    let config = config.clone();
                    let conn = TickConn { active: ticking.clone(), tasks: Vec::new() };
                    tokio::spawn(async move {
                        if let Ok(s) = russh::server::run_stream(config, stream, conn).await {
                            let _ = s.await;
                        }
                    });
                }
            });
            addr
        });
        let control = ControlPlane::open_data_dir(&env.data_dir).unwrap();
        control
            .add_target(&NewTarget {
                name: TARGET.into(),
                host: addr.ip().to_string(),
                port: addr.port(),
                labels: Default::default(),
                default_account: Some(ACCOUNT.into()),
                allow: Allowances::default(),
                host_key: Some(host_key),
                accounts: vec![(ACCOUNT.into(), Credential::Password("ticker".to_string().into()))],
            })
            .unwrap();
        Ticker { rt, addr, active }
    }

    /// `n` sessions through gatehouse, or through the jump host when `via_jump`; returns
    /// once every one has received its first tick.
    pub fn load(&self, env: &ProxyEnv, via_jump: bool, n: usize) -> Load {
        self.active.store(true, Ordering::Relaxed);
        let sessions = self.rt.block_on(async {
            let sem = Arc::new(tokio::sync::Semaphore::new(16));
            let mut set = tokio::task::JoinSet::new();
            let how = if via_jump { How::Jump(jump(env), self.addr) } else { How::Gatehouse(gatehouse(env)) };
            for _ in 0..n {
                let (sem, how) = (sem.clone(), how.clone());
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await.unwrap();
                    how.open().await
                });
            }
            let mut ticking = Vec::new();
            let mut sessions = Vec::new();
            while let Some(r) = set.join_next().await {
                let (s, first) = r.expect("background session opens");
                sessions.push(s);
                ticking.push(first);
            }
            for first in ticking {
                tokio::time::timeout(Duration::from_secs(60), first).await.expect("a background session ticks").ok();
            }
            sessions
        });
        Load { sessions, rt: self.rt.handle().clone(), active: self.active.clone() }
    }
}

/// Open background sessions; dropping closes them.
pub struct Load {
    sessions: Vec<Open>,
    rt: tokio::runtime::Handle,
    active: Arc<AtomicBool>,
}

impl Load {
    /// Resumes (`true`) or pauses the printing of every session; waits 250 ms, so that
    /// what was on its way has arrived and the new state holds.
    pub fn active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(250));
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let sessions = std::mem::take(&mut self.sessions);
        self.rt.block_on(async move {
            for s in sessions {
                s.reader.abort();
                for h in s.handles.iter().rev() {
                    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
                }
            }
        });
        // Let both sides see the disconnects before the next round measures.
        std::thread::sleep(Duration::from_secs(2));
    }
}

struct Open {
    /// The SSH connections, outermost first (the jump host's, then the ticker's inside it).
    handles: Vec<russh::client::Handle<AnyKey>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Where an SSH client logs in, as whom, with which key.
#[derive(Clone)]
struct Login {
    addr: SocketAddr,
    user: String,
    key: Arc<PrivateKey>,
}

fn gatehouse(env: &ProxyEnv) -> Login {
    let key = Arc::new(russh::keys::load_secret_key(&env.alice_key, None).unwrap());
    Login { addr: env.addr, user: format!("alice:{ACCOUNT}@{TARGET}"), key }
}

fn jump(env: &ProxyEnv) -> Login {
    let key = Arc::new(russh::keys::load_secret_key(env.target.client_key_path(), None).unwrap());
    Login { addr: ([127, 0, 0, 1], env.jump.port()).into(), user: env.jump.account(), key }
}

#[derive(Clone)]
enum How {
    Gatehouse(Login),
    /// The jump host's login, and the ticker's address behind it.
    Jump(Login, SocketAddr),
}

fn client_config() -> Arc<russh::client::Config> {
    Arc::new(russh::client::Config { inactivity_timeout: None, nodelay: true, ..Default::default() })
}

impl How {
    /// Connects, opens a PTY shell; returns the session and a receiver that fires at
    /// the first data.
    async fn open(self) -> (Open, tokio::sync::oneshot::Receiver<()>) {
        let mut handles = Vec::new();
        let shell_on = match self {
            How::Gatehouse(g) => {
                let mut h = russh::client::connect(client_config(), g.addr, AnyKey).await.expect("connect to gatehouse");
                let ok = h.authenticate_publickey(g.user, PrivateKeyWithHashAlg::new(g.key, None)).await.expect("auth");
                assert!(ok.success(), "gatehouse refused alice");
                h
            }
            How::Jump(j, ticker) => {
                let mut outer = russh::client::connect(client_config(), j.addr, AnyKey).await.expect("connect to the jump host");
                let ok = outer.authenticate_publickey(j.user, PrivateKeyWithHashAlg::new(j.key, None)).await.expect("auth");
                assert!(ok.success(), "the jump host refused the key");
                let tunnel = outer
                    .channel_open_direct_tcpip(ticker.ip().to_string(), u32::from(ticker.port()), "127.0.0.1", 0)
                    .await
                    .expect("direct-tcpip through the jump host");
                let mut inner = russh::client::connect_stream(client_config(), tunnel.into_stream(), AnyKey).await.expect("ssh in the tunnel");
                handles.push(outer);
                let ok = inner.authenticate_password(ACCOUNT, "ticker").await.expect("auth");
                assert!(ok.success(), "the ticker refused the password");
                inner
            }
        };
        let mut ch = shell_on.channel_open_session().await.expect("session channel");
        ch.request_pty(false, "xterm", 80, 24, 0, 0, &[]).await.expect("pty");
        ch.request_shell(false).await.expect("shell");
        handles.push(shell_on);
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut first = Some(first_tx);
            while let Some(msg) = ch.wait().await {
                if let russh::ChannelMsg::Data { .. } = msg
                    && let Some(tx) = first.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        (Open { handles, reader }, first_rx)
    }
}

/// One ticker connection: its printing tasks, stopped when the connection goes.
struct TickConn {
    active: Arc<AtomicBool>,
    tasks: Vec<(ChannelId, tokio::task::JoinHandle<()>)>,
}

impl Drop for TickConn {
    fn drop(&mut self) {
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}

impl russh::server::Handler for TickConn {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(&mut self, _channel: Channel<Msg>, reply: russh::server::ChannelOpenHandle, _: &mut Session) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let handle = session.handle();
        let active = self.active.clone();
        // Each session at its own phase, as independent users' sessions would be.
        let phase = Duration::from_micros(rand::random_range(0..PERIOD.as_micros() as u64));
        self.tasks.push((
            channel,
            tokio::spawn(async move {
                let mut every = tokio::time::interval_at(tokio::time::Instant::now() + phase, PERIOD);
                loop {
                    every.tick().await;
                    if active.load(Ordering::Relaxed) && handle.data(channel, &b"tick\r\n"[..]).await.is_err() {
                        break;
                    }
                }
            }),
        ));
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _: &mut Session) -> Result<(), Self::Error> {
        self.tasks.retain(|(c, t)| {
            if *c == channel {
                t.abort();
            }
            *c != channel
        });
        Ok(())
    }
}
