//! `gatehouse demo` on a machine without sshd: the built-in demo target, the printed
//! command and password work, and the session is recorded.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Demo, walk};

#[test]
fn demo_prints_a_command_that_works_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), None);
    let out = demo.ssh().arg("echo demo-$((20+22))").stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo-42"), "{}", String::from_utf8_lossy(&out.stderr));
    // The session reached the store (sessions/YYYY/MM/DD/<id>/manifest.json).
    let store = dir.path().join("data/store/sessions");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = walk(&store).iter().any(|p| p.ends_with("manifest.json"));
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "no recording under {}", store.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_keeps_running_when_its_stdout_is_closed() {
    // As with `gatehouse demo | head -1` once head has gone: every write to stdout fails.
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start_with_closed_stdout(dir.path());
    let out = demo.ssh().arg("echo still-$((40+2))").stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("still-42"), "{}", String::from_utf8_lossy(&out.stderr));
}
