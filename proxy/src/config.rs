//! The proxy's settings, with defaults that match a plain OpenSSH jump host's behaviour and
//! throughput.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Environment variables passed to targets by default (OpenSSH's usual `AcceptEnv`).
pub const DEFAULT_ENV_ALLOW: &[&str] = &["LANG", "LC_*", "TZ", "COLORTERM"];

/// The notice users get before they log in, unless configured otherwise.
pub const DEFAULT_BANNER: &str = "This session is recorded for audit by gatehouse.\n";

/// How the proxy listens and bridges.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where users connect. Default `127.0.0.1:2222`.
    pub listen: SocketAddr,
    /// The proxy's own SSH host key (OpenSSH format); created (ed25519) if missing.
    pub host_key: PathBuf,
    /// Environment variables users may pass to targets: exact names or `PREFIX*`.
    pub env_allow: Vec<String>,
    /// Offer chacha20-poly1305 to users. Off by default: OpenSSH clients pick the first
    /// cipher in *their* list that the server offers, which is chacha20, and it is much
    /// slower here than AES-GCM (hardware AES through aws-lc).
    pub offer_chacha20: bool,
    /// SSH channel window granted to each peer (bytes in flight per direction).
    pub window_size: u32,
    /// Largest SSH packet accepted.
    pub max_packet: u32,
    /// Per bridge direction: the queue at which a session loop waits (see pipe.rs).
    pub pipe_soft_bytes: usize,
    /// Per bridge direction: the absolute bound of the queue.
    pub pipe_hard_bytes: usize,
    /// Timeout for reaching a target (TCP connect, then SSH handshake).
    pub connect_timeout: Duration,
    /// Send an SSH keep-alive to a user, and to a target, after this long without hearing
    /// from it (none when `None`).
    pub keepalive: Option<Duration>,
    /// After this many unanswered keep-alives in a row, the peer is gone: its connection
    /// closes and its sessions end (`client-disconnect`, or the target's side closes).
    pub keepalive_max: usize,
    /// A shell session with a terminal that has had no input from its user for this long
    /// is ended, with a message to the user, as an unattended terminal; so is the target
    /// menu. Output does not count: a `tail -f` left running is still unattended. Exec
    /// sessions (with a terminal or not), scp, sftp, rsync and tunnels are driven by
    /// programs and never time out. Off (`None`, or zero) by default.
    pub idle_timeout: Option<Duration>,
    /// Shown to users before they log in (SSH's authentication banner: OpenSSH's `ssh`
    /// prints it on stderr unless run with `-q` or a `LogLevel` below `INFO`). Default
    /// [`DEFAULT_BANNER`]: people are told that what they do is recorded.
    pub banner: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            host_key: PathBuf::from("gatehouse-data/ssh_host_ed25519_key"),
            env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect(),
            offer_chacha20: false,
            // OpenSSH uses 2 MiB windows; the same keeps a bulk transfer's pipeline as full
            // as a plain hop's without buffering more per session.
            window_size: 2 * 1024 * 1024,
            max_packet: 32 * 1024,
            // 1 MiB of queue per direction absorbs bursts; 8 MiB is the bound in every case
            // (16 MiB per bridged channel at worst, nothing while idle).
            pipe_soft_bytes: 1024 * 1024,
            pipe_hard_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            // A peer that vanished without a word (network drop, power loss, a frozen
            // laptop) is let go after about 2 minutes; TCP keep-alive backs this up.
            keepalive: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            idle_timeout: None,
            banner: Some(DEFAULT_BANNER.to_string()),
        }
    }
}

impl ProxyConfig {
    /// Whether `name` may be passed to the target.
    pub fn env_allowed(&self, name: &str) -> bool {
        self.env_allow.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_allow_list_matches_names_and_prefixes() {
        let c = ProxyConfig::default();
        assert!(c.env_allowed("LANG"));
        assert!(c.env_allowed("LC_ALL"));
        assert!(!c.env_allowed("LD_PRELOAD"));
        assert!(!c.env_allowed("LANGUAGE"));
    }
}
