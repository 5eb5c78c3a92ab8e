//! `gatehouse verify SESSION|--all`: segment checksums and the hash chain.

use std::process::ExitCode;

use anyhow::bail;

use super::Ctx;
use crate::store::{self, StoreArgs};

/// Verify stored recordings: segment checksums and the hash chain.
///
/// Checks every segment is present, its checksum and SHA-256 as the manifest lists them, each segment's link to the previous one (the hash chain) and the
/// chain head. Prints one line per session and one per problem; exits 1 if any.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Session id, or a unique prefix of it.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub session: Option<String>,
    /// Verify every stored session.
    #[arg(long)]
    pub all: bool,
}

/// Runs `gatehouse verify`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let storage = args.store.storage(ctx)?;
    let bad = rt.block_on(async {
        store::recover_spool(ctx, &storage).await?;
        let ids = match &args.session {
            Some(text) => vec![storage.resolve(text).await?],
            None if args.all => storage.session_ids(None).await?,
            None => bail!("give a SESSION or --all"),
        };
        let mut bad = 0;
        for id in ids {
            match storage.verify(id).await {
                Ok(report) if report.ok() => {
                    println!("{id}  ok  {}, {}", count(report.segments as u64, "segment"), count(report.frames, "frame"))
                }
                Ok(report) => {
                    bad += 1;
                    println!("{id}  FAILED  {} in {}", count(report.problems.len() as u64, "problem"), count(report.segments as u64, "segment"));
                    for p in &report.problems {
                        println!("  {}", p.message);
                    }
                }
                Err(e) => {
                    bad += 1;
                    println!("{id}  FAILED  {e}");
                }
            }
        }
        anyhow::Ok(bad)
    })?;
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// "1 segment", "2 segments".
fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
