//! `gatehouse serve`: the SSH proxy with the recorder (the indexer and the web UI are wired
//! in `run_services` once they exist).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Ctx;
use crate::config::{Overrides, Settings};

/// Run the SSH proxy (and the recorder) until interrupted.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (default: ./gatehouse.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where users connect with ssh [default: 127.0.0.1:2222].
    #[arg(long)]
    pub ssh_listen: Option<SocketAddr>,
    /// Web UI address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub web_listen: Option<SocketAddr>,
    /// Recording store URL: file:///abs/path, s3://bucket/prefix, memory:// [default: file://<data-dir>/store].
    #[arg(long)]
    pub store: Option<String>,
    /// When the spool is full: fail-closed (refuse sessions) or best-effort.
    #[arg(long)]
    pub policy: Option<String>,
}

impl Args {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            ssh_listen: self.ssh_listen,
            web_listen: self.web_listen,
            store: self.store.clone(),
            policy: self.policy.clone(),
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&ctx.data_dir, args.config.as_deref(), &args.overrides())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let control = gatehouse_proxy::ControlPlane::open_data_dir(&settings.data_dir)?;
        if let Some(path) = &settings.config_file {
            apply_declarative(&control, path)?;
        }
        run_services(&settings, control, |addr| format!("gatehouse: SSH proxy listening on {addr}\n"))
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Makes the control plane match the users/groups/targets/rules/lockout of the config file
/// (idempotent; a file declaring none of them leaves the control plane as it is).
fn apply_declarative(control: &gatehouse_proxy::ControlPlane, path: &std::path::Path) -> anyhow::Result<()> {
    let decl = gatehouse_proxy::control::Declarative::load(path)?;
    if decl.is_empty() {
        return Ok(());
    }
    let report = control.apply(&decl).with_context(|| format!("applying {}", path.display()))?;
    for (what, list) in [("created", &report.created), ("updated", &report.updated), ("removed", &report.removed)] {
        if !list.is_empty() {
            say(std::io::stderr(), &format!("gatehouse: {}: {what} {}\n", path.display(), list.join(", ")));
        }
    }
    Ok(())
}

/// Opens the recorder, starts the proxy, prints what `banner` makes of the SSH address,
/// and runs until Ctrl-C or SIGTERM; then drains the recorder's uploads.
pub async fn run_services(
    settings: &Settings,
    control: gatehouse_proxy::ControlPlane,
    banner: impl FnOnce(SocketAddr) -> String,
) -> anyhow::Result<()> {
    let storage = gatehouse_recorder::Storage::from_url(&settings.store)
        .with_context(|| format!("recording store {}", settings.store))?;
    let mut rc = gatehouse_recorder::RecorderConfig::new(settings.data_dir.join("spool")).with_policy(settings.policy);
    if let Some(limit) = settings.spool_limit_bytes {
        rc = rc.with_spool_limit(limit);
    }
    let recorder = gatehouse_recorder::Recorder::open(storage, rc).await.context("opening the recorder")?;
    let index = gatehouse_indexer::index::SearchIndex::open_or_create(&settings.data_dir.join("index"))?;
    let indexer = gatehouse_indexer::LiveIndexer::spawn(&recorder, recorder.storage().clone(), &index)?;
    tokio::spawn(super::reindex::feed_audit_events(control.clone(), indexer.event_sink()));
    let proxy = gatehouse_proxy::Proxy::new(settings.proxy.clone(), control, recorder.clone())?;
    let listener = proxy.bind().await?;
    say(std::io::stdout(), &banner(listener.local_addr()));
    // The indexer (live indexing from the recorder's tap) and the web UI (on
    // settings.web_listen, given `proxy.registry()` and the storage) start here.
    tracing::debug!(web = %settings.web_listen, "web UI not wired yet");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = listener.run() => r?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    say(std::io::stderr(), "gatehouse: shutting down, draining recordings...\n");
    recorder.shutdown().await;
    indexer.shutdown().await;
    Ok(())
}

/// Writes what a running server tells its operator. Not `println!`/`eprintln!`: those
/// panic when the stream is closed (`gatehouse serve | head -1`, a log pipe that went
/// away), which would stop the proxy, or skip draining the recordings at shutdown.
fn say(mut out: impl Write, text: &str) {
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
