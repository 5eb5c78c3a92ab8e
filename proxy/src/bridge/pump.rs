//! The two directions of a running bridge. Each pops its pipe in order, records, and
//! writes into the other connection through russh's window-respecting channel writer, so
//! the SSH windows of both connections are honoured end to end: data, then EOF, then
//! exit status, then close, exactly in the order the peer sent them; nothing is dropped
//! at close because close is just the last item in the same queue.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::ChannelWriteHalf;
use russh::{client, server};
use serde_json::json;

use super::msg::{TargetMsg, UserMsg, sig_name};
use super::sftp::SftpDecoder;
use super::idle::Idle;
use super::{Ctx, Link, Rec};

/// After one side closed, how long the other gets to finish (flush, answer the close).
const LINGER: Duration = Duration::from_secs(5);
/// After a terminate order (or the user leaving), how long the target gets to close
/// before it is disconnected.
const TERMINATE_LINGER: Duration = Duration::from_millis(500);

/// Why a session ends when its recording fails under fail-closed.
const RECORDING_FAILED: &str = "the recording failed and the policy is fail-closed";

/// How the user's side ended.
pub(crate) enum UpEnd {
    /// The user closed the channel (or the connection dropped).
    Closed,
    /// A registry caller (or a recording failure) ended it, with this reason.
    Terminated(String),
    /// The target connection went away under us.
    TargetGone,
}

/// How a bridge ended.
pub(crate) struct End {
    up: Option<UpEnd>,
    exit: Option<i32>,
    signal: Option<String>,
    /// The user's side went away before the target had finished (no exit, EOF or close
    /// from it yet): whatever the target says afterwards, the user left.
    user_left: bool,
}

impl End {
    /// The manifest's end reason and exit status.
    pub(crate) fn reason(&self) -> (String, Option<i32>) {
        let reason = match (&self.up, self.exit, &self.signal) {
            (Some(UpEnd::Terminated(why)), _, _) => format!("terminated: {why}"),
            _ if self.user_left => "client-disconnect".to_string(),
            (_, Some(_), _) => "exit".to_string(),
            (_, None, Some(sig)) => format!("signal: {sig}"),
            (Some(UpEnd::Closed), None, None) => "client-disconnect".to_string(),
            _ => "target-closed".to_string(),
        };
        (reason, self.exit)
    }
}

/// What the bridge holds besides the pipes: messages that arrived during setup, for each
/// direction, to go before anything newer.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) up: VecDeque<UserMsg>,
    pub(crate) down: VecDeque<TargetMsg>,
}

/// What a bridge does besides passing the bytes on.
#[derive(Default)]
pub(crate) struct Watch {
    /// Decode SFTP into file-transfer events.
    pub(crate) sftp: bool,
    /// End the session after this long without input from the user.
    pub(crate) idle: Option<Duration>,
}

/// Pumps both directions until both sides are done. `target` writes into the target's
/// channel.
pub(crate) async fn run(
    ctx: &Ctx,
    link: &Link,
    to_user: &ChannelWriteHalf<server::Msg>,
    target: &ChannelWriteHalf<client::Msg>,
    rec: &Rec,
    watch: Watch,
    held: Held,
) -> End {
    let decoder = watch.sftp.then(|| Mutex::new(SftpDecoder::default()));
    let target_done = AtomicBool::new(false);
    let up = up(ctx, link, to_user, target, rec, decoder.as_ref(), watch.idle, held.up);
    let down = down(ctx, link, to_user, rec, decoder.as_ref(), held.down, &target_done);
    tokio::pin!(up, down);
    let mut user_left = false;
    let (up_end, (exit, signal, user_closed)) = tokio::select! {
        u = &mut up => {
            // `up` has closed the target's channel. russh forgets a channel as soon as it
            // sends CHANNEL_CLOSE, so the target's answering close is never reported: this
            // one stands for it, behind whatever the target said before.
            link.down.force_push(TargetMsg::Close);
            user_left = matches!(u, UpEnd::Closed) && !target_done.load(Ordering::Relaxed);
            // A terminated session, or one whose user left, is not waited for: nobody
            // reads what the target still has to say (a shell on a PTY would keep its
            // channel open until the disconnect anyway).
            let linger = if matches!(u, UpEnd::Terminated(_)) || user_left { TERMINATE_LINGER } else { LINGER };
            let d = tokio::time::timeout(linger, &mut down).await.unwrap_or((None, None, false));
            (Some(u), d)
        }
        d = &mut down => {
            if d.2 {
                // We closed the user's channel: the user's answering close is never
                // reported (see above), so `up` gets one after what the user sent before.
                // The target ended the session: that close is not the user leaving.
                link.up.force_push(UserMsg::Close);
            }
            let u = tokio::time::timeout(LINGER, &mut up).await.ok().filter(|u| !matches!(u, UpEnd::Closed));
            (u, d)
        }
    };
    if !user_closed {
        // The target never closed (terminated, or gone): the user's channel still ends.
        let _ = to_user.eof().await;
        let _ = to_user.close().await;
    }
    End { up: up_end, exit, signal, user_left }
}

fn record_sftp(rec: &Rec, decoder: Option<&Mutex<SftpDecoder>>, data: &[u8], from_client: bool) {
    if let Some(d) = decoder {
        let events = {
            let mut d = d.lock().expect("sftp lock");
            if from_client { d.client(data) } else { d.server(data) }
        };
        for (kind, ev) in events {
            rec.event(kind, ev);
        }
    }
}

/// Ends the session because its recording failed: nothing more passes either way.
async fn recording_failed(to_user: &ChannelWriteHalf<server::Msg>, target: &ChannelWriteHalf<client::Msg>) -> UpEnd {
    notify_user(to_user, RECORDING_FAILED).await;
    let _ = target.close().await;
    UpEnd::Terminated(RECORDING_FAILED.into())
}

#[allow(clippy::too_many_arguments)]
async fn up(
    ctx: &Ctx,
    link: &Link,
    to_user: &ChannelWriteHalf<server::Msg>,
    target: &ChannelWriteHalf<client::Msg>,
    rec: &Rec,
    decoder: Option<&Mutex<SftpDecoder>>,
    idle: Option<Duration>,
    mut held: VecDeque<UserMsg>,
) -> UpEnd {
    let mut idle = Idle::new(idle);
    loop {
        let msg = match held.pop_front() {
            Some(m) => m,
            None => match idle.pop(link).await {
                Some(m) => m,
                None => UserMsg::Terminate(idle.words()),
            },
        };
        if rec.failed() {
            return recording_failed(to_user, target).await;
        }
        match msg {
            UserMsg::Data(b) => {
                rec.input(&b);
                if rec.failed() {
                    // Input that could not be recorded does not reach the target.
                    return recording_failed(to_user, target).await;
                }
                record_sftp(rec, decoder, &b, true);
                if link.up.writing(&link.down, target.data_bytes(b)).await.is_err() {
                    return UpEnd::TargetGone;
                }
            }
            UserMsg::Inject(b) => {
                rec.event("session.inject", json!({ "bytes": b.len() }));
                rec.input(&b);
                if rec.failed() {
                    return recording_failed(to_user, target).await;
                }
                if link.up.writing(&link.down, target.data_bytes(b)).await.is_err() {
                    return UpEnd::TargetGone;
                }
            }
            UserMsg::Resize { cols, rows, pix_w, pix_h } => {
                rec.write(gatehouse_recorder::FrameData::Resize { cols: cols as u16, rows: rows as u16 });
                let _ = target.window_change(cols, rows, pix_w, pix_h).await;
            }
            UserMsg::Signal(s) => {
                rec.event("signal", json!({ "signal": sig_name(&s) }));
                let _ = target.signal(s).await;
            }
            UserMsg::Eof => {
                let _ = target.eof().await;
            }
            UserMsg::Close => {
                let _ = target.close().await;
                return UpEnd::Closed;
            }
            UserMsg::Terminate(why) => {
                rec.event("session.terminate", json!({ "message": why }));
                notify_user(to_user, &why).await;
                let _ = target.close().await;
                return UpEnd::Terminated(why);
            }
            UserMsg::Start(_) => {
                // One start per channel, as in OpenSSH.
                let _ = ctx.handle.channel_failure(ctx.id).await;
            }
            // Answered by the handler; too late to pass on once the session runs.
            UserMsg::Pty(_) | UserMsg::Env(..) | UserMsg::X11(_) | UserMsg::Agent | UserMsg::Note(_) => {}
        }
    }
}

/// Largest merged output chunk: two SSH packets' worth, so merging never makes a write
/// wait for much more window than one packet would.
const MERGE_MAX: usize = 64 * 1024;

fn data_len(m: &TargetMsg) -> Option<usize> {
    match m {
        TargetMsg::Data(b) => Some(b.len()),
        _ => None,
    }
}

/// One message from a run of output chunks (copied once, only when there are several).
fn joined(mut run: Vec<TargetMsg>) -> TargetMsg {
    if run.len() == 1 {
        return run.pop().expect("one");
    }
    let total = run.iter().filter_map(data_len).sum();
    let mut v = bytes::BytesMut::with_capacity(total);
    for m in &run {
        if let TargetMsg::Data(b) = m {
            v.extend_from_slice(b);
        }
    }
    TargetMsg::Data(v.freeze())
}

async fn notify_user(to_user: &ChannelWriteHalf<server::Msg>, why: &str) {
    let text = format!("\r\ngatehouse: session terminated: {why}\r\n");
    // A user whose window is full (a client that stopped reading) is not waited for: the
    // session ends all the same.
    let _ = tokio::time::timeout(Duration::from_secs(5), to_user.extended_data_bytes(1, text.into_bytes())).await;
}

async fn down(
    ctx: &Ctx,
    link: &Link,
    to_user: &ChannelWriteHalf<server::Msg>,
    rec: &Rec,
    decoder: Option<&Mutex<SftpDecoder>>,
    mut held: VecDeque<TargetMsg>,
    target_done: &AtomicBool,
) -> (Option<i32>, Option<String>, bool) {
    let (mut exit, mut signal) = (None, None);
    // Nothing reaches the user unrecorded: on a recording failure stop here; the up side
    // tells the user and closes the target.
    let stop = || link.up.force_push(UserMsg::Terminate(RECORDING_FAILED.into()));
    loop {
        let msg = match held.pop_front() {
            Some(m) => m,
            None => joined(link.down.pop_run(data_len, MERGE_MAX).await),
        };
        if rec.failed() {
            stop();
            break;
        }
        if !matches!(msg, TargetMsg::Data(_) | TargetMsg::Ext(..) | TargetMsg::Reply(_)) {
            target_done.store(true, Ordering::Relaxed);
        }
        match msg {
            TargetMsg::Data(b) => {
                rec.output(&b);
                if rec.failed() {
                    stop();
                    break;
                }
                record_sftp(rec, decoder, &b, false);
                if link.down.writing(&link.up, to_user.data_bytes(b)).await.is_err() {
                    break;
                }
            }
            TargetMsg::Ext(code, b) => {
                rec.output(&b);
                if rec.failed() {
                    stop();
                    break;
                }
                if link.down.writing(&link.up, to_user.extended_data_bytes(code, b)).await.is_err() {
                    break;
                }
            }
            TargetMsg::ExitStatus(n) => {
                exit = Some(n as i32);
                rec.event("exit", json!({ "status": n }));
                let _ = ctx.handle.exit_status_request(ctx.id, n).await;
            }
            TargetMsg::ExitSignal { signal: s, core_dumped, message } => {
                let name = sig_name(&s);
                rec.event("exit", json!({ "signal": name, "core_dumped": core_dumped }));
                signal = Some(name);
                let _ = ctx.handle.exit_signal_request(ctx.id, s, core_dumped, message, "en".into()).await;
            }
            TargetMsg::Eof => {
                let _ = to_user.eof().await;
            }
            TargetMsg::Close => {
                let _ = to_user.close().await;
                return (exit, signal, true);
            }
            TargetMsg::Reply(_) => {}
        }
    }
    (exit, signal, false)
}
