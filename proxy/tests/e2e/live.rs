//! The registry of live sessions, used directly: list, subscribe, inject, terminate.

use std::time::{Duration, Instant};

use gatehouse_recorder::FrameData;

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_subscribe_inject_and_terminate() {
    let w = world().await;
    let registry = w.proxy.registry().clone();
    assert!(registry.list().is_empty());
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut term = w.ssh_pty(&login, 90, 20);
    term.send(b"echo ready-$((3*3))\r");
    term.expect("ready-9", T);

    let live = registry.list();
    assert_eq!(live.len(), 1);
    let s = &live[0];
    assert_eq!(s.meta.user.as_deref(), Some("alice"));
    assert_eq!(s.meta.target.as_deref(), Some("web-01"));
    assert_eq!(s.meta.channel.as_deref(), Some("shell"));
    assert!(s.bytes_out > 0);

    // A subscriber sees what happens from now on.
    let mut tap = registry.subscribe(s.id).expect("subscribe");
    term.send(b"echo typed-$((4*4))\r");
    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("typed-16") {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, tap.recv()).await.expect("tap delivers").expect("tap open");
        if let FrameData::Output(b) = frame.data {
            seen.extend_from_slice(&b);
        }
    }

    // Injected input runs as if typed, and the user sees it.
    registry.inject(s.id, &b"echo injected-$((5*5))\r"[..]).unwrap();
    term.expect("injected-25", T);

    // Terminate: the user is told why, the client exits, the recording says so.
    registry.terminate(s.id, "maintenance window").unwrap();
    term.expect("maintenance window", T);
    term.wait(T);
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("shell")).await;
    assert_eq!(m.end_reason.as_deref(), Some("terminated: maintenance window"));
    let frames = w.frames(&m).await;
    assert!(events(&frames).iter().any(|(k, _)| k == "session.inject"));
    assert!(text(&bytes_of(&frames, false)).contains("echo injected-"), "injected input is recorded as input");
    assert!(registry.list().is_empty(), "gone from the registry once ended");
    assert!(registry.inject(s.id, &b"x"[..]).is_err());
}
