//! The binary's settings: `gatehouse.toml` (when given or present), then `GATEHOUSE_*`
//! environment variables, then command-line flags — each later source wins.
//!
//! ```toml
//! [ssh]
//! listen = "127.0.0.1:2222"
//! host_key = "gatehouse-data/ssh_host_ed25519_key"   # created if missing
//! env_allow = ["LANG", "LC_*", "TZ"]
//! offer_chacha20 = false
//! idle_timeout = "15m"                               # end unattended terminals (off by default)
//! banner = "Authorised use only. Sessions are recorded.\n"   # before login; "" for none
//! [web]
//! listen = "127.0.0.1:8080"
//! [recording]
//! store = "file:///var/lib/gatehouse/store"          # or s3://bucket/prefix
//! policy = "fail-closed"                             # or "best-effort"
//! spool_limit_bytes = 1073741824
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Settings as the file spells them (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    ssh: SshFile,
    #[serde(default)]
    web: WebFile,
    #[serde(default)]
    recording: RecordingFile,
    // The control plane's keys: read by `gatehouse_proxy::control::Declarative::load`
    // (applied by `serve`), only allowed here.
    #[allow(dead_code)]
    users: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    groups: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    targets: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    rules: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    lockout: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshFile {
    listen: Option<SocketAddr>,
    host_key: Option<PathBuf>,
    env_allow: Option<Vec<String>>,
    offer_chacha20: Option<bool>,
    idle_timeout: Option<String>,
    banner: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingFile {
    store: Option<String>,
    policy: Option<String>,
    spool_limit_bytes: Option<u64>,
}

/// Command-line overrides (the subcommand's flags).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub ssh_listen: Option<SocketAddr>,
    pub web_listen: Option<SocketAddr>,
    pub store: Option<String>,
    pub policy: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// The config file read, if any (its users/targets/rules are applied by `serve`).
    pub config_file: Option<PathBuf>,
    pub proxy: gatehouse_proxy::ProxyConfig,
    pub web_listen: SocketAddr,
    pub store: String,
    pub policy: gatehouse_recorder::SpoolPolicy,
    pub spool_limit_bytes: Option<u64>,
}

impl Settings {
    /// Reads the file (an explicit `path` must exist; otherwise `./gatehouse.toml` is read
    /// when present), then the environment, then `flags`.
    pub fn load(data_dir: &Path, path: Option<&Path>, flags: &Overrides) -> anyhow::Result<Settings> {
        let config_file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("gatehouse.toml")).filter(|p| p.exists()),
        };
        let file = match &config_file {
            Some(p) => read_file(p)?,
            None => File::default(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let parse_addr = |k: &str| -> anyhow::Result<Option<SocketAddr>> {
            env(k).map(|v| v.parse().with_context(|| format!("{k}={v}: expected HOST:PORT"))).transpose()
        };

        let mut proxy = gatehouse_proxy::ProxyConfig {
            host_key: data_dir.join("ssh_host_ed25519_key"),
            ..Default::default()
        };
        if let Some(a) = file.ssh.listen {
            proxy.listen = a;
        }
        if let Some(k) = file.ssh.host_key {
            proxy.host_key = k;
        }
        if let Some(e) = file.ssh.env_allow {
            proxy.env_allow = e;
        }
        if let Some(c) = file.ssh.offer_chacha20 {
            proxy.offer_chacha20 = c;
        }
        if let Some(b) = file.ssh.banner {
            proxy.banner = Some(b).filter(|b| !b.is_empty());
        }
        if let Some(t) = file.ssh.idle_timeout {
            proxy.idle_timeout = idle_timeout("[ssh] idle_timeout", &t)?;
        }
        if let Some(t) = env("GATEHOUSE_SSH_IDLE_TIMEOUT") {
            proxy.idle_timeout = idle_timeout("GATEHOUSE_SSH_IDLE_TIMEOUT", &t)?;
        }
        let mut web_listen = file.web.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let mut store = file.recording.store;
        let mut policy = file.recording.policy;

        if let Some(a) = parse_addr("GATEHOUSE_SSH_LISTEN")? {
            proxy.listen = a;
        }
        if let Some(a) = parse_addr("GATEHOUSE_WEB_LISTEN")? {
            web_listen = a;
        }
        store = env("GATEHOUSE_STORE").or(store);
        policy = env("GATEHOUSE_RECORDING_POLICY").or(policy);

        if let Some(a) = flags.ssh_listen {
            proxy.listen = a;
        }
        if let Some(a) = flags.web_listen {
            web_listen = a;
        }
        store = flags.store.clone().or(store);
        policy = flags.policy.clone().or(policy);

        let store = match store {
            Some(s) => s,
            None => default_store(data_dir)?,
        };
        let policy = match policy.as_deref() {
            None | Some("fail-closed") => gatehouse_recorder::SpoolPolicy::FailClosed,
            Some("best-effort") => gatehouse_recorder::SpoolPolicy::BestEffort,
            Some(other) => bail!("recording policy {other:?}: expected fail-closed or best-effort"),
        };
        Ok(Settings {
            data_dir: data_dir.to_path_buf(),
            config_file,
            proxy,
            web_listen,
            store,
            policy,
            spool_limit_bytes: file.recording.spool_limit_bytes,
        })
    }
}

/// `[ssh] idle_timeout`: a span as `play --from` takes one (`15m`, `900`, `1h30m`,
/// `0:15:00`); zero turns it off.
fn idle_timeout(source: &str, text: &str) -> anyhow::Result<Option<std::time::Duration>> {
    let us = crate::cmd::moment::parse(text)
        .map_err(|_| anyhow::anyhow!("{source} = {text:?}: expected a span of time like 15m, 900s or 1h30m (0 for none)"))?;
    Ok((us > 0).then(|| std::time::Duration::from_micros(us as u64)))
}

fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
}

/// `file://<abs data dir>/store`, the embedded default.
fn default_store(data_dir: &Path) -> anyhow::Result<String> {
    let dir = data_dir.join("store");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let abs = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    Ok(format!("file://{}", abs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "[ssh]\nlisten = \"127.0.0.1:3000\"\n[recording]\nstore = \"memory://\"\npolicy = \"best-effort\"\n").unwrap();
        let s = Settings::load(dir.path(), Some(&path), &Overrides::default()).unwrap();
        assert_eq!(s.proxy.listen.port(), 3000);
        assert_eq!(s.store, "memory://");
        assert_eq!(s.policy, gatehouse_recorder::SpoolPolicy::BestEffort);
        let flags = Overrides { ssh_listen: Some("127.0.0.1:4000".parse().unwrap()), ..Default::default() };
        let s = Settings::load(dir.path(), Some(&path), &flags).unwrap();
        assert_eq!(s.proxy.listen.port(), 4000);
    }

    #[test]
    fn idle_timeout_reads_spans_zero_and_an_empty_banner_turn_them_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        let load = |v: &str| {
            std::fs::write(&path, format!("[ssh]\nidle_timeout = \"{v}\"\n[recording]\nstore = \"memory://\"\n")).unwrap();
            Settings::load(dir.path(), Some(&path), &Overrides::default()).map(|s| s.proxy.idle_timeout)
        };
        assert_eq!(load("15m").unwrap(), Some(std::time::Duration::from_secs(900)));
        assert_eq!(load("1h30m").unwrap(), Some(std::time::Duration::from_secs(5400)));
        assert_eq!(load("90").unwrap(), Some(std::time::Duration::from_secs(90)));
        assert_eq!(load("0").unwrap(), None);
        std::fs::write(&path, "[ssh]\nbanner = \"\"\n[recording]\nstore = \"memory://\"\n").unwrap();
        let s = Settings::load(dir.path(), Some(&path), &Overrides::default()).unwrap();
        assert_eq!(s.proxy.banner, None, "an empty banner is none");
        let e = format!("{:#}", load("soon").unwrap_err());
        assert!(e.contains("[ssh] idle_timeout = \"soon\"") && e.contains("15m"), "{e}");
    }

    #[test]
    fn bad_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[ssh]\nlisten = 12\n").unwrap();
        let e = format!("{:#}", Settings::load(dir.path(), Some(&path), &Overrides::default()).unwrap_err());
        assert!(e.contains("bad.toml"), "{e}");
    }
}
