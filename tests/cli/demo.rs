//! `gatehouse demo` on a machine without sshd: the built-in demo target, the printed
//! command and password work, and the session is recorded.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Demo, gatehouse, walk};

#[test]
fn demo_prints_a_command_that_works_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), None);
    let out = demo.ssh().arg("echo demo-$((20+22)); exit 3").stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo-42"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "the command's exit status reaches the user");
    // The session reached the store (sessions/YYYY/MM/DD/<id>/manifest.json).
    let store = dir.path().join("data/store/sessions");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Its final manifest, that is: the one written at the start says `live`.
    let ended = |p: &std::path::PathBuf| {
        let m: serde_json::Value = std::fs::read(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        !m["ended_at"].is_null()
    };
    let manifest = loop {
        if let Some(m) = walk(&store).into_iter().find(|p| p.ends_with("manifest.json") && ended(p)) {
            break m;
        }
        assert!(Instant::now() < deadline, "no recording under {}", store.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    // The auditor's view of it: the command run, with the status it ended with.
    let id = manifest.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    let out = gatehouse(&dir.path().join("data"), &["commands", &id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["command"], "echo demo-$((20+22)); exit 3");
    assert_eq!(records[0]["kind"], "shell");
    assert_eq!(records[0]["exit"], 3);
    assert!(records[0]["t_end"].as_f64().unwrap() >= records[0]["t"].as_f64().unwrap(), "{:?}", records[0]);
    // And the session list says who, where, from where, how it ended and what ran.
    let out = gatehouse(&dir.path().join("data"), &["sessions"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} listed:\n{table}"));
    let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    let header: Vec<&str> = table.lines().next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    let at = |name: &str| cells[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name} in {header:?}"))];
    assert_eq!(at("USER"), "demo", "{row}");
    assert_eq!(at("ACCOUNT@TARGET"), "demo@demo-target", "{row}");
    assert_eq!(at("FROM"), "127.0.0.1", "{row}");
    assert_eq!(at("END"), "exit 3", "{row}");
    assert_eq!(at("WHAT"), "exec echo demo-$((20+22)); exit 3", "{row}");
}

#[test]
fn demo_keeps_running_when_its_stdout_is_closed() {
    // As with `gatehouse demo | head -1` once head has gone: every write to stdout fails.
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start_with_closed_stdout(dir.path());
    let out = demo.ssh().arg("echo still-$((40+2))").stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("still-42"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn demo_takes_gatehouse_variables_from_the_environment() {
    // Where it listens, and an idle timeout that ends an unattended terminal.
    let port = gatehouse_fixtures::sshd::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    // A home without rc files: a shell ended while this machine's ~/.bashrc runs (pyenv's
    // rehash, say) could leave a stale lock behind for every later shell.
    let home = tempfile::tempdir().unwrap();
    let env = [("GATEHOUSE_SSH_LISTEN", listen.as_str()), ("GATEHOUSE_SSH_IDLE_TIMEOUT", "2s")];
    let demo = Demo::start_with(dir.path(), Some(home.path()), &env);
    assert_eq!(demo.port, port.to_string(), "the printed command uses GATEHOUSE_SSH_LISTEN");

    // A terminal nobody types into (its stdin stays open, silent) ends after 2 s.
    let mut ssh = demo.ssh().arg("-tt").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let _stdin = ssh.stdin.take();
    let out = loop {
        if ssh.try_wait().unwrap().is_some() {
            break ssh.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the idle terminal was not ended");
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("gatehouse: session terminated: idle timeout: no input for 2 s"), "{said}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Its password is public: an address off loopback must be asked for on the command line.
    let out = gatehouse(dir.path(), &["demo"]).env("GATEHOUSE_SSH_LISTEN", "0.0.0.0:0").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("loopback only") && err.contains("--ssh-listen 0.0.0.0:0"), "{err}");
}

/// The demo's child processes (its target's shells).
fn children(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .flat_map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default().split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_shell_its_user_left_is_hung_up_and_the_demo_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A home without rc files: see above.
    let home = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), Some(home.path()));
    let pid = demo.pid();
    // Two shells at once, so that each could inherit the other's terminal.
    let mut clients: Vec<_> = (0..2)
        .map(|_| demo.ssh().arg("-tt").stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while children(pid).len() < 2 {
        assert!(Instant::now() < deadline, "the demo target started no shells: {:?}", children(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    // The users vanish (their clients killed): the target hangs their shells up.
    for c in &mut clients {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !children(pid).is_empty() {
        assert!(Instant::now() < deadline, "shells left behind: {:?}", children(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the demo stops when asked, not waiting forever on a terminal read, even with a
    // user still connected.
    let mut still = demo.ssh().arg("-tt").stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while children(pid).is_empty() {
        assert!(Instant::now() < deadline, "the demo target started no shell");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "the demo did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = still.kill();
    let _ = still.wait();
}
