//! The cases where other bastions stall or hang: bulk data both ways at once, SFTP-mode
//! scp, and closing an exec channel right after a large output. Each runs several times
//! with a deadline per run; one stall or hang fails the test.

use std::time::Duration;

use crate::harness::*;

const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_both_ways_at_once_never_stalls() {
    let w = world().await;
    let big = w.dir.path().join("big.bin");
    random_file(&big, 24 * 1024 * 1024);
    let login = format!("alice:{}@web-01", w.sshd.account());
    for round in 0..ROUNDS {
        let out_path = w.dir.path().join(format!("echo-{round}.bin"));
        let mut c = w.ssh(&login, &["cat"]);
        c.stdin(std::fs::File::open(&big).unwrap());
        c.stdout(std::fs::File::create(&out_path).unwrap());
        let out = run_redirected(c, LIMIT).await;
        assert!(out.success(), "round {round}");
        assert_eq!(std::fs::read(&out_path).unwrap(), std::fs::read(&big).unwrap(), "round {round}: echo intact");
    }
    let all = w.sessions().await;
    assert!(all.iter().filter(|m| m.bytes_in == 24 * 1024 * 1024 && m.bytes_out == 24 * 1024 * 1024).count() >= ROUNDS - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_mode_scp_loop_never_stalls() {
    let w = world().await;
    let src = w.dir.path().join("scp.bin");
    random_file(&src, 16 * 1024 * 1024);
    let login = format!("alice:{}@web-01", w.sshd.account());
    for round in 0..ROUNDS {
        let remote = w.sshd.dir().join(format!("loop-{round}.bin"));
        let mut up = std::process::Command::new("scp");
        up.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port()]);
        up.args(["-o", &format!("User={login}")]).arg(&src).arg(format!("127.0.0.1:{}", remote.display()));
        let out = run(up, LIMIT).await;
        assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        let back = w.dir.path().join(format!("back-{round}.bin"));
        let mut down = std::process::Command::new("scp");
        down.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port()]);
        down.args(["-o", &format!("User={login}")]).arg(format!("127.0.0.1:{}", remote.display())).arg(&back);
        let out = run(down, LIMIT).await;
        assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
        std::fs::remove_file(&remote).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_close_right_after_large_output_never_hangs() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let bytes = 8 * 1024 * 1024;
    for round in 0..(ROUNDS * 2) {
        let out = run(w.ssh(&login, &[&format!("head -c {bytes} /dev/zero; exit 0")]), LIMIT).await;
        assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        assert_eq!(out.stdout.len(), bytes, "round {round}: the last data arrives before the close");
    }
    let all = w.sessions().await;
    assert!(all.iter().all(|m| m.bytes_out == bytes as u64 || m.state != gatehouse_recorder::RecordingState::Complete));
}

/// Like `run`, for a command whose stdin/stdout were redirected to files.
async fn run_redirected(mut cmd: std::process::Command, limit: Duration) -> std::process::ExitStatus {
    let what = format!("{cmd:?}");
    let mut child = cmd.stderr(std::process::Stdio::inherit()).spawn().unwrap();
    let pid = child.id();
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || child.wait())).await {
        Ok(st) => st.unwrap().unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("stalled for {limit:?}: {what}");
        }
    }
}
