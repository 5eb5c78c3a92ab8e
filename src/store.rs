//! Where the recording commands find the store and the spool: `--store URL`, else
//! `GATEHOUSE_STORE`, else `file://<data dir>/store`; the spool is `<data dir>/spool`.

use std::path::Path;

use anyhow::Context;
use gatehouse_recorder::{Recorder, RecorderConfig, Storage};

use crate::cmd::Ctx;

/// The `--store` flag shared by the recording commands.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Recording store: file:///abs/path, s3://bucket/prefix (AWS_* variables or
    /// ?endpoint=...&region=... give the endpoint and credentials), memory://
    /// [default: file://<data-dir>/store].
    #[arg(long, env = "GATEHOUSE_STORE", value_name = "URL")]
    pub store: Option<String>,
}

impl StoreArgs {
    /// The store URL, defaulting to `file://<abs data dir>/store`.
    pub fn url(&self, ctx: &Ctx) -> anyhow::Result<String> {
        match &self.store {
            Some(url) => Ok(url.clone()),
            None => {
                let dir = absolute(&ctx.data_dir.join("store"))?;
                Ok(format!("file://{}", dir.display()))
            }
        }
    }

    /// Opens the store.
    pub fn storage(&self, ctx: &Ctx) -> anyhow::Result<Storage> {
        let url = self.url(ctx)?;
        Storage::from_url(&url).with_context(|| format!("recording store {url}"))
    }
}

/// The recorder settings for commands run from the data directory.
pub fn recorder_config(ctx: &Ctx) -> RecorderConfig {
    RecorderConfig::new(ctx.data_dir.join("spool"))
}

/// Opens a recorder (which recovers what a killed `gatehouse` left in the spool).
pub async fn open_recorder(ctx: &Ctx, storage: Storage) -> anyhow::Result<Recorder> {
    Recorder::open(storage, recorder_config(ctx)).await.context("opening the recorder")
}

/// Before reading: if an earlier process left sessions in the spool, upload them (marked
/// `interrupted`) so listings and exports see them. Sessions still being recorded by a
/// live process are left alone.
pub async fn recover_spool(ctx: &Ctx, storage: &Storage) -> anyhow::Result<()> {
    let spool = ctx.data_dir.join("spool");
    // Session directories are named by their id; `.free` holds emptied files for reuse.
    let leftovers = std::fs::read_dir(&spool)
        .map(|d| d.flatten().any(|e| e.file_name().to_str().is_some_and(|n| n.parse::<uuid::Uuid>().is_ok())))
        .unwrap_or(false);
    if leftovers {
        let recorder = open_recorder(ctx, storage.clone()).await?;
        if !recorder.shutdown().await {
            eprintln!("gatehouse: the store is not reachable; recovered sessions stay in {}", spool.display());
        }
    }
    Ok(())
}

/// A runtime for one command. Two workers: the machine's cores are shared.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")
}

fn absolute(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

