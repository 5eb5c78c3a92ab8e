//! What the control-plane commands (`user`, `target`, `rule`) share.

use std::io::Read;

use anyhow::{Context, bail};
use gatehouse_proxy::ControlPlane;

use super::Ctx;

/// Opens `<data_dir>/control.db` with the master key (`GATEHOUSE_MASTER_KEY` or
/// `<data_dir>/master.key`, created on first use).
pub fn open_control(ctx: &Ctx) -> anyhow::Result<ControlPlane> {
    ControlPlane::open_data_dir(&ctx.data_dir)
        .with_context(|| format!("opening the control plane in {}", ctx.data_dir.display()))
}

/// Reads one secret from stdin: everything up to end of input, minus one trailing newline.
pub fn read_secret_stdin(what: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).with_context(|| format!("reading the {what} from stdin"))?;
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        bail!("the {what} read from stdin is empty");
    }
    if trimmed.contains('\n') {
        bail!("the {what} read from stdin spans several lines; give exactly one line");
    }
    Ok(trimmed.to_string())
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
