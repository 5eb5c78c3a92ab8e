//! The world of an end-to-end test: a real sshd (the target), a control plane with alice
//! allowed to it, a recorder on a `file://` store, the proxy in-process on a free port,
//! and helpers to run the real OpenSSH client tools through it and read the recordings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_fixtures::{Sshd, sshd::keygen};
use gatehouse_proxy::control::{Allowances, Credential, NewTarget, NewUser, RuleSpec};
use gatehouse_proxy::{ControlPlane, MasterKey, Proxy, ProxyConfig};
use gatehouse_recorder::{Frame, FrameData, Manifest, Recorder, RecorderConfig, RecordingState, SessionFilter, Storage};

pub const ALICE_PASSWORD: &str = "alice-secret-pw";

pub struct World {
    pub sshd: Sshd,
    pub dir: tempfile::TempDir,
    pub control: ControlPlane,
    pub store: Storage,
    /// Shutdown in tests that need it; held for the world's lifetime.
    #[allow(dead_code)]
    pub recorder: Recorder,
    pub proxy: Proxy,
    pub addr: SocketAddr,
    pub alice_key: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn world() -> World {
    world_with(|_| {}, |r| r).await
}

/// A world whose proxy and recorder configs `tweak` and `rec` may change.
pub async fn world_with(tweak: impl FnOnce(&mut ProxyConfig), rec: impl FnOnce(RecorderConfig) -> RecorderConfig) -> World {
    // GATEHOUSE_LOG=debug shows the proxy's log in a failing test's output.
    if let Ok(filter) = std::env::var("GATEHOUSE_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let sshd = Sshd::start().expect("sshd starts");
    let dir = tempfile::tempdir().unwrap();
    let control = ControlPlane::open_in_memory(MasterKey::generate()).unwrap();
    let alice_key = keygen(&dir.path().join("alice_key")).unwrap();
    let alice_pub = std::fs::read_to_string(alice_key.with_extension("pub")).unwrap();
    control
        .add_user(&NewUser {
            name: "alice".into(),
            password: Some(ALICE_PASSWORD.to_string().into()),
            keys: vec![gatehouse_proxy::control::parse_public_key(alice_pub.trim(), "alice key").unwrap()],
            groups: vec![],
            totp: false,
        })
        .unwrap();
    add_target(&control, "web-01", sshd.port(), &sshd, Allowances::default());
    control
        .add_rule(&RuleSpec { name: None, users: vec!["alice".into()], targets: vec!["*".into()], accounts: vec!["*".into()] })
        .unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store = Storage::from_url(&format!("file://{}", store_dir.display())).unwrap();
    let recorder = Recorder::open(store.clone(), rec(RecorderConfig::new(dir.path().join("spool")))).await.unwrap();
    let mut config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        host_key: dir.path().join("proxy_host_key"),
        ..Default::default()
    };
    config.env_allow.push("GH_*".into());
    tweak(&mut config);
    let proxy = Proxy::new(config, control.clone(), recorder.clone()).unwrap();
    let listener = proxy.bind().await.unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let _ = listener.run().await;
    });
    World { sshd, dir, control, store, recorder, proxy, addr, alice_key, server }
}

pub fn add_target(control: &ControlPlane, name: &str, port: u16, sshd: &Sshd, allow: Allowances) {
    control
        .add_target(&NewTarget {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
            labels: [("env".to_string(), "test".to_string())].into_iter().collect(),
            default_account: Some(sshd.account()),
            allow,
            host_key: None,
            accounts: vec![(
                sshd.account(),
                Credential::private_key_from_openssh(&sshd.client_private_key(), "sshd fixture").unwrap(),
            )],
        })
        .unwrap();
}

impl World {
    /// Common OpenSSH client options: no host-key prompts, quiet, alice's key only.
    pub fn ssh_opts(&self) -> Vec<String> {
        [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["-i".to_string(), self.alice_key.display().to_string()])
        .collect()
    }

    /// `ssh -tt` with alice's key on a real local terminal of `cols`x`rows`.
    pub fn ssh_pty(&self, login: &str, cols: u16, rows: u16) -> pty::PtyChild {
        let mut args = self.ssh_opts();
        args.extend(["-o", "BatchMode=yes", "-tt", "-p"].iter().map(|s| s.to_string()));
        args.push(self.port());
        args.push(format!("{login}@127.0.0.1"));
        pty::PtyChild::spawn("ssh", &args, cols, rows)
    }

    /// `ssh -p PORT [opts] LOGIN@127.0.0.1 [args]` with alice's key, batch mode.
    pub fn ssh(&self, login: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.ssh_opts()).args(["-o", "BatchMode=yes", "-p", &self.addr.port().to_string()]);
        c.arg(format!("{login}@127.0.0.1")).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// An ssh command that answers the password prompt with `password` (SSH_ASKPASS).
    pub fn ssh_password(&self, login: &str, password: &str, args: &[&str]) -> Command {
        self.ssh_askpass(login, &format!("#!/bin/sh\necho '{password}'\n"), args)
    }

    /// An ssh command whose prompts (password, verification code) `script` answers.
    pub fn ssh_askpass(&self, login: &str, script_text: &str, args: &[&str]) -> Command {
        let script = self.dir.path().join(format!("askpass-{}", rand_suffix()));
        std::fs::write(&script, script_text).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut c = Command::new("ssh");
        c.args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]);
        c.args(["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"]);
        c.args(["-o", "NumberOfPasswordPrompts=1", "-p", &self.addr.port().to_string()]);
        c.arg(format!("{login}@127.0.0.1")).args(args);
        c.env("SSH_ASKPASS", &script).env("SSH_ASKPASS_REQUIRE", "force").env("DISPLAY", ":0");
        c.stdin(Stdio::null());
        c
    }

    /// The `-e` argument for rsync and the `-S`-less options for scp/sftp.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Waits for the session with `pred` to be complete in the store; returns its manifest.
    pub async fn recorded(&self, pred: impl Fn(&Manifest) -> bool) -> Manifest {
        self.recorded_within(Duration::from_secs(20), pred).await
    }

    /// Like `recorded`, with a deadline of `limit`.
    pub async fn recorded_within(&self, limit: Duration, pred: impl Fn(&Manifest) -> bool) -> Manifest {
        let deadline = Instant::now() + limit;
        loop {
            let all = self.store.list_sessions(&SessionFilter::default()).await.unwrap();
            if let Some(m) = all.iter().find(|m| pred(m) && m.state == RecordingState::Complete) {
                return m.clone();
            }
            let states: Vec<_> = all.iter().map(|m| (m.meta.channel.clone(), m.state, m.end_reason.clone())).collect();
            assert!(Instant::now() < deadline, "no complete recording matched within {limit:?}; sessions: {states:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the registry lists a live session that `pred` accepts.
    pub async fn live_session(&self, limit: Duration, pred: impl Fn(&gatehouse_proxy::LiveSession) -> bool) -> gatehouse_proxy::LiveSession {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.proxy.registry().list().into_iter().find(&pred) {
                return s;
            }
            assert!(Instant::now() < deadline, "no live session matched within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// All sessions in the store.
    pub async fn sessions(&self) -> Vec<Manifest> {
        self.store.list_sessions(&SessionFilter::default()).await.unwrap()
    }

    pub async fn frames(&self, m: &Manifest) -> Vec<Frame> {
        let s = self.store.frames(m, 0);
        s.map(|f| f.expect("frame reads")).collect().await
    }
}

/// Concatenated output (or input) bytes of a recording.
pub fn bytes_of(frames: &[Frame], output: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for f in frames {
        match (&f.data, output) {
            (FrameData::Output(b), true) | (FrameData::Input(b), false) => v.extend_from_slice(b),
            _ => {}
        }
    }
    v
}

/// The structured events of a recording, as (kind, data).
pub fn events(frames: &[Frame]) -> Vec<(String, serde_json::Value)> {
    frames
        .iter()
        .filter_map(|f| match &f.data {
            FrameData::Event(e) => Some((e.kind.clone(), e.data.clone())),
            _ => None,
        })
        .collect()
}

/// Runs a blocking command on the blocking pool with a deadline; a hang is a failure.
pub async fn run(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawns");
    let pid = child.id();
    let waited = tokio::time::timeout(limit, tokio::task::spawn_blocking(move || child.wait_with_output())).await;
    match waited {
        Ok(out) => out.unwrap().unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("hung for {limit:?}: {what}");
        }
    }
}

/// A file of `len` pseudo-random (incompressible) bytes.
pub fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ len as u64;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    std::fs::write(path, v).unwrap();
}

/// The processes whose parent is `pid` (from /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: comm may hold spaces, so parse after the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// `kill -9 pid`.
pub fn kill9(pid: u32) {
    let st = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(st.success(), "kill -9 {pid}");
}

pub fn rand_suffix() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
pub mod pty;
