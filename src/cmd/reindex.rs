//! `gatehouse reindex`: rebuild the search index, keyframes and Parquet tables from the
//! recordings (idempotent), with a progress bar on stderr when it is a terminal.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_indexer::tables::EventRow;
use gatehouse_indexer::{EventSink, Progress, reindex};
use gatehouse_proxy::ControlPlane;
use gatehouse_proxy::control::AuditEvent;
use gatehouse_recorder::Manifest;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Rebuild the search index (<data-dir>/index), the replay keyframes and the Parquet
/// tables (tables/ in the store) from the recordings. Running it twice gives the same
/// result. Not while `gatehouse serve` runs on the same data directory (it owns the index).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A progress bar over the recordings' output bytes.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, sessions: u64, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_message(format!("0/{sessions} sessions"));
        self.0.set_prefix(sessions.to_string());
    }

    fn session_done(&self, _: &Manifest, bytes: u64) {
        self.0.inc(bytes);
        let done = self.0.message().split('/').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) + 1;
        self.0.set_message(format!("{done}/{} sessions", self.0.prefix()));
    }
}

/// Runs `gatehouse reindex`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let events = control_plane_events(ctx)?;
    let target = if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = Bar(ProgressBar::with_draw_target(Some(0), target));
    bar.0.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (eta {eta})")
            .expect("valid template"),
    );
    let index_dir = ctx.data_dir.join("index");
    let report = rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        reindex(&storage, &index_dir, events, &bar).await.context("reindexing")
    })?;
    bar.0.finish_and_clear();
    let t = &report.tables;
    eprintln!(
        "gatehouse: indexed {} sessions: {} commands, {} screen lines, {} recorded events, {} keyframes; \
         tables: {} sessions, {} commands, {} events rows in {} parts ({} stale parts removed)",
        report.sessions, report.commands, report.lines, report.events, report.keyframes, t.sessions, t.commands,
        t.events, t.parts_written, t.parts_removed
    );
    for problem in &report.problems {
        eprintln!("gatehouse: {problem}");
    }
    if report.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("gatehouse: {} problems (what could be read was indexed)", report.problems.len());
        Ok(ExitCode::FAILURE)
    }
}

/// The control plane's audit trail (auth attempts, access decisions, host keys), for the
/// `events` table; none if this data directory has no control plane.
fn control_plane_events(ctx: &Ctx) -> anyhow::Result<Vec<EventRow>> {
    if !ctx.data_dir.join("control.db").exists() {
        return Ok(Vec::new());
    }
    let control = super::control_util::open_control(ctx)?;
    let audit = control.audit_events(time::OffsetDateTime::UNIX_EPOCH).context("reading the audit trail")?;
    Ok(audit.into_iter().map(audit_row).collect())
}

/// One control-plane audit event as an `events` row.
fn audit_row(a: AuditEvent) -> EventRow {
    let name = |v: serde_json::Value| v.as_str().map(str::to_string);
    let mut row = EventRow::control_plane(a.at, name(serde_json::json!(a.kind)).unwrap_or_default());
    row.outcome = name(serde_json::json!(a.outcome));
    row.auth_method = a.method;
    row.user = a.user;
    row.source_addr = a.source.map(|s| s.ip().to_string());
    row.target = a.target;
    row.account = a.account;
    row.detail = Some(a.reason).filter(|r| !r.is_empty());
    row
}

/// For `serve`: hands the audit events recorded from now on to the live indexer, every
/// couple of seconds, until it stops. (Earlier ones are in the tables from `reindex`.)
pub async fn feed_audit_events(control: ControlPlane, sink: EventSink) {
    let mut since = time::OffsetDateTime::now_utc();
    let mut last_id = i64::MIN;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let Ok(events) = control.audit_events(since) else { continue };
        let new: Vec<AuditEvent> = events.into_iter().filter(|e| e.id > last_id).collect();
        if let Some(last) = new.last() {
            last_id = last.id;
            since = last.at;
        }
        if !sink.send(new.into_iter().map(audit_row).collect()).await {
            return;
        }
    }
}
