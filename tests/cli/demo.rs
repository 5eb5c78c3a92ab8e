//! `gatehouse demo` on a machine without sshd: the built-in demo target, the printed
//! command and password work, and the session is recorded.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_prints_a_command_that_works_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["demo", "--ssh-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let _guard = Kill(child);
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
    let words: Vec<&str> = command.split_whitespace().collect();
    let (port, login) = (words[2], words[3]);
    let askpass = dir.path().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho demo\n").unwrap();
    std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args(["-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-p", port, login])
        .arg("echo demo-$((20+22))")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
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

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
