//! The interactive menu for a plain `ssh -p 2222 alice@gatehouse` login: lists the targets
//! the user may reach and reads a choice from the terminal.

use bytes::Bytes;
use russh::ChannelWriteHalf;
use russh::server::Msg;

use crate::bridge::{Ctx, Idle, Link, UserMsg};

/// Longest line the menu accepts.
const MAX_LINE: usize = 64;

/// Shows the menu and returns the chosen target (its default account) with whatever the
/// user typed after the Enter that chose it (keystrokes in the same packet, meant for the
/// session); `None` when the user quits or closes.
pub(crate) async fn choose(ctx: &Ctx, link: &Link, to_user: &ChannelWriteHalf<Msg>) -> Option<(String, Bytes)> {
    let user = &ctx.who.login.user;
    let choices = ctx.proxy.gate().reachable(user).await;
    let mut text = format!("\r\ngatehouse: targets for {user}\r\n");
    let mut targets: Vec<String> = Vec::new();
    for c in &choices {
        if targets.contains(&c.target) {
            continue;
        }
        targets.push(c.target.clone());
        let accounts: Vec<&str> =
            choices.iter().filter(|x| x.target == c.target).map(|x| x.account.as_str()).collect();
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!(
            "  {:>2}) {:<20} accounts: {:<20} {}\r\n",
            targets.len(),
            c.target,
            accounts.join(","),
            labels.join(" ")
        ));
    }
    if targets.is_empty() {
        text.push_str("  (no targets: ask an administrator for access)\r\n");
        send(to_user, text).await;
        return None;
    }
    text.push_str("Choose a number (q to quit): ");
    send(to_user, text).await;
    let mut line = String::new();
    // A menu left open is an unattended terminal too, a step from a target.
    let mut idle = Idle::new(ctx.proxy.config().idle_timeout);
    loop {
        let Some(msg) = idle.pop(link).await else {
            tracing::info!(%user, "menu closed: {}", idle.words());
            send(to_user, format!("\r\ngatehouse: menu closed: {}\r\n", idle.words())).await;
            return None;
        };
        match msg {
            UserMsg::Data(b) => {
                for (i, &c) in b.iter().enumerate() {
                    // The rest of this packet, after the Enter that picks a target.
                    let rest = || {
                        let mut r = b.slice(i + 1..);
                        // A terminal's Enter may be "\r\n": the "\n" belongs to it.
                        if c == b'\r' && r.first() == Some(&b'\n') {
                            r = r.slice(1..);
                        }
                        r
                    };
                    match c {
                        b'\r' | b'\n' => {
                            send(to_user, "\r\n".into()).await;
                            let pick = line.trim().to_string();
                            if pick == "q" {
                                return None;
                            }
                            if let Some(t) = pick.parse::<usize>().ok().and_then(|n| targets.get(n.wrapping_sub(1))) {
                                send(to_user, format!("Connecting to {t}...\r\n")).await;
                                return Some((t.clone(), rest()));
                            }
                            if let Some(t) = targets.iter().find(|t| **t == pick) {
                                send(to_user, format!("Connecting to {t}...\r\n")).await;
                                return Some((t.clone(), rest()));
                            }
                            line.clear();
                            send(to_user, "No such choice. Choose a number (q to quit): ".into()).await;
                        }
                        3 | 4 => return None, // Ctrl-C, Ctrl-D
                        8 | 127 if line.pop().is_some() => {
                            send(to_user, "\x08 \x08".into()).await;
                        }
                        c if (0x20..0x7f).contains(&c) && line.len() < MAX_LINE => {
                            line.push(c as char);
                            send(to_user, (c as char).to_string()).await;
                        }
                        _ => {}
                    }
                }
            }
            UserMsg::Close | UserMsg::Terminate(_) | UserMsg::Eof => return None,
            _ => {}
        }
    }
}

async fn send(to_user: &ChannelWriteHalf<Msg>, s: String) {
    let _ = to_user.data_bytes(Bytes::from(s)).await;
}
