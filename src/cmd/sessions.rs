//! `gatehouse sessions [filters] [--json]`: the stored sessions.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_recorder::{Manifest, RecordingState, SessionFilter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use crate::store::{self, StoreArgs};

/// List stored sessions, oldest first.
///
/// Shows who (user), where (account@target), from where (source address), when (start,
/// duration), how it ended (exit status or end reason), output size, and what ran (shell,
/// the command of an exec, sftp, a tunnel). Times: RFC 3339 (`2024-05-01T10:00:00Z`), a
/// UTC day (`2024-05-01`), or an age (`90m`, `12h`, `7d`: that long ago).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Sessions that started at or after this time.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Sessions that started before this time.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Sessions of this gatehouse user.
    #[arg(long)]
    pub user: Option<String>,
    /// Sessions to this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Sessions as this account on the target.
    #[arg(long)]
    pub account: Option<String>,
    /// Sessions whose recording is in this state: live, complete, interrupted (the
    /// recorder stopped mid-session; what reached its spool was kept) or failed.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<RecordingState>,
    /// Print one JSON manifest per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gatehouse sessions`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let filter = SessionFilter {
        since: args.since,
        until: args.until,
        user: args.user,
        target: args.target,
        account: args.account,
        state: args.state,
    };
    let sessions = rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        storage.list_sessions(&filter).await.context("listing sessions")
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for m in &sessions {
            writeln!(out, "{}", serde_json::to_string(m)?)?;
        }
    } else {
        let header = ["ID", "STARTED (UTC)", "DURATION", "STATE", "USER", "ACCOUNT@TARGET", "FROM", "END", "OUTPUT", "WHAT"];
        writeln!(out, "{}", line(header.map(String::from)))?;
        for m in &sessions {
            writeln!(out, "{}", row(m))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(m: &Manifest) -> String {
    let started = m.started_at.to_offset(time::UtcOffset::UTC);
    let started = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        started.year(),
        u8::from(started.month()),
        started.day(),
        started.hour(),
        started.minute(),
        started.second()
    );
    // A live session's manifest knows the frames stored so far; it has been running since
    // it started.
    let running = (time::OffsetDateTime::now_utc() - m.started_at).whole_seconds().max(0) as u64;
    let secs = if m.state == RecordingState::Live { running.max(m.duration / 1_000_000) } else { m.duration / 1_000_000 };
    let duration = format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let state = serde_json::to_value(m.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let target = match (&m.meta.account, &m.meta.target) {
        (Some(a), Some(t)) => format!("{a}@{t}"),
        (_, t) => dash(t),
    };
    let end = match (m.end_reason.as_deref(), m.exit_status) {
        (Some("exit"), Some(n)) => format!("exit {n}"),
        (Some(reason), _) => reason.to_string(),
        (None, _) => "-".into(),
    };
    let what = match (&m.meta.channel, &m.meta.command, &m.meta.title) {
        (Some(c), Some(cmd), _) => format!("{c} {cmd}"),
        (Some(c), None, _) => c.clone(),
        (None, _, Some(title)) => title.clone(),
        (None, _, None) => "-".into(),
    };
    line([
        m.id.to_string(),
        started,
        duration,
        state,
        cell(&dash(&m.meta.user), 12),
        cell(&target, 24),
        dash(&m.meta.source_addr),
        cell(&end, 14),
        human(m.bytes_out),
        cell(&what, 60),
    ])
}

/// One line of the table, header or row: the columns' widths and alignment in one place.
fn line(c: [String; 10]) -> String {
    format!(
        "{:<36}  {:<19}  {:>9}  {:<11}  {:<12}  {:<24}  {:<15}  {:<14}  {:>9}  {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
    )
}

/// `text` on one line (control characters as spaces), cut to `width` characters with an
/// ellipsis: a table cell. `--json` has every field whole.
fn cell(text: &str, width: usize) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.chars().count() <= width {
        return line;
    }
    let mut cut: String = line.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    }
}

/// A recording state by its name in manifests.
fn parse_state(text: &str) -> anyhow::Result<RecordingState> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| anyhow::anyhow!("{text:?} is not a recording state: use live, complete, interrupted or failed"))
}

/// RFC 3339, a UTC day, or an age (`90m`, `12h`, `7d`).
pub fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &day) {
        return Ok(d.midnight().assume_utc());
    }
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = match num.parse() {
        Ok(n) if n >= 0 => n,
        _ => bail!("{text:?} is not a time: use 2024-05-01T10:00:00Z, 2024-05-01, or an age like 90m, 12h, 7d"),
    };
    let age = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => bail!("{text:?}: an age needs a unit: s, m, h or d"),
    };
    Ok(OffsetDateTime::now_utc() - age)
}
