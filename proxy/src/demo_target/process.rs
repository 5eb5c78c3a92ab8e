//! The demo target's commands: a shell or command in a PTY when the client asked for a
//! terminal, else on plain pipes (stdout and stderr apart), as sshd does, so that
//! byte-exact protocols (`scp -O`, `rsync`, `ssh host cat < file`) work through it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use russh::server::{Handle, Msg};
use russh::{ChannelId, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

nix::ioctl_write_ptr_bad!(set_winsize, nix::libc::TIOCSWINSZ, nix::pty::Winsize);

/// What the client sends into a running command.
pub(super) enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Eof,
}

/// The terminal the client asked for.
#[derive(Clone)]
pub(super) struct Term {
    pub(super) name: String,
    pub(super) cols: u16,
    pub(super) rows: u16,
}

/// Input queue depth per command: a slow command holds the client back, not memory.
const INPUT_QUEUE: usize = 16;

/// Starts `command` (or an interactive shell), in `home`, wired to the channel. Returns
/// the queue its input goes to.
pub(super) fn spawn(
    command: Option<&str>,
    term: Option<Term>,
    home: &Path,
    out: ChannelWriteHalf<Msg>,
    handle: Handle,
    channel: ChannelId,
) -> std::io::Result<mpsc::Sender<Input>> {
    let shell = std::env::var("SHELL").ok().filter(|s| Path::new(s).exists()).unwrap_or_else(|| "/bin/sh".into());
    let mut cmd = std::process::Command::new(&shell);
    match command {
        Some(c) => {
            cmd.arg("-c").arg(c);
        }
        None if term.is_some() => {
            cmd.arg("-i");
        }
        None => {}
    }
    cmd.current_dir(home);
    match term {
        Some(t) => spawn_pty(cmd, t, out, handle, channel),
        None => spawn_pipes(cmd, out, handle, channel),
    }
}

fn spawn_pty(
    mut cmd: std::process::Command,
    term: Term,
    out: ChannelWriteHalf<Msg>,
    handle: Handle,
    channel: ChannelId,
) -> std::io::Result<mpsc::Sender<Input>> {
    let ws = nix::pty::Winsize { ws_row: term.rows, ws_col: term.cols, ws_xpixel: 0, ws_ypixel: 0 };
    let (master, slave) = open_pty(&ws)?;
    let (i, o, e) = (slave.try_clone()?, slave.try_clone()?, slave.try_clone()?);
    cmd.env("TERM", &term.name).stdin(Stdio::from(i)).stdout(Stdio::from(o)).stderr(Stdio::from(e));
    // SAFETY: only async-signal-safe calls between fork and exec (setsid, ioctl).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(cmd).spawn()?;
    drop(slave);
    // The shell leads a session of its own (setsid above): its process group's id is its pid.
    let group = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let fd = master.as_raw_fd();
    let reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let mut writer = tokio::fs::File::from_std(std::fs::File::from(master));
    let shell_exited = exited.clone();
    tokio::spawn(async move {
        loop {
            let Some(input) = rx.recv().await else {
                // The channel closed (the user left, or gatehouse ended the session) with
                // the shell still there: hang it up, as sshd does. Else it would live on,
                // and so would the blocking read of its terminal below.
                if let Some(g) = group.filter(|_| !shell_exited.load(std::sync::atomic::Ordering::SeqCst)) {
                    let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGHUP);
                }
                break;
            };
            match input {
                Input::Data(d) => {
                    if writer.write_all(&d).await.is_err() || writer.flush().await.is_err() {
                        break;
                    }
                }
                Input::Resize(c, r) => {
                    let ws = nix::pty::Winsize { ws_row: r, ws_col: c, ws_xpixel: 0, ws_ypixel: 0 };
                    // SAFETY: fd is the pty master, alive as long as `writer`.
                    let _ = unsafe { set_winsize(fd, &ws) };
                }
                Input::Eof => {
                    let _ = writer.write_all(&[4]).await; // ^D, as a terminal would
                }
            }
        }
    });
    tokio::spawn(async move {
        // EIO once the shell exited and the slave side is closed: that is EOF.
        copy_out(reader, &out, None).await;
        let status = exit_code(child.wait().await);
        exited.store(true, std::sync::atomic::Ordering::SeqCst);
        finish(&out, &handle, channel, status).await;
    });
    Ok(tx)
}

/// A terminal pair whose descriptors close on exec: shells started later (other sessions)
/// must not inherit them, or a shell would keep its own terminal open after gatehouse
/// let go of it, and never get the hang-up.
fn open_pty(ws: &nix::pty::Winsize) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    // SAFETY: `slave` is an open terminal descriptor.
    unsafe { set_winsize(slave.as_raw_fd(), ws) }?;
    Ok((master.into(), slave))
}

fn spawn_pipes(
    mut cmd: std::process::Command,
    out: ChannelWriteHalf<Msg>,
    handle: Handle,
    channel: ChannelId,
) -> std::io::Result<mpsc::Sender<Input>> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd).spawn()?;
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, mut rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            match input {
                Input::Data(d) => {
                    let Some(w) = stdin.as_mut() else { continue };
                    if w.write_all(&d).await.is_err() {
                        stdin = None;
                    }
                }
                Input::Eof => stdin = None, // closing the pipe is the EOF
                Input::Resize(..) => {}
            }
        }
    });
    tokio::spawn(async move {
        tokio::join!(copy_out(stdout, &out, None), copy_out(stderr, &out, Some(1)));
        let status = exit_code(child.wait().await);
        finish(&out, &handle, channel, status).await;
    });
    Ok(tx)
}

/// Copies a command's output into the channel (`ext` = extended stream, 1 for stderr).
async fn copy_out(mut r: impl AsyncRead + Unpin, out: &ChannelWriteHalf<Msg>, ext: Option<u32>) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let sent = match ext {
            None => out.data_bytes(buf[..n].to_vec()).await,
            Some(code) => out.extended_data_bytes(code, buf[..n].to_vec()).await,
        };
        if sent.is_err() {
            break;
        }
    }
}

/// The exit status sshd would report: the code, or 128 + the signal that ended it.
fn exit_code(st: std::io::Result<std::process::ExitStatus>) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(s) => s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(1) as u32,
        Err(_) => 1,
    }
}

async fn finish(out: &ChannelWriteHalf<Msg>, handle: &Handle, channel: ChannelId, status: u32) {
    let _ = handle.exit_status_request(channel, status).await;
    let _ = out.eof().await;
    let _ = out.close().await;
}
