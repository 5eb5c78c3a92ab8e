//! `gatehouse record [--store URL] -- CMD [ARGS]`: run a command in a pseudo-terminal,
//! like `asciinema rec`, recording its output, your input and terminal resizes.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use gatehouse_recorder::{Event, FrameData, SessionEnd, SessionMeta, SessionWriter};

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Record a local command in a pseudo-terminal (like `asciinema rec`).
///
/// Its output, your keystrokes and terminal resizes become a stored session. The terminal is put in raw
/// mode while recording; the command's exit ends the recording, and gatehouse exits with
/// its status. The session id is printed on stderr (stdout carries the command's output).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A title for the recording.
    #[arg(long)]
    pub title: Option<String>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The session writer, shared by the output and input threads and the resize task;
/// `None` once the session is finished.
type Shared = Arc<Mutex<Option<SessionWriter>>>;

/// Runs `gatehouse record`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let recorder = rt.block_on(store::open_recorder(ctx, storage.clone()))?;
    let tty = std::io::stdin().is_terminal();
    let (cols, rows) = terminal_size(tty);
    let meta = SessionMeta {
        user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok(),
        protocol: Some("local".into()),
        channel: Some("exec".into()),
        command: Some(args.command.join(" ")),
        term: std::env::var("TERM").ok(),
        cols: Some(cols),
        rows: Some(rows),
        title: args.title.clone(),
        ..SessionMeta::default()
    };
    let command = meta.command.clone().unwrap_or_default();
    let mut writer = rt.block_on(recorder.start(meta)).context("starting the recording")?;
    // As the proxy does for `ssh host CMD`: the command is the recording's first command
    // (search and `gatehouse commands` list it, with the exit status once it ends).
    writer
        .write(FrameData::Event(Event { kind: "exec".into(), data: serde_json::json!({ "command": command }) }))
        .context("starting the recording")?;
    let id = writer.id();
    eprintln!("gatehouse: recording session {id} to {} (exit the command to stop)", storage.label());

    let (pty, pts) = pty_process::blocking::open().context("allocating a pseudo-terminal")?;
    pty.resize(pty_process::Size::new(rows, cols)).context("sizing the pseudo-terminal")?;
    let mut cmd = pty_process::blocking::Command::new(&args.command[0]).args(&args.command[1..]);
    if std::env::var_os("TERM").is_none() {
        cmd = cmd.env("TERM", "xterm-256color");
    }
    let mut child = cmd.spawn(pts).with_context(|| format!("starting {}", args.command[0]))?;
    let pty = Arc::new(pty);
    let shared: Shared = Arc::new(Mutex::new(Some(writer)));
    let raw = if tty { RawMode::enable() } else { None };

    let output = std::thread::spawn({
        let (pty, shared) = (pty.clone(), shared.clone());
        move || pump_output(&pty, &shared)
    });
    std::thread::spawn({
        let (pty, shared) = (pty.clone(), shared.clone());
        move || pump_input(&pty, &shared)
    });
    if tty {
        let (pty, shared) = (pty.clone(), shared.clone());
        rt.spawn(async move { forward_resizes(&pty, &shared).await });
    }

    let status = child.wait().context("waiting for the command")?;
    // The output side ends when the last holder of the terminal closes it (EIO); a
    // background process that keeps it open does not hold the recording hostage.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !output.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(raw);
    let end = match status.code() {
        Some(code) => SessionEnd { reason: "exit".into(), exit_status: Some(code) },
        None => SessionEnd { reason: format!("terminated: {status}"), exit_status: None },
    };
    let writer = shared.lock().expect("writer lock").take().expect("finished once");
    let manifest = rt.block_on(writer.finish(end))?;
    rt.block_on(recorder.shutdown());
    eprintln!(
        "gatehouse: recorded session {id}: {} frames, {} bytes out, {} bytes in ({:?})",
        manifest.frames,
        manifest.bytes_out,
        manifest.bytes_in,
        manifest.state
    );
    Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
}

fn record(shared: &Shared, data: FrameData) -> bool {
    let mut guard = shared.lock().expect("writer lock");
    let Some(w) = guard.as_mut() else { return false };
    match w.write(data) {
        Ok(()) => true,
        Err(e) => {
            // Fail-closed: nothing unrecorded may happen. Say why, and end the command.
            eprintln!("\r\ngatehouse: recording stopped, ending the command: {e}\r");
            false
        }
    }
}

/// Terminal → screen and recording.
fn pump_output(pty: &pty_process::blocking::Pty, shared: &Shared) {
    let mut buf = vec![0u8; 64 << 10];
    let mut stdout = std::io::stdout();
    loop {
        match (&*pty).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let _ = stdout.write_all(&buf[..n]).and_then(|()| stdout.flush());
                if !record(shared, FrameData::Output(buf[..n].to_vec().into())) {
                    hang_up(pty);
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return, // EIO: every process closed the terminal
        }
    }
}

/// Keyboard (or piped stdin) → terminal and recording. Stops at end of input.
fn pump_input(pty: &pty_process::blocking::Pty, shared: &Shared) {
    let mut buf = vec![0u8; 16 << 10];
    let mut stdin = std::io::stdin();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if (&*pty).write_all(&buf[..n]).is_err() || !record(shared, FrameData::Input(buf[..n].to_vec().into())) {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// SIGWINCH → resize the pseudo-terminal and record it.
async fn forward_resizes(pty: &pty_process::blocking::Pty, shared: &Shared) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else { return };
    while winch.recv().await.is_some() {
        let (cols, rows) = terminal_size(true);
        let _ = pty.resize(pty_process::Size::new(rows, cols));
        if !record(shared, FrameData::Resize { cols, rows }) {
            return;
        }
    }
}

/// Ends the recorded command when recording must stop: closing our side of the
/// terminal is not enough while we hold it, so send the session SIGHUP as a terminal would.
fn hang_up(pty: &pty_process::blocking::Pty) {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCGPGRP on a valid pty master fd writes one pid_t.
    let mut pgrp: nix::libc::pid_t = 0;
    if unsafe { nix::libc::ioctl(pty.as_raw_fd(), nix::libc::TIOCGPGRP, &mut pgrp) } == 0 && pgrp > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgrp), nix::sys::signal::Signal::SIGHUP);
    }
}

/// The user's terminal size, or `COLUMNS`×`LINES`, or 80×24.
fn terminal_size(tty: bool) -> (u16, u16) {
    if tty {
        let mut ws = nix::pty::Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCGWINSZ on stdin writes one winsize struct.
        let ok = unsafe { nix::libc::ioctl(0, nix::libc::TIOCGWINSZ, &mut ws) } == 0;
        if ok && ws.ws_col > 0 && ws.ws_row > 0 {
            return (ws.ws_col, ws.ws_row);
        }
    }
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok()).filter(|&n: &u16| n > 0);
    (env("COLUMNS").unwrap_or(80), env("LINES").unwrap_or(24))
}

/// Raw mode on the user's terminal for the recording's lifetime: keystrokes go to the
/// recorded program unprocessed, as in any terminal emulator.
struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    fn enable() -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.0);
    }
}
