//! When something gives way mid-setup or mid-session: a target that refuses a request, a
//! client that vanishes, a recording that fails. Nothing may hang, and every session ends
//! recorded with the reason.

use std::time::{Duration, Instant};

use gatehouse_fixtures::{Sshd, SshdOptions};
use gatehouse_proxy::control::Allowances;

use crate::harness::*;

const T: Duration = Duration::from_secs(60);
/// A refusal must reach the user this fast (the target answers at once).
const PROMPT: Duration = Duration::from_secs(15);

/// `sshd` without `Subsystem sftp`: scp (SFTP mode) and sftp through gatehouse exit at once
/// with an error naming the refusal, and the recording says the target refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_refusing_sftp_ends_scp_and_sftp_promptly() {
    let w = world().await;
    let nosftp = Sshd::start_with(SshdOptions { no_sftp: true, ..Default::default() }).unwrap();
    add_target(&w.control, "nosftp-01", nosftp.port(), &nosftp, Allowances::default());
    let src = w.dir.path().join("f.txt");
    std::fs::write(&src, "payload\n").unwrap();
    let login = format!("alice:{}@nosftp-01", nosftp.account());

    let mut scp = std::process::Command::new("scp");
    scp.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port()]);
    scp.args(["-o", &format!("User={login}")]).arg(&src).arg(format!("127.0.0.1:{}/f.txt", nosftp.dir().display()));
    let started = Instant::now();
    let out = run(scp, PROMPT).await;
    assert!(!out.status.success(), "scp cannot succeed without sftp on the target");
    let err = text(&out.stderr);
    assert!(err.contains("subsystem") && err.contains("refused"), "the user is told why: {err}");
    assert!(started.elapsed() < PROMPT);
    assert!(!nosftp.dir().join("f.txt").exists());

    let mut sftp = std::process::Command::new("sftp");
    sftp.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port(), "-b", "-"]);
    sftp.args(["-o", &format!("User={login}"), "127.0.0.1"]);
    let out = run(sftp, PROMPT).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refused"), "{}", text(&out.stderr));

    let m = w.recorded(|m| m.meta.target.as_deref() == Some("nosftp-01")).await;
    assert_eq!(m.meta.channel.as_deref(), Some("sftp"));
    assert_eq!(m.end_reason.as_deref(), Some("target-refused"));
}

/// Within this long of a client vanishing, its session must be over and recorded.
const GONE: Duration = Duration::from_secs(10);

/// Waits until `cond` holds (polling), failing with `what` after `limit`.
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `kill -9` of the user's ssh in the middle of an interactive shell: the session ends as a
/// client disconnect within seconds, the target side is closed, the recording is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_shell_ends_the_session() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut term = w.ssh_pty(&login, 80, 24);
    term.send(b"echo alive-$((2*21))\r");
    term.expect("alive-42", T);
    let live = w.live_session(T, |s| s.meta.channel.as_deref() == Some("shell")).await;
    kill9(term.pid());
    let m = w.recorded_within(GONE, |m| m.id == live.id).await;
    assert_eq!(m.end_reason.as_deref(), Some("client-disconnect"));
    assert!(text(&bytes_of(&w.frames(&m).await, true)).contains("alive-42"), "what was shown is kept");
    assert!(w.proxy.registry().list().is_empty(), "no longer listed as live");
    eventually(GONE, "the target's session processes are gone", || children(w.sshd.pid()).is_empty()).await;
}

/// `kill -9` of scp's ssh in the middle of an upload: same, for an SFTP session with data
/// in flight both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_transfer_ends_the_session() {
    let w = world().await;
    let src = w.dir.path().join("big.bin");
    random_file(&src, 16 * 1024 * 1024);
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut scp = std::process::Command::new("scp");
    // -l: 4 Mbit/s, so the 16 MiB upload is still running when the client is killed.
    scp.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-l", "4000", "-P", &w.port()]);
    scp.args(["-o", &format!("User={login}")]).arg(&src).arg(format!("127.0.0.1:{}/big.bin", w.sshd.dir().display()));
    scp.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut scp = scp.spawn().unwrap();
    let live = w.live_session(T, |s| s.meta.channel.as_deref() == Some("sftp") && s.bytes_in > 256 * 1024).await;
    let ssh = children(scp.id());
    assert_eq!(ssh.len(), 1, "scp runs one ssh");
    kill9(ssh[0]);
    let m = w.recorded_within(GONE, |m| m.id == live.id).await;
    assert_eq!(m.end_reason.as_deref(), Some("client-disconnect"));
    assert!(m.bytes_in < 16 * 1024 * 1024, "the upload was cut short: {}", m.bytes_in);
    eventually(GONE, "the target's session processes are gone", || children(w.sshd.pid()).is_empty()).await;
    let _ = scp.wait();
}

/// A target that accepts TCP but never speaks SSH (a black hole): a user who gives up
/// (`kill -9`) while gatehouse waits for it ends the session at once, not at the connect
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_while_the_target_is_silent_ends_the_session() {
    let w = world_with(|c| c.connect_timeout = Duration::from_secs(120), |r| r).await;
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    add_target(&w.control, "hole-01", hole.local_addr().unwrap().port(), &w.sshd, Allowances::default());
    let mut ssh = w.ssh("alice@hole-01", &["echo never"]);
    ssh.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut ssh = ssh.spawn().unwrap();
    // The proxy has connected to the hole once it shows up in the listener's queue.
    hole.set_nonblocking(true).unwrap();
    let mut held = Vec::new();
    eventually(T, "gatehouse connects to the target", || match hole.accept() {
        Ok((s, _)) => {
            held.push(s);
            true
        }
        Err(_) => false,
    })
    .await;
    kill9(ssh.id());
    let _ = ssh.wait();
    let m = w.recorded_within(GONE, |m| m.meta.target.as_deref() == Some("hole-01")).await;
    assert_eq!(m.end_reason.as_deref(), Some("client-disconnect"));
    drop(held);
}
