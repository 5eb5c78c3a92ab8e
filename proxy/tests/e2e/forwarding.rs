//! Forwarding a target's policy allows (`-R`, agent, X11): it works end to end with the
//! real OpenSSH client and sshd, and every tunnel is audited; without the allowance each
//! is refused with words for the user and an audit event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_fixtures::sshd::{free_port, keygen};
use gatehouse_fixtures::{Sshd, SshdOptions};
use gatehouse_proxy::control::{Allowances, AuditEvent, AuditKind, AuditOutcome};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

/// The control plane's forward events for `what` (`port forwarding`, ...) so far.
fn forward_events(w: &World, what: &str) -> Vec<AuditEvent> {
    let all = w.control.audit_events(time::OffsetDateTime::UNIX_EPOCH).unwrap();
    all.into_iter().filter(|e| e.kind == AuditKind::Forward && e.method.as_deref() == Some(what)).collect()
}

/// A tunnel's `tunnel.open` and `tunnel.close` events, from its recording.
async fn tunnel_events(w: &World, kind: &str, target: &str) -> (serde_json::Value, serde_json::Value) {
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some(kind) && m.meta.target.as_deref() == Some(target)).await;
    assert_eq!(m.meta.user.as_deref(), Some("alice"));
    assert_eq!(m.meta.source_addr.as_deref(), Some("127.0.0.1"));
    let frames = w.frames(&m).await;
    assert!(bytes_of(&frames, true).is_empty() && bytes_of(&frames, false).is_empty(), "tunnel bytes are counted, not stored");
    let ev = events(&frames);
    let open = ev.iter().find(|(k, _)| k == "tunnel.open").unwrap_or_else(|| panic!("tunnel.open in {ev:?}")).1.clone();
    let close = ev.iter().find(|(k, _)| k == "tunnel.close").unwrap_or_else(|| panic!("tunnel.close in {ev:?}")).1.clone();
    assert!(close["duration_ms"].is_u64(), "{close}");
    (open, close)
}

/// Writes an executable script that the target (an sshd on this machine) runs.
fn script(w: &World, name: &str, body: &str) -> PathBuf {
    let p = w.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/bash\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_allowed_by_policy_carries_data_both_ways_and_is_audited() {
    let w = world().await;
    add_target(&w.control, "rfwd-01", w.sshd.port(), &w.sshd, Allowances { port_forward: true, ..Default::default() });
    // The user's local service: answers one line with another.
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = local.local_addr().unwrap().port();
    let service = std::thread::spawn(move || {
        let (s, _) = local.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        (&s).write_all(b"pong-from-client\n").unwrap();
        line
    });
    let rport = free_port().unwrap();
    // On the target: connect to the forwarded port, send a line, print the answer.
    let client = script(
        &w,
        "rfwd.sh",
        &format!(
            "for i in $(seq 50); do exec 3<>/dev/tcp/127.0.0.1/{rport} && break; sleep 0.1; done 2>/dev/null\n\
             printf 'ping-from-target\\n' >&3\nread -r line <&3\necho \"got:$line\"\n"
        ),
    );
    let spec = format!("127.0.0.1:{rport}:127.0.0.1:{local_port}");
    let out = run(w.ssh("alice@rfwd-01", &["-o", "ExitOnForwardFailure=yes", "-R", &spec, &client.display().to_string()]), T).await;
    assert_eq!(text(&out.stdout).trim(), "got:pong-from-client", "stderr: {}", text(&out.stderr));
    assert!(out.status.success());
    assert_eq!(service.join().unwrap(), "ping-from-target\n", "the target's bytes reach the user's service");

    let (open, close) = tunnel_events(&w, "forwarded-tcpip", "rfwd-01").await;
    assert!(open["to"].as_str().unwrap().contains(&rport.to_string()), "{open}");
    assert!(open["from"].as_str().unwrap().contains("127.0.0.1"), "{open}");
    // out: target → user ("ping..."), in: user → target ("pong...").
    assert_eq!(close["bytes_out"].as_u64(), Some(17), "{close}");
    assert_eq!(close["bytes_in"].as_u64(), Some(17), "{close}");
    let allowed = forward_events(&w, "port forwarding");
    assert!(
        allowed.iter().any(|e| e.outcome == AuditOutcome::Success
            && e.target.as_deref() == Some("rfwd-01")
            && e.user.as_deref() == Some("alice")
            && e.reason.contains(&rport.to_string())),
        "the listener is audited: {allowed:?}"
    );
    // The listener on the target goes away with the user's connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", rport)).is_ok() {
        assert!(Instant::now() < deadline, "the -R listener outlived the user's connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_refused_by_default_tells_the_user_and_is_audited() {
    let w = world().await;
    let rport = free_port().unwrap();
    let spec = format!("127.0.0.1:{rport}:127.0.0.1:9");
    // Without ExitOnForwardFailure the session runs, and gatehouse says why on stderr.
    let out = run(w.ssh("alice@web-01", &["-R", &spec, "echo ran"]), T).await;
    assert_eq!(text(&out.stdout).trim(), "ran");
    let err = text(&out.stderr);
    assert!(err.contains("gatehouse:") && err.contains("-R") && err.contains("refused by gatehouse policy"), "{err}");
    assert!(TcpStream::connect(("127.0.0.1", rport)).is_err(), "nothing listens on the target");
    let refused = forward_events(&w, "port forwarding");
    assert!(
        refused.iter().any(|e| e.outcome == AuditOutcome::Failure
            && e.target.as_deref() == Some("web-01")
            && e.user.as_deref() == Some("alice")
            && e.reason.contains(&rport.to_string())),
        "{refused:?}"
    );
}

/// An `ssh-agent` holding one key, killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        let agent = Agent { child, sock };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", &agent.sock).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "ssh-add");
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `SHA256:...` of a public key file.
fn fingerprint(pub_key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(pub_key).output().unwrap();
    text(&out.stdout).split_whitespace().nth(1).expect("fingerprint").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_forwarding_allowed_per_target_and_refused_by_default() {
    let w = world().await;
    add_target(&w.control, "agent-01", w.sshd.port(), &w.sshd, Allowances { agent: true, ..Default::default() });
    let key = keygen(&w.dir.path().join("agent_key")).unwrap();
    let fp = fingerprint(&key.with_extension("pub"));
    let agent = Agent::start(w.dir.path(), &key);
    let probe = "ssh-add -l; echo rc=$?";

    let mut c = w.ssh("alice@agent-01", &["-A", probe]);
    c.env("SSH_AUTH_SOCK", &agent.sock);
    let out = run(c, T).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&fp) && stdout.contains("rc=0"), "the target lists the client's key: {stdout} / {}", text(&out.stderr));
    let (open, close) = tunnel_events(&w, "auth-agent", "agent-01").await;
    assert_eq!(open["to"], "the user's agent");
    assert!(close["bytes_in"].as_u64().unwrap() > 0 && close["bytes_out"].as_u64().unwrap() > 0, "{close}");

    let mut c = w.ssh("alice@web-01", &["-A", probe]);
    c.env("SSH_AUTH_SOCK", &agent.sock);
    let out = run(c, T).await;
    let stdout = text(&out.stdout);
    assert!(!stdout.contains(&fp) && stdout.contains("rc=2"), "no agent on the target: {stdout}");
    let err = text(&out.stderr);
    assert!(err.contains("gatehouse: agent forwarding refused by gatehouse policy for web-01"), "{err}");
    let refused = forward_events(&w, "agent forwarding");
    assert!(
        refused.iter().any(|e| e.outcome == AuditOutcome::Failure && e.target.as_deref() == Some("web-01")),
        "{refused:?}"
    );
    assert!(!refused.iter().any(|e| e.target.as_deref() == Some("agent-01") && e.outcome == AuditOutcome::Failure));
    drop(agent);
}

/// A TCP "X display" the test owns: `DISPLAY=127.0.0.1:N` means port 6000+N.
fn x_display() -> (TcpListener, u16) {
    for n in 400..700u16 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", 6000 + n)) {
            return (l, n);
        }
    }
    panic!("no free X display port in 6400..6700");
}

/// Run on the target: opens `$DISPLAY` with the X11 setup packet carrying the cookie sshd
/// stored (OpenSSH's client checks it and swaps in the real one), prints what comes back.
const X11_CLIENT: &str = r#"
echo "display=$DISPLAY"
cookie=$(xauth list | awk '{print $3}' | tail -1)
port=$((6000 + $(echo "$DISPLAY" | sed 's/.*:\([0-9]*\).*/\1/')))
exec 3<>/dev/tcp/127.0.0.1/$port || exit 9
printf 'l\0\013\0\0\0\022\0\020\0\0\0MIT-MAGIC-COOKIE-1\0\0' >&3
printf "$(echo "$cookie" | sed 's/../\\x&/g')" >&3
echo "reply=$(head -c 9 <&3)"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_forwarding_reaches_the_clients_display_when_allowed_and_is_refused_by_default() {
    let w = world().await;
    let xauthority = w.dir.path().join("Xauthority");
    let opts = SshdOptions {
        extra_config: vec!["X11Forwarding yes".into()],
        env: vec![("XAUTHORITY".into(), xauthority.display().to_string())],
        ..Default::default()
    };
    let xsshd = Sshd::start_with(opts).unwrap();
    add_target(&w.control, "x11-01", xsshd.port(), &xsshd, Allowances { x11: true, ..Default::default() });
    add_target(&w.control, "x11-no", xsshd.port(), &xsshd, Allowances::default());
    let (display, n) = x_display();
    let server = std::thread::spawn(move || {
        let (mut s, _) = display.accept().unwrap();
        let mut setup = [0u8; 48];
        s.read_exact(&mut setup).unwrap();
        s.write_all(b"x-display").unwrap();
        setup
    });
    let client = script(&w, "x11.sh", X11_CLIENT);

    let mut c = w.ssh("alice@x11-01", &["-Y", &client.display().to_string()]);
    c.env("DISPLAY", format!("127.0.0.1:{n}")).env("XAUTHORITY", w.dir.path().join("client-Xauthority"));
    let out = run(c, T).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("reply=x-display"), "the display answered through the x11 channel: {stdout} / {}", text(&out.stderr));
    let setup = server.join().unwrap();
    assert_eq!(&setup[..4], b"l\0\x0b\0", "an X11 setup packet reached the display");
    assert_eq!(&setup[12..30], b"MIT-MAGIC-COOKIE-1");
    let (open, close) = tunnel_events(&w, "x11", "x11-01").await;
    assert_eq!(open["to"], "the user's X display");
    assert_eq!(close["bytes_out"].as_u64(), Some(48), "{close}");
    assert_eq!(close["bytes_in"].as_u64(), Some(9), "{close}");

    // The same sshd through a target without the allowance: no DISPLAY, the user is told.
    let mut c = w.ssh("alice@x11-no", &["-Y", "echo display=$DISPLAY."]);
    c.env("DISPLAY", format!("127.0.0.1:{n}")).env("XAUTHORITY", w.dir.path().join("client-Xauthority"));
    let out = run(c, T).await;
    assert_eq!(text(&out.stdout).trim(), "display=.", "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("gatehouse: X11 forwarding refused by gatehouse policy for x11-no"), "{err}");
    let refused = forward_events(&w, "X11 forwarding");
    assert!(refused.iter().any(|e| e.outcome == AuditOutcome::Failure && e.target.as_deref() == Some("x11-no")), "{refused:?}");
}
