//! What a session carries besides its bytes: environment variables (allow-list), signals
//! both ways (a client's `signal` request, a terminal's Ctrl-C, exit by signal), and the
//! menu's handling of keystrokes typed in the same packet as the Enter that picks a target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::keys::PrivateKeyWithHashAlg;
use russh::{ChannelMsg, Sig, client};

use gatehouse_proxy::control::{Credential, NewTarget};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_variables_outside_the_allow_list_are_dropped() {
    let w = world_with(|c| c.env_allow = vec!["LANG".into(), "GH_PASS*".into()], |r| r).await;
    let probe = "echo \"L=$LANG P=$GH_PASS1 D=$GH_DROP C=$LC_DROP\"";
    let with_env = |mut c: std::process::Command| {
        c.env("LANG", "C.UTF-8").env("GH_PASS1", "yes").env("GH_DROP", "dropme").env("LC_DROP", "dropme2");
        c
    };
    let send = ["-o", "SendEnv=LANG GH_PASS1 GH_DROP LC_DROP"];
    let login = format!("alice:{}@web-01", w.sshd.account());
    let out = run(with_env(w.ssh(&login, &[send[0], send[1], probe])), T).await;
    assert_eq!(text(&out.stdout).trim(), "L=C.UTF-8 P=yes D= C=", "{}", text(&out.stderr));

    // The target itself accepts all four (AcceptEnv LANG LC_* GH_*): gatehouse dropped two.
    let mut direct = std::process::Command::new("ssh");
    direct.args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]);
    direct.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i"]).arg(w.sshd.client_key_path());
    direct.args(["-p", &w.sshd.port().to_string(), &format!("{}@127.0.0.1", w.sshd.account())]);
    direct.args([send[0], send[1], probe]).stdin(std::process::Stdio::null());
    let out = run(with_env(direct), T).await;
    assert_eq!(text(&out.stdout).trim(), "L=C.UTF-8 P=yes D=dropme C=dropme2", "{}", text(&out.stderr));
}

/// The remote command dies of a signal: the client sees what it sees from the target
/// directly (OpenSSH exits 255 on `exit-signal`), the recording says which signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_by_signal_reaches_the_client_and_the_recording() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let out = run(w.ssh(&login, &["echo before; kill -TERM $$"]), T).await;
    assert_eq!(text(&out.stdout).trim(), "before");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("exec")).await;
    assert_eq!(m.end_reason.as_deref(), Some("signal: TERM"));
    assert_eq!(m.exit_status, None);
    let ev = events(&w.frames(&m).await);
    assert!(ev.iter().any(|(k, d)| k == "exit" && d["signal"] == "TERM"), "{ev:?}");
}

/// Ctrl-C on the user's terminal interrupts a long `sleep` on the target (the byte goes
/// through; the target's terminal makes it SIGINT), and nothing is left running there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_a_terminal_interrupts_the_remote_command() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut args = w.ssh_opts();
    args.extend(["-o", "BatchMode=yes", "-tt", "-p"].iter().map(|s| s.to_string()));
    args.push(w.port());
    args.push(format!("{login}@127.0.0.1"));
    args.push("echo started-$((5*5)); sleep 600; echo not-reached".into());
    let mut term = pty::PtyChild::spawn("ssh", &args, 80, 24);
    term.expect("started-25", T);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    term.send(b"\x03");
    let status = term.wait(T);
    assert!(started.elapsed() < Duration::from_secs(20), "the interrupt ended it");
    assert_eq!(status, Some(255), "exit-signal, as OpenSSH shows it: {}", term.seen());
    assert!(!term.seen().contains("not-reached"));
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("exec")).await;
    assert_eq!(m.end_reason.as_deref(), Some("signal: INT"));
    assert!(bytes_of(&w.frames(&m).await, false).contains(&3u8), "the Ctrl-C is recorded as input");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children(w.sshd.pid()).is_empty() {
        assert!(Instant::now() < deadline, "the target's sleep is gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// `login` (alice's) through gatehouse with russh as the client.
async fn russh_login(w: &World, login: &str) -> client::Handle<AnyHostKey> {
    let mut h = client::connect(Arc::new(client::Config::default()), w.addr, AnyHostKey).await.unwrap();
    let key = russh::keys::load_secret_key(&w.alice_key, None).unwrap();
    let auth = h.authenticate_publickey(login, PrivateKeyWithHashAlg::new(Arc::new(key), None)).await.unwrap();
    assert!(auth.success());
    h
}

/// A client that closes its channel (and keeps its connection) while a command runs on
/// a terminal: the session ends at once as the user's doing, and the target's process
/// goes with its terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_close_mid_command_ends_the_session_and_the_remote_process() {
    let w = world().await;
    let h = russh_login(&w, &format!("alice:{}@web-01", w.sshd.account())).await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.request_pty(false, "xterm", 80, 24, 0, 0, &[]).await.unwrap();
    ch.exec(true, "echo sleeping; sleep 600").await.unwrap();
    let mut out = Vec::new();
    while !text(&out).contains("sleeping") {
        if let ChannelMsg::Data { data } = tokio::time::timeout(T, ch.wait()).await.expect("output").expect("channel open") {
            out.extend_from_slice(&data);
        }
    }
    let live = w.live_session(T, |s| s.meta.channel.as_deref() == Some("exec")).await;
    ch.close().await.unwrap();
    let m = w.recorded_within(Duration::from_secs(10), |m| m.id == live.id).await;
    assert_eq!(m.end_reason.as_deref(), Some("client-disconnect"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children(w.sshd.pid()).is_empty() {
        assert!(Instant::now() < deadline, "the target's sleep is gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection itself is still good for another session.
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, "echo again").await.unwrap();
    let mut out = Vec::new();
    while let Some(msg) = tokio::time::timeout(T, ch.wait()).await.expect("answer") {
        if let ChannelMsg::Data { data } = msg {
            out.extend_from_slice(&data);
        }
    }
    assert_eq!(text(&out), "again\n");
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "en").await;
}

/// Regression: russh (on gatehouse's side) forgets a channel once it has sent its close
/// and never reports the peer's answering close; a client that answers only then (russh
/// does; OpenSSH usually closes first) kept the session live, and its recording open,
/// for the 5 s gatehouse waits for a silent client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_the_close_late_does_not_keep_the_session_live() {
    let w = world().await;
    let h = russh_login(&w, &format!("alice:{}@web-01", w.sshd.account())).await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, "echo done; exit 3").await.unwrap();
    let (mut out, mut status) = (Vec::new(), None);
    while let Some(msg) = tokio::time::timeout(T, ch.wait()).await.expect("the session ends") {
        match msg {
            ChannelMsg::Data { data } => out.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    let closed = Instant::now();
    assert_eq!((text(&out).as_str(), status), ("done\n", Some(3)));
    let m = w.recorded_within(Duration::from_secs(4), |m| m.meta.channel.as_deref() == Some("exec")).await;
    assert_eq!(m.end_reason.as_deref(), Some("exit"), "the target ended it, not the user");
    assert!(closed.elapsed() < Duration::from_secs(4));
    assert!(w.proxy.registry().list().is_empty(), "no longer live");
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "en").await;
}

/// What became of `exec sleep` after a `signal` request.
#[derive(Debug)]
struct Signalled {
    exit_signal: Option<String>,
    exit_status: Option<u32>,
    /// From the request to the exit.
    took: Option<Duration>,
}

/// Runs `exec sleep 25` on `ch`, sends `USR1` once it runs, and waits (up to 15 s) for
/// the channel to end.
async fn signal_sleep(mut ch: russh::Channel<client::Msg>) -> Signalled {
    ch.exec(true, "echo sleeping; exec sleep 25").await.unwrap();
    let mut out = Vec::new();
    let mut r = Signalled { exit_signal: None, exit_status: None, took: None };
    let mut sent = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(msg)) = tokio::time::timeout(left, ch.wait()).await else { break };
        match msg {
            ChannelMsg::Data { data } => {
                out.extend_from_slice(&data);
                if text(&out).contains("sleeping") && sent.is_none() {
                    // Give the shell a moment to exec sleep.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    ch.signal(Sig::USR1).await.unwrap();
                    sent = Some(Instant::now());
                }
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                r.exit_signal = Some(format!("{signal_name:?}"));
                r.took = sent.map(|t| t.elapsed());
            }
            ChannelMsg::ExitStatus { exit_status } => r.exit_status = Some(exit_status),
            _ => {}
        }
    }
    // Answer the target's close (russh leaves that to its user).
    let _ = ch.close().await;
    r
}

/// A local account for the signal test: OpenSSH's sshd delivers `signal` requests only
/// to privilege-separated sessions, which a root login is not.
const SIG_ACCOUNT: &str = "gatehouse-sig";
const SIG_PASSWORD: &str = "gatehouse-sig-pw-7";

/// A client's `signal` request (OpenSSH's client never sends one; other clients and
/// libraries do) reaches the target's process: russh as the client here, first straight
/// to the target (what it does there), then through gatehouse (the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_request_reaches_the_remote_process() {
    let w = world().await;
    gatehouse_fixtures::sshd::ensure_user(SIG_ACCOUNT, SIG_PASSWORD).unwrap();
    let mut direct = client::connect(Arc::new(client::Config::default()), w.sshd.addr(), AnyHostKey).await.unwrap();
    assert!(direct.authenticate_password(SIG_ACCOUNT, SIG_PASSWORD).await.unwrap().success());
    let there = signal_sleep(direct.channel_open_session().await.unwrap()).await;
    assert_eq!(there.exit_signal.as_deref(), Some("USR1"), "the target honours signal requests: {there:?} {}", w.sshd.log());

    w.control
        .add_target(&NewTarget {
            name: "sig-01".into(),
            host: "127.0.0.1".into(),
            port: w.sshd.port(),
            labels: Default::default(),
            default_account: Some(SIG_ACCOUNT.into()),
            allow: Default::default(),
            host_key: None,
            accounts: vec![(SIG_ACCOUNT.into(), Credential::Password(SIG_PASSWORD.to_string().into()))],
        })
        .unwrap();
    let h = russh_login(&w, "alice@sig-01").await;
    let through = signal_sleep(h.channel_open_session().await.unwrap()).await;
    assert_eq!(through.exit_signal.as_deref(), Some("USR1"), "through gatehouse: {through:?}");
    assert_eq!(through.exit_status, None);
    assert!(through.took.unwrap() < Duration::from_secs(10));
    // russh answers the target's close only after gatehouse's close reached it, and russh
    // (on gatehouse's side) never reports such an answer: the session must be over anyway,
    // well before the 5 s gatehouse would give a client that never answers.
    let m = w.recorded_within(Duration::from_secs(4), |m| m.meta.target.as_deref() == Some("sig-01")).await;
    assert_eq!(m.end_reason.as_deref(), Some("signal: USR1"));
    assert!(w.proxy.registry().list().is_empty(), "no longer live");
    let ev = events(&w.frames(&m).await);
    assert!(ev.iter().any(|(k, d)| k == "signal" && d["signal"] == "USR1"), "the request is recorded: {ev:?}");
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    let _ = direct.disconnect(russh::Disconnect::ByApplication, "", "en").await;
}

/// `ssh alice@gatehouse` (no target) opens the menu; a choice and a command typed in one
/// write (pasted, or typed faster than the round trip) both count: the command runs on
/// the chosen target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_keeps_keystrokes_in_the_same_packet_as_the_choice() {
    let w = world().await;
    let mut term = w.ssh_pty("alice", 80, 24);
    term.expect("Choose a number", T);
    term.send(b"1\recho typed-$((6*7))\r");
    term.expect("typed-42", T);
    term.send(b"exit 4\r");
    assert_eq!(term.wait(T), Some(4), "{}", term.seen());
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("shell")).await;
    assert_eq!(m.meta.target.as_deref(), Some("web-01"));
    let frames = w.frames(&m).await;
    let input = text(&bytes_of(&frames, false));
    assert!(input.starts_with("echo typed-$((6*7))\r"), "what followed the choice is the session's first input: {input:?}");
    assert!(text(&bytes_of(&frames, true)).contains("typed-42"));

    // Typed right after the choice, while gatehouse is still reaching the target: held.
    let mut term = w.ssh_pty("alice", 80, 24);
    term.expect("Choose a number", T);
    term.send(b"web-01\r");
    term.send(b"echo ahead-$((7*6))\rexit 5\r");
    term.expect("ahead-42", T);
    assert_eq!(term.wait(T), Some(5), "{}", term.seen());
}
