//! End to end: `gatehouse demo` (proxy, recorder, live indexer) with a real `ssh -tt`
//! client typing into a real bash through the proxy; `gatehouse search`, another process,
//! finds the command within 2 s of Enter. An exec request (`ssh host CMD`) is searchable too,
//! and a failed login reaches the `events` table while serve runs.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{BIN, Demo, Kill, walk};

/// Hits of `gatehouse search --json QUERY --kind command` as their texts.
fn search(data: &Path, query: &str) -> Vec<String> {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["search", "--json", "--kind", "command", "--", query])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_command_typed_through_the_proxy_is_searchable_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let demo = Demo::start(dir.path(), Some(&home));

    // An exec request is indexed as a command when its session ends.
    let out = demo.ssh().arg("echo exec-marker-$((40+2))").stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("exec-marker-42"));

    // An interactive shell in a PTY.
    let shell_started = Instant::now();
    let mut client = demo.ssh()
        .arg("-tt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let _client = Kill(client);
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !seen.lock().unwrap().contains(text) {
            assert!(Instant::now() < deadline, "never saw {text:?} in: {}", seen.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    stdin.write_all(b"echo ready-$((1+1))\r").unwrap();
    wait_for("ready-2");
    // The session started after `shell_started` and before this.
    let ready = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // Typed key by key, as a person would.
    for b in b"echo live-e2e-marker-$((6*7))" {
        stdin.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    stdin.write_all(b"\r").unwrap();
    let enter = Instant::now();
    wait_for("live-e2e-marker-42");
    loop {
        if search(&data, "live-e2e-marker").contains(&"echo live-e2e-marker-$((6*7))".to_string()) {
            break;
        }
        if enter.elapsed() >= Duration::from_secs(2) {
            std::thread::sleep(Duration::from_secs(2));
            let all = Command::new(BIN).arg("--data-dir").arg(&data).args(["search", "--json", "-s", "e", "--limit", "30"]).output().unwrap();
            panic!(
                "not searchable 2 s after Enter; index holds:\n{}\n{}\nscreen: {:?}",
                String::from_utf8_lossy(&all.stdout),
                String::from_utf8_lossy(&all.stderr),
                seen.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("searchable {:?} after Enter", enter.elapsed());

    // A failed login reaches the events table while serve runs (a control-plane part).
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "#!/bin/sh\necho not-the-password\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = demo.ssh().env("SSH_ASKPASS", &wrong).arg("true").stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "a wrong password was accepted");
    let events = data.join("store/tables/events");
    let python = std::env::var("GATEHOUSE_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/gatehouse/venv/bin/python", std::env::var("HOME").unwrap()));
    let read = "import sys, pyarrow.parquet as pq\nfor f in sys.argv[1:]:\n    print([(r['kind'], r['outcome'], r['user'], r['source']) for r in pq.read_table(f).to_pylist()])";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let parts: Vec<_> = walk(&events).into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("cp-")).collect();
        let out = Command::new(&python).args(["-c", read]).args(&parts).output().unwrap();
        let rows = String::from_utf8_lossy(&out.stdout);
        if rows.contains("('auth', 'failure', 'demo', 'control-plane')") {
            break;
        }
        assert!(Instant::now() < deadline, "no failed login in the events parts: {rows} {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(250));
    }

    // While it runs, `sessions` lists the shell as live, running for as long as it has.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(ready.elapsed()));
    let before = ready.elapsed().as_secs();
    let out = Command::new(BIN).arg("--data-dir").arg(&data).args(["sessions", "--state", "live"]).output().unwrap();
    let after = shell_started.elapsed().as_secs();
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{table}");
    let duration = rows[0].split_whitespace().nth(3).unwrap();
    let secs = duration.split(':').fold(0, |acc, part| acc * 60 + part.parse::<u64>().unwrap());
    assert!(secs + 1 >= before && secs <= after, "running {before}-{after} s, listed as {duration}: {table}");

    stdin.write_all(b"exit\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !search(&data, "exec-marker").contains(&"echo exec-marker-$((40+2))".to_string()) {
        assert!(Instant::now() < deadline, "the exec command was not indexed");
        std::thread::sleep(Duration::from_millis(100));
    }
}
