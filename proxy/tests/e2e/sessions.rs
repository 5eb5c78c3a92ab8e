//! What a user does through gatehouse, and what was recorded of it.

use std::time::Duration;

use gatehouse_recorder::FrameData;

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_exit_status_and_5w_manifest() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut c2 = std::process::Command::new("ssh");
    c2.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-o", "SendEnv=LANG GH_TEST", "-p", &w.port()]);
    c2.arg(format!("{login}@127.0.0.1"));
    c2.arg("printf 'hello %s\\n' gatehouse; seq 1 2000; echo \"LANG=$LANG GH=$GH_TEST\"; exit 7");
    c2.env("LANG", "C.UTF-8").env("GH_TEST", "passed").stdin(std::process::Stdio::null());
    let out = run(c2, T).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    assert!(stdout.starts_with("hello gatehouse\n1\n2\n"), "{stdout}");
    assert!(stdout.contains("\n2000\n"));
    assert!(stdout.contains("LANG=C.UTF-8 GH=passed"), "env allow-list passes LANG and GH_*: {stdout}");

    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("exec")).await;
    let meta = &m.meta;
    assert_eq!(meta.user.as_deref(), Some("alice"));
    assert_eq!(meta.account.as_deref(), Some(w.sshd.account().as_str()));
    assert_eq!(meta.target.as_deref(), Some("web-01"));
    assert_eq!(meta.target_addr, Some(format!("127.0.0.1:{}", w.sshd.port())));
    assert_eq!(meta.source_addr.as_deref(), Some("127.0.0.1"));
    assert!(meta.source_port.unwrap_or(0) > 0);
    assert!(meta.client.as_deref().unwrap_or("").starts_with("SSH-2.0-OpenSSH"), "{:?}", meta.client);
    assert_eq!(meta.auth_method.as_deref(), Some("publickey"));
    assert_eq!(meta.protocol.as_deref(), Some("ssh"));
    assert!(meta.command.as_deref().unwrap_or("").contains("seq 1 2000"));
    assert_eq!(m.exit_status, Some(7));
    assert_eq!(m.end_reason.as_deref(), Some("exit"));
    assert_eq!(m.bytes_out, out.stdout.len() as u64);
    let frames = w.frames(&m).await;
    assert_eq!(bytes_of(&frames, true), out.stdout, "the recording replays to what the user saw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_and_default_account() {
    let w = world().await;
    let out = run(w.ssh_password("alice@web-01", ALICE_PASSWORD, &["id -un"]), T).await;
    assert_eq!(text(&out.stdout).trim(), w.sshd.account(), "stderr: {}", text(&out.stderr));
    let m = w.recorded(|m| m.meta.auth_method.as_deref() == Some("password")).await;
    assert_eq!(m.meta.account.as_deref(), Some(w.sshd.account().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_both_ways_sftp_mode_with_file_events() {
    let w = world().await;
    let src = w.dir.path().join("up.bin");
    random_file(&src, 3 * 1024 * 1024 + 17);
    let remote = w.sshd.dir().join(format!("scp-{}.bin", rand_suffix()));
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut up = std::process::Command::new("scp");
    up.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port()]);
    up.args(["-o", &format!("User={login}")]).arg(&src).arg(format!("127.0.0.1:{}", remote.display()));
    let out = run(up, T).await;
    assert!(out.status.success(), "scp up: {}", text(&out.stderr));
    assert_eq!(std::fs::read(&remote).unwrap(), std::fs::read(&src).unwrap());

    let back = w.dir.path().join("down.bin");
    let mut down = std::process::Command::new("scp");
    down.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port()]);
    down.args(["-o", &format!("User={login}")]).arg(format!("127.0.0.1:{}", remote.display())).arg(&back);
    let out = run(down, T).await;
    assert!(out.status.success(), "scp down: {}", text(&out.stderr));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());

    let path = remote.display().to_string();
    let len = std::fs::metadata(&src).unwrap().len();
    let up_m = w.recorded(|m| m.meta.channel.as_deref() == Some("sftp") && m.bytes_in > len).await;
    let ev = events(&w.frames(&up_m).await);
    assert!(
        ev.iter().any(|(k, d)| k == "file.write" && d["path"] == path.as_str() && d["bytes"] == len),
        "upload event with path and bytes: {ev:?}"
    );
    let down_m = w.recorded(|m| m.meta.channel.as_deref() == Some("sftp") && m.bytes_out > len).await;
    let ev = events(&w.frames(&down_m).await);
    assert!(ev.iter().any(|(k, d)| k == "file.read" && d["path"] == path.as_str() && d["bytes"] == len), "{ev:?}");
    std::fs::remove_file(&remote).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_put_get_rm_and_rsync() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let rdir = w.sshd.dir().join(format!("sftp-{}", rand_suffix()));
    let local = w.dir.path().join("a.txt");
    std::fs::write(&local, "sftp payload\n".repeat(1000)).unwrap();
    let got = w.dir.path().join("got.txt");
    let batch = w.dir.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "mkdir {d}\nput {l} {d}/a.txt\nrename {d}/a.txt {d}/b.txt\nget {d}/b.txt {g}\nrm {d}/b.txt\n",
            d = rdir.display(),
            l = local.display(),
            g = got.display()
        ),
    )
    .unwrap();
    let mut sftp = std::process::Command::new("sftp");
    sftp.args(w.ssh_opts()).args(["-o", "BatchMode=yes", "-P", &w.port(), "-b"]).arg(&batch);
    sftp.args(["-o", &format!("User={login}"), "127.0.0.1"]);
    let out = run(sftp, T).await;
    assert!(out.status.success(), "sftp: {} {}", text(&out.stdout), text(&out.stderr));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&local).unwrap());
    assert!(!rdir.join("b.txt").exists());
    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("sftp")).await;
    let kinds: Vec<String> = events(&w.frames(&m).await).into_iter().map(|(k, _)| k).collect();
    for k in ["file.mkdir", "file.open", "file.write", "file.rename", "file.read", "file.remove"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }

    // rsync runs its own protocol over exec: the bytes are recorded as the session.
    let src = w.dir.path().join("rsync-src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        random_file(&src.join(format!("f{i}")), 100_000 + i);
    }
    let dst = w.sshd.dir().join(format!("rsync-dst-{}", rand_suffix()));
    let e = format!("ssh {} -o BatchMode=yes -o User={login} -p {}", w.ssh_opts().join(" "), w.port());
    let mut rsync = std::process::Command::new("rsync");
    rsync.args(["-a", "-e", &e]).arg(format!("{}/", src.display())).arg(format!("127.0.0.1:{}/", dst.display()));
    let out = run(rsync, T).await;
    assert!(out.status.success(), "rsync: {}", text(&out.stderr));
    for i in 0..5 {
        let name = format!("f{i}");
        assert_eq!(std::fs::read(dst.join(&name)).unwrap(), std::fs::read(src.join(&name)).unwrap());
    }
    let m = w.recorded(|m| m.meta.command.as_deref().is_some_and(|c| c.contains("rsync --server"))).await;
    assert!(m.bytes_in > 500_000, "rsync upload recorded: {} bytes", m.bytes_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_shell_in_a_pty_with_resize() {
    let w = world().await;
    let login = format!("alice:{}@web-01", w.sshd.account());
    let mut args = w.ssh_opts();
    args.extend(["-o", "BatchMode=yes", "-tt", "-p"].iter().map(|s| s.to_string()));
    args.push(w.port());
    args.push(format!("{login}@127.0.0.1"));
    let mut term = crate::harness::pty::PtyChild::spawn("ssh", &args, 80, 24);
    term.send(b"stty size; echo marker-$((6*7))\r");
    term.expect("marker-42", T);
    assert!(term.seen().contains("24 80"), "initial size reaches the target: {}", term.seen());
    term.resize(100, 30);
    tokio::time::sleep(Duration::from_millis(300)).await;
    term.send(b"stty size; echo second-$((7*7))\r");
    term.expect("second-49", T);
    assert!(term.seen().contains("30 100"), "resize reaches the target: {}", term.seen());
    term.send(b"exit 3\r");
    let status = term.wait(T);
    assert_eq!(status, Some(3));

    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("shell")).await;
    assert_eq!(m.meta.term.as_deref(), Some("xterm-256color"));
    assert_eq!((m.meta.cols, m.meta.rows), (Some(80), Some(24)));
    assert_eq!(m.exit_status, Some(3));
    let frames = w.frames(&m).await;
    assert!(frames.iter().any(|f| f.data == FrameData::Resize { cols: 100, rows: 30 }), "resize recorded");
    let out = text(&bytes_of(&frames, true));
    assert!(out.contains("marker-42") && out.contains("second-49") && out.contains("30 100"), "{out}");
    assert!(text(&bytes_of(&frames, false)).contains("echo marker-$((6*7))"), "keystrokes recorded");
    let seen = term.seen();
    assert!(seen.contains(&out[out.find("marker-42").unwrap()..out.find("marker-42").unwrap() + 9]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unattended_terminal_or_menu_ends_at_the_idle_timeout_and_a_program_does_not() {
    const IDLE: Duration = Duration::from_secs(3);
    let w = world_with(|c| c.idle_timeout = Some(IDLE), |r| r).await;
    let login = format!("alice:{}@web-01", w.sshd.account());

    // Typing keeps a terminal going well past the timeout.
    let mut term = w.ssh_pty(&login, 80, 24);
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < IDLE * 2 {
        n += 1;
        term.send(format!("echo tick-$(({n}*7))\r").as_bytes());
        term.expect(&format!("tick-{}", n * 7), T);
        std::thread::sleep(IDLE / 6);
    }
    // An auditor's takeover input counts too: a stretch longer than the timeout with only
    // injected commands keeps the session going.
    let registry = w.proxy.registry().clone();
    let id = registry.list()[0].id;
    let started = std::time::Instant::now();
    while started.elapsed() < IDLE + IDLE / 2 {
        n += 1;
        registry.inject(id, format!("echo tick-$(({n}*7))\r").into_bytes()).unwrap();
        term.expect(&format!("tick-{}", n * 7), T);
        std::thread::sleep(IDLE / 6);
    }
    // Then a program prints for 8 s with nobody typing: output is not someone at the
    // terminal, so the session ends about IDLE after this last key.
    term.send(b"for i in $(seq 1 40); do echo out-$i; sleep 0.2; done\r");
    let last_key = std::time::Instant::now();
    term.expect("idle timeout: no input for 3 s", T);
    term.wait(T);
    let after = last_key.elapsed();
    assert!(after >= IDLE && after < IDLE + Duration::from_secs(6), "ended {after:?} after the last key");
    let screen = term.seen();
    assert!(screen.contains("out-1\r\n") && !screen.contains("out-40"), "ended while the program printed: {screen}");

    let m = w.recorded(|m| m.meta.channel.as_deref() == Some("shell")).await;
    assert_eq!(m.end_reason.as_deref(), Some("terminated: idle timeout: no input for 3 s"));
    let frames = w.frames(&m).await;
    assert!(events(&frames).iter().any(|(k, v)| k == "session.terminate" && v["message"] == "idle timeout: no input for 3 s"));

    // The menu left open is a step from a target: it closes too, and nothing was recorded.
    let mut menu = w.ssh_pty("alice", 80, 24);
    menu.expect("Choose a number", T);
    let shown = std::time::Instant::now();
    menu.expect("gatehouse: menu closed: idle timeout: no input for 3 s", T);
    menu.wait(T);
    // The menu's clock starts as it is sent, a little before the test sees it.
    assert!(shown.elapsed() >= IDLE - Duration::from_millis(500), "the menu closed {:?} after it was shown", shown.elapsed());
    assert_eq!(w.sessions().await.len(), 1, "only the shell above was recorded");

    // A command is a program's session, with a terminal (`ssh -tt`, as Ansible runs its
    // tasks) or without: no timeout.
    for (tty, command) in [(true, "sleep 4; echo tty-still-here"), (false, "sleep 4; echo still-here")] {
        let args: &[&str] = if tty { &["-tt", command] } else { &[command] };
        let out = run(w.ssh(&login, args), T).await;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let word = command.rsplit(' ').next().unwrap();
        assert!(text(&out.stdout).contains(word), "{}", text(&out.stdout));
        let m = w.recorded(|m| m.meta.command.as_deref() == Some(command)).await;
        assert_eq!(m.end_reason.as_deref(), Some("exit"), "{command}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_told_before_login_that_sessions_are_recorded() {
    // OpenSSH prints a server's banner at its default LogLevel (INFO), not at ERROR.
    let ssh_at_info = |w: &World| {
        let login = format!("alice:{}@web-01", w.sshd.account());
        let opts: Vec<String> = w.ssh_opts().into_iter().map(|o| if o == "LogLevel=ERROR" { "LogLevel=INFO".into() } else { o }).collect();
        let mut c = std::process::Command::new("ssh");
        c.args(opts).args(["-o", "BatchMode=yes", "-p", &w.port(), &format!("{login}@127.0.0.1"), "echo in"]);
        c.stdin(std::process::Stdio::null());
        c
    };
    let w = world().await;
    let out = run(ssh_at_info(&w), T).await;
    assert_eq!((out.status.code(), text(&out.stdout).as_str()), (Some(0), "in\n"), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains(gatehouse_proxy::DEFAULT_BANNER.trim_end()), "stderr: {}", text(&out.stderr));

    // Written without a last newline, it still ends its line (not running into a prompt).
    let w = world_with(|c| c.banner = Some("Authorised use only.".into()), |r| r).await;
    let out = run(ssh_at_info(&w), T).await;
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Authorised use only.\n") && !stderr.contains("recorded for audit"), "stderr: {stderr:?}");

    let w = world_with(|c| c.banner = None, |r| r).await;
    let out = run(ssh_at_info(&w), T).await;
    assert_eq!((out.status.code(), text(&out.stdout).as_str()), (Some(0), "in\n"));
    assert!(!text(&out.stderr).contains("Authorised use only.") && !text(&out.stderr).contains("recorded"), "stderr: {}", text(&out.stderr));
}
