//! The world of the proxy benchmarks: a real target sshd, a second sshd as the OpenSSH
//! jump host (the reference hop, no recording), and the gatehouse proxy as a separate
//! process (this benchmark binary re-executed in server mode, see [`maybe_serve`], so its
//! RSS is its own and the benchmark does not need the whole CLI built) with alice allowed to the target, recording to a
//! `file://` store. Everything on 127.0.0.1; everything stopped on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_fixtures::Sshd;
use gatehouse_proxy::ControlPlane;
use gatehouse_proxy::control::{Allowances, Credential, NewTarget, NewUser, RuleSpec};

/// A russh client handler that accepts any host key: the benchmarks' own loopback
/// servers have fresh keys every run.
pub struct AnyKey;

impl russh::client::Handler for AnyKey {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The three ways to reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path3 {
    /// Straight to the target sshd.
    Direct,
    /// Through the OpenSSH jump host (`ssh -J`, spelled as the equivalent ProxyCommand
    /// so every option is explicit).
    Jump,
    /// Through gatehouse, recording.
    Gatehouse,
}

impl Path3 {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Path3::Direct => "direct",
            Path3::Jump => "jump host",
            Path3::Gatehouse => "gatehouse",
        }
    }
}

/// Target, jump host, gatehouse.
pub struct ProxyEnv {
    pub target: Sshd,
    pub jump: Sshd,
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub gatehouse: Child,
    pub addr: SocketAddr,
    pub alice_key: PathBuf,
}

impl Drop for ProxyEnv {
    fn drop(&mut self) {
        let _ = self.gatehouse.kill();
        let _ = self.gatehouse.wait();
    }
}

/// The argument that makes a benchmark binary act as the gatehouse server process.
const SERVE_ARG: &str = "--as-gatehouse-serve";

/// Call first in `main`: when this process was started as the server half of the
/// benchmark, runs the proxy (what `gatehouse serve` runs: control plane, recorder on a
/// `file://` store, proxy) until killed, and never returns.
pub fn maybe_serve() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(SERVE_ARG) {
        return;
    }
    // As the `gatehouse` binary does.
    gatehouse_recorder::tune_allocator();
    let data_dir = PathBuf::from(&args[2]);
    let listen: SocketAddr = args[3].parse().expect("listen address");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let control = ControlPlane::open_data_dir(&data_dir).unwrap();
        let store_dir = data_dir.join("store");
        std::fs::create_dir_all(&store_dir).unwrap();
        let storage = gatehouse_recorder::Storage::from_url(&format!("file://{}", store_dir.display())).unwrap();
        let recorder = gatehouse_recorder::Recorder::open(
            storage,
            experiment(gatehouse_recorder::RecorderConfig::new(data_dir.join("spool")).with_spool_limit(8 << 30)),
        )
        .await
        .unwrap();
        let config = gatehouse_proxy::ProxyConfig {
            listen,
            host_key: data_dir.join("ssh_host_ed25519_key"),
            ..Default::default()
        };
        let proxy = gatehouse_proxy::Proxy::new(config, control, recorder).unwrap();
        proxy.bind().await.unwrap().run().await.unwrap();
    });
    std::process::exit(0);
}

impl ProxyEnv {
    /// Starts everything. `dir` holds the data (use a disk, not tmpfs, for realism).
    pub fn start() -> ProxyEnv {
        let target = Sshd::start().expect("target sshd");
        let jump = Sshd::start().expect("jump sshd");
        // The jump host accepts the same client key as the target.
        jump.authorize(&std::fs::read_to_string(target.client_key_path().with_extension("pub")).unwrap()).unwrap();
        let dir = tempfile::Builder::new().prefix("gatehouse-bench-").tempdir_in(bench_tmp()).unwrap();
        let data_dir = dir.path().join("data");
        let alice_key = gatehouse_fixtures::sshd::keygen(&dir.path().join("alice_key")).unwrap();
        {
            let control = ControlPlane::open_data_dir(&data_dir).unwrap();
            let alice_pub = std::fs::read_to_string(alice_key.with_extension("pub")).unwrap();
            control
                .add_user(&NewUser {
                    name: "alice".into(),
                    password: None,
                    keys: vec![gatehouse_proxy::control::parse_public_key(alice_pub.trim(), "alice").unwrap()],
                    groups: vec![],
                    totp: false,
                })
                .unwrap();
            control
                .add_target(&NewTarget {
                    name: "web-01".into(),
                    host: "127.0.0.1".into(),
                    port: target.port(),
                    labels: Default::default(),
                    default_account: Some(target.account()),
                    allow: Allowances::default(),
                    host_key: None,
                    accounts: vec![(
                        target.account(),
                        Credential::private_key_from_openssh(&target.client_private_key(), "bench").unwrap(),
                    )],
                })
                .unwrap();
            control
                .add_rule(&RuleSpec { name: None, users: vec!["alice".into()], targets: vec!["*".into()], accounts: vec!["*".into()] })
                .unwrap();
        }
        let port = gatehouse_fixtures::sshd::free_port().unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let gatehouse = Command::new(std::env::current_exe().unwrap())
            .arg(SERVE_ARG)
            .arg(&data_dir)
            .arg(addr.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gatehouse serve starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "gatehouse did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        ProxyEnv { target, jump, dir, data_dir, gatehouse, addr, alice_key }
    }

    /// An `ssh` command to the target by `path`, with `extra` options before the host.
    pub fn ssh(&self, path: Path3, extra: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.client_opts(path));
        c.args(extra);
        c.arg(self.destination(path));
        c
    }

    /// `scp` options (everything but the paths) for `path`; the remote is `host()`.
    pub fn scp(&self, path: Path3) -> Command {
        let mut c = Command::new("scp");
        c.args(self.client_opts(path).iter().map(|s| if s == "-p" { "-P".to_string() } else { s.clone() }));
        c
    }

    /// The `user@host` the client names (for scp, `host:path` follows; the user is set
    /// with `-o User=`).
    pub fn destination(&self, path: Path3) -> String {
        match path {
            Path3::Gatehouse => "127.0.0.1".into(),
            _ => "127.0.0.1".into(),
        }
    }

    fn client_opts(&self, path: Path3) -> Vec<String> {
        let common = [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        ];
        let mut v: Vec<String> = common.iter().map(|s| s.to_string()).collect();
        match path {
            Path3::Direct => {
                v.extend(["-i".into(), path_str(&self.target.client_key_path())]);
                v.extend(["-o".into(), format!("User={}", self.target.account())]);
                v.extend(["-p".into(), self.target.port().to_string()]);
            }
            Path3::Jump => {
                let key = path_str(&self.target.client_key_path());
                let proxy = format!(
                    "ssh {} -i {key} -p {} -W %h:%p {}@127.0.0.1",
                    common.join(" "),
                    self.jump.port(),
                    self.jump.account()
                );
                v.extend(["-i".into(), key, "-o".into(), format!("ProxyCommand={proxy}")]);
                v.extend(["-o".into(), format!("User={}", self.target.account())]);
                v.extend(["-p".into(), self.target.port().to_string()]);
            }
            Path3::Gatehouse => {
                v.extend(["-i".into(), path_str(&self.alice_key)]);
                v.extend(["-o".into(), format!("User=alice:{}@web-01", self.target.account())]);
                v.extend(["-p".into(), self.addr.port().to_string()]);
            }
        }
        v
    }

    /// The gatehouse process's resident set size, in KiB.
    pub fn gatehouse_rss_kib(&self) -> u64 {
        rss_kib(self.gatehouse.id())
    }

    /// Total stored bytes of all recorded segments (what object storage holds).
    pub fn stored_bytes(&self) -> u64 {
        dir_size(&self.data_dir.join("store"))
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    // Entries may vanish while we walk (the store renames its temporary files).
    rd.flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some(if m.is_dir() { dir_size(&e.path()) } else { m.len() })
        })
        .sum()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Where benchmark files go: `$GATEHOUSE_BENCH_DIR`, else the system temp dir.
pub fn bench_tmp() -> PathBuf {
    std::env::var_os("GATEHOUSE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// A file of `len` pseudo-random (incompressible) bytes, written in 1 MiB chunks.
pub fn random_file(path: &Path, len: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for c in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
}

/// Median of a sample, and the value at quantile `q`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The 95 % interval of `quantile(b, q) / quantile(a, q)` over 1,000 bootstrap resamples
/// of both sample sets: how far that ratio moves by chance alone, with this many samples
/// of this spread. An interval holding 1.0 means the two cannot be told apart.
pub fn ratio_interval(a: &[f64], b: &[f64], q: f64) -> (f64, f64) {
    const RESAMPLES: usize = 1000;
    let resample = |s: &[f64], buf: &mut Vec<f64>| {
        buf.clear();
        buf.extend((0..s.len()).map(|_| s[rand::random_range(0..s.len())]));
        let i = (((s.len() as f64 - 1.0) * q).round() as usize).min(s.len() - 1);
        *buf.select_nth_unstable_by(i, |x, y| x.total_cmp(y)).1
    };
    let (mut ba, mut bb) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..RESAMPLES).map(|_| resample(b, &mut bb) / resample(a, &mut ba)).collect();
    ratios.sort_by(f64::total_cmp);
    (quantile(&ratios, 0.025), quantile(&ratios, 0.975))
}

/// Recorder tuning experiments: `GATEHOUSE_BENCH_SEAL_MIB` and `GATEHOUSE_BENCH_SEAL_SECS`
/// (segment size and age, default 4 MiB and 5 s), `GATEHOUSE_BENCH_ZSTD` (level, default
/// 1) change what the server half records with.
fn experiment(c: gatehouse_recorder::RecorderConfig) -> gatehouse_recorder::RecorderConfig {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let c = match (var("GATEHOUSE_BENCH_SEAL_MIB"), var("GATEHOUSE_BENCH_SEAL_SECS")) {
        (None, None) => c,
        (mib, secs) => c.with_seal((mib.unwrap_or(4) << 20) as usize, Duration::from_secs(secs.unwrap_or(5))),
    };
    match std::env::var("GATEHOUSE_BENCH_ZSTD").ok().and_then(|v| v.parse::<i32>().ok()) {
        Some(l) => c.with_zstd_level(l),
        None => c,
    }
}
