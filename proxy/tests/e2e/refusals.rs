//! What a user sees when gatehouse says no, and what is (or is not) recorded.

use std::time::Duration;

use gatehouse_fixtures::{Sshd, SshdOptions};
use gatehouse_proxy::control::Allowances;

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_then_lockout() {
    let w = world().await;
    let out = run(w.ssh_password("alice@web-01", "wrong", &["true"]), T).await;
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("Permission denied"), "{}", text(&out.stderr));
    // Four more failures reach the default limit (5 in 10 minutes)...
    for _ in 0..4 {
        run(w.ssh_password("alice@web-01", "wrong", &["true"]), T).await;
    }
    // ...after which even the right password is refused.
    let out = run(w.ssh_password("alice@web-01", ALICE_PASSWORD, &["echo in"]), T).await;
    assert_eq!(out.status.code(), Some(255), "locked out: {}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("in"));
    let locks = w.control.lockouts().unwrap();
    assert!(!locks.is_empty(), "the lockout is listed");
    assert!(w.sessions().await.is_empty(), "nothing was recorded for refused logins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_target_and_target_down_tell_the_user() {
    let w = world().await;
    let out = run(w.ssh("alice@no-such-target", &["true"]), T).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("gatehouse:") && err.contains("no-such-target"), "{err}");

    let free = gatehouse_fixtures::sshd::free_port().unwrap();
    add_target(&w.control, "down-01", free, &w.sshd, Allowances::default());
    let out = run(w.ssh("alice@down-01", &["true"]), T).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unreachable") && err.contains(&free.to_string()), "{err}");
    let m = w.recorded(|m| m.meta.target.as_deref() == Some("down-01")).await;
    assert!(m.end_reason.as_deref().unwrap_or("").starts_with("target-unreachable"), "{:?}", m.end_reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_target_host_key_is_refused_loudly() {
    let w = world().await;
    let mut first = Sshd::start().unwrap();
    let port = first.port();
    add_target(&w.control, "hk-01", port, &first, Allowances::default());
    let out = run(w.ssh("alice@hk-01", &["echo pinned"]), T).await;
    assert_eq!(text(&out.stdout).trim(), "pinned", "first use pins: {}", text(&out.stderr));
    first.stop();
    // The same address now answers with another host key.
    let _second = Sshd::start_with(SshdOptions { port: Some(port), ..Default::default() }).unwrap();
    let out = run(w.ssh("alice@hk-01", &["echo should-not-run"]), T).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains("should-not-run"));
    let err = text(&out.stderr);
    assert!(err.contains("HOST KEY CHANGED") && err.contains("SHA256:"), "{err}");
    let m = w.recorded(|m| m.meta.target.as_deref() == Some("hk-01") && m.end_reason.as_deref().is_some_and(|r| r.starts_with("host-key"))).await;
    assert_eq!(m.bytes_out, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forwarding_is_refused_by_default() {
    let w = world().await;
    // -W is what -J does: a direct-tcpip channel.
    let out = run(w.ssh("alice@web-01", &["-W", &format!("127.0.0.1:{}", w.sshd.port())]), T).await;
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("forwarding failed") || err.contains("prohibited"), "{err}");
    let out = run(w.ssh("alice@web-01", &["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "echo should-not-run"]), T).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("forwarding failed"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("should-not-run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_a_session_that_cannot_be_recorded() {
    // A spool too small for even one segment: the recorder refuses new sessions.
    let w = world_with(|_| {}, |r| r.with_spool_limit(1)).await;
    let marker = w.sshd.dir().join("must-not-exist");
    let out = run(w.ssh("alice@web-01", &[&format!("touch {}", marker.display())]), T).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot be recorded") && err.contains("fail-closed"), "{err}");
    assert!(!marker.exists(), "the command never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_second_factor_through_keyboard_interactive() {
    let w = world().await;
    let enrollment = w.control.enroll_totp("alice").unwrap();
    let totp = totp_rs::Totp::from_url(&enrollment.uri).unwrap();
    let code = totp.generate_current().to_string();
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in *erification*) echo '{code}';; *) echo '{ALICE_PASSWORD}';; esac\n"
    );
    let out = run(w.ssh_askpass("alice@web-01", &script, &["echo mfa-ok"]), T).await;
    assert_eq!(text(&out.stdout).trim(), "mfa-ok", "{}", text(&out.stderr));
    let m = w.recorded(|m| m.meta.mfa.is_some()).await;
    assert_eq!(m.meta.mfa.as_deref(), Some("totp"));
    assert_eq!(m.meta.auth_method.as_deref(), Some("password"));

    // The password alone is not enough.
    let out = run(w.ssh_password("alice@web-01", ALICE_PASSWORD, &["echo no"]), T).await;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forwarding_allowed_by_policy_is_audited() {
    let w = world().await;
    let allow = Allowances { port_forward: true, ..Default::default() };
    add_target(&w.control, "fwd-01", w.sshd.port(), &w.sshd, allow);
    // -W (what -J does) through fwd-01 to the target's own sshd: its banner comes back.
    let to = format!("127.0.0.1:{}", w.sshd.port());
    let out = run(w.ssh("alice@fwd-01", &["-W", &to]), T).await;
    assert!(text(&out.stdout).starts_with("SSH-2.0-OpenSSH"), "{} / {}", text(&out.stdout), text(&out.stderr));
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("direct-tcpip")).await;
    assert_eq!(m.meta.command.as_deref(), Some(to.as_str()));
    assert_eq!(m.meta.user.as_deref(), Some("alice"));
    let frames = w.frames(&m).await;
    let ev = events(&frames);
    assert!(ev.iter().any(|(k, d)| k == "tunnel.open" && d["to"] == to.as_str()), "{ev:?}");
    let close = ev.iter().find(|(k, _)| k == "tunnel.close").expect("tunnel.close event");
    assert_eq!(close.1["bytes_out"].as_u64(), Some(out.stdout.len() as u64));
    assert!(close.1["duration_ms"].is_u64());
    assert!(bytes_of(&frames, true).is_empty(), "tunnel bytes are counted, not stored");
    // web-01 still refuses.
    let out = run(w.ssh("alice@web-01", &["-W", &to]), T).await;
    assert!(!text(&out.stdout).contains("SSH-2.0"));
}
