//! What the CLI tests share: the binary run against a temporary data directory, a child
//! process that dies with its test, `gatehouse demo` started and its printed `ssh` command
//! taken apart, and OpenSSH clients that answer the demo's password.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Kills a child process when dropped (also when the test panics).
pub(crate) struct Kill(pub(crate) Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gatehouse ARGS` with its data in `dir`, stdin empty, and none of the environment's
/// store or master key.
pub(crate) fn gatehouse(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("GATEHOUSE_DATA_DIR", dir)
        .env_remove("GATEHOUSE_STORE")
        .env_remove("GATEHOUSE_MASTER_KEY")
        .stdin(Stdio::null());
    cmd
}

/// `gatehouse ARGS` run to its end with `stdin` as its input, output captured.
pub(crate) fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = gatehouse(dir, args);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("gatehouse runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The standard output of `gatehouse ARGS`, which must succeed.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(dir, args, b"");
    assert!(out.status.success(), "gatehouse {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A recorded shell session of the development corpus (`fixtures/corpus/dev`).
pub(crate) fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus/dev").join(name)
}

/// Every file below `dir`, at any depth (none if `dir` does not exist).
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// OpenSSH client options for the demo: no host key checks, password only, one prompt.
const SSH_OPTS: [&str; 10] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "PubkeyAuthentication=no",
    "-o",
    "NumberOfPasswordPrompts=1",
];

/// A running `gatehouse demo` on a free loopback port, as the command it printed says to
/// reach it.
pub(crate) struct Demo {
    /// The port of the printed `ssh -p PORT LOGIN`.
    pub(crate) port: String,
    /// Its `user:account@target@host`.
    pub(crate) login: String,
    askpass: PathBuf,
    _child: Kill,
}

impl Demo {
    /// Starts the demo with its data in `dir/data`. With `home`, the demo target's shell
    /// is a plain bash with that home (none of this machine's rc files); without, the
    /// demo's own defaults. Returns once the demo has printed its `ssh` command.
    pub(crate) fn start(dir: &Path, home: Option<&Path>) -> Demo {
        Demo::start_with(dir, home, &[])
    }

    /// [`Demo::start`] with these `GATEHOUSE_*` variables set; with `GATEHOUSE_SSH_LISTEN`
    /// among them, the listen address is left to it (else `--ssh-listen` picks a free port).
    pub(crate) fn start_with(dir: &Path, home: Option<&Path>, env: &[(&str, &str)]) -> Demo {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(dir.join("data")).arg("demo").envs(env.iter().copied());
        if !env.iter().any(|(k, _)| *k == "GATEHOUSE_SSH_LISTEN") {
            cmd.args(["--ssh-listen", "127.0.0.1:0"]);
        }
        if let Some(home) = home {
            cmd.env("SHELL", "/bin/bash").env("HOME", home);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let child = Kill(child);
        // The printed command line: `  ssh -p PORT demo:demo@demo-target@127.0.0.1`.
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let command = loop {
            assert!(Instant::now() < deadline, "demo printed no ssh command");
            let line = lines.next().expect("demo output").unwrap();
            if line.trim_start().starts_with("ssh -p") {
                break line.trim().to_string();
            }
        };
        // Keep reading what the demo prints, so nothing it prints later waits on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let words: Vec<&str> = command.split_whitespace().collect();
        Demo { port: words[2].to_string(), login: words[3].to_string(), askpass: askpass(dir), _child: child }
    }

    /// Starts the demo with its stdout a pipe nobody reads any more, on a port chosen
    /// here; its login is the one the README gives. Returns once the port accepts.
    pub(crate) fn start_with_closed_stdout(dir: &Path) -> Demo {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["demo", "--ssh-listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Kill(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.0.try_wait().unwrap().is_none(), "the demo exited");
            assert!(Instant::now() < deadline, "the demo never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Demo { port: port.to_string(), login: "demo:demo@demo-target@127.0.0.1".into(), askpass: askpass(dir), _child: child }
    }

    /// An OpenSSH client (`ssh`, `sftp`, `scp`) pointed at the demo's port with
    /// `port_flag`, answering its password through askpass; the destination is the
    /// caller's.
    pub(crate) fn client(&self, program: &str, port_flag: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(SSH_OPTS)
            .args([port_flag, &self.port])
            .env("SSH_ASKPASS", &self.askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0");
        cmd
    }

    /// The demo's process id.
    pub(crate) fn pid(&self) -> u32 {
        self._child.0.id()
    }

    /// `ssh` to the printed login; the remote command, if any, is the caller's.
    pub(crate) fn ssh(&self) -> Command {
        let mut cmd = self.client("ssh", "-p");
        cmd.arg(&self.login);
        cmd
    }
}

/// A program in `dir` that answers the demo's password prompt.
fn askpass(dir: &Path) -> PathBuf {
    let path = dir.join("askpass");
    std::fs::write(&path, "#!/bin/sh\necho demo\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    path
}

/// The real asciinema CLI from the test virtualenv.
pub(crate) fn asciinema() -> PathBuf {
    let venv = std::env::var_os("GATEHOUSE_TEST_PYTHON")
        .map(|p| PathBuf::from(p).with_file_name("asciinema"))
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/gatehouse/venv/bin/asciinema"));
    assert!(venv.exists(), "asciinema CLI missing at {}: run `bash scripts/test.sh`", venv.display());
    venv
}

/// `asciinema cat FILE`: the terminal output asciinema itself reads from the file.
pub(crate) fn asciinema_cat(file: &Path) -> Vec<u8> {
    let out = Command::new(asciinema()).arg("cat").arg(file).output().unwrap();
    assert!(out.status.success(), "asciinema cat {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}
