//! The control plane's public data: what the proxy core receives and what management
//! calls take and return.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::{Error, Result};

/// The outcome of one authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// The factor is right. With `needs_totp`, the user has TOTP enrolled and must still
    /// pass [`ControlPlane::auth_totp`](super::ControlPlane::auth_totp) (keyboard-interactive).
    Accept {
        /// A TOTP code is still required.
        needs_totp: bool,
    },
    /// Wrong or unknown credentials. Say nothing more to the client.
    Reject,
    /// The user or the source address is locked out until `until`, whatever was sent.
    Locked {
        /// When the lockout ends.
        until: OffsetDateTime,
    },
}

/// Where a session goes: everything the proxy needs to open the upstream connection.
#[derive(Debug, Clone)]
pub struct Route {
    /// The target.
    pub target: TargetInfo,
    /// The account (remote user name) to log in as.
    pub account: String,
    /// The account's credential, decrypted. Never show or log it.
    pub credential: Credential,
    /// What the user may do besides sessions.
    pub allow: Allowances,
}

/// A target's address and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetInfo {
    /// Its unique name (`web-01`).
    pub name: String,
    /// Host name or address to connect to.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Labels (`env=prod`), matched by rules.
    pub labels: BTreeMap<String, String>,
}

/// Per-target permissions beyond shell/exec/sftp sessions. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Allowances {
    /// `-L`/`-R`/`-J` (direct-tcpip and tcpip-forward).
    pub port_forward: bool,
    /// Agent forwarding.
    pub agent: bool,
    /// X11 forwarding.
    pub x11: bool,
}

impl Allowances {
    /// Parses `port-forward,agent,x11` (any subset, comma separated; empty = none).
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Allowances> {
        let mut allow = Allowances::default();
        for item in items.iter().flat_map(|s| s.as_ref().split(',')) {
            match item.trim() {
                "" => {}
                "port-forward" => allow.port_forward = true,
                "agent" => allow.agent = true,
                "x11" => allow.x11 = true,
                other => {
                    return Err(Error::invalid(
                        format!("allowance `{other}`"),
                        "expected port-forward, agent or x11",
                    ));
                }
            }
        }
        Ok(allow)
    }

    /// The names of what is allowed, in `parse_list` form.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.port_forward {
            out.push("port-forward");
        }
        if self.agent {
            out.push("agent");
        }
        if self.x11 {
            out.push("x11");
        }
        out
    }
}

/// A target account's secret. `Debug` never shows it.
#[derive(Clone)]
pub enum Credential {
    /// A password.
    Password(Zeroizing<String>),
    /// An unencrypted private key (stored encrypted with the master key).
    PrivateKey(Box<ssh_key::PrivateKey>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(..)"),
            Credential::PrivateKey(k) => write!(f, "PrivateKey({})", k.algorithm()),
        }
    }
}

impl Credential {
    /// Reads an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    /// `origin` names where it came from, for the error message.
    pub fn private_key_from_openssh(pem: &str, origin: &str) -> Result<Credential> {
        let key = ssh_key::PrivateKey::from_openssh(pem.trim()).map_err(|e| {
            Error::invalid(
                format!("private key {origin}"),
                format!(
                    "{e}; expected an OpenSSH private key (convert other formats with \
                     `ssh-keygen -p -f FILE`)"
                ),
            )
        })?;
        if key.is_encrypted() {
            return Err(Error::invalid(
                format!("private key {origin}"),
                "it is passphrase-protected; give gatehouse an unencrypted copy (it is stored \
                 encrypted with the master key)",
            ));
        }
        Ok(Credential::PrivateKey(Box::new(key)))
    }

    /// "password" or "key".
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Password(_) => "password",
            Credential::PrivateKey(_) => "key",
        }
    }

    /// The bytes that get sealed for storage.
    pub(crate) fn to_stored(&self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Credential::Password(p) => Ok(Zeroizing::new(p.as_bytes().to_vec())),
            Credential::PrivateKey(k) => {
                let pem = k
                    .to_openssh(ssh_key::LineEnding::LF)
                    .map_err(|e| Error::invalid("private key", e.to_string()))?;
                Ok(Zeroizing::new(pem.as_bytes().to_vec()))
            }
        }
    }

    /// The inverse of [`Credential::to_stored`].
    pub(crate) fn from_stored(kind: &str, bytes: &[u8], what: &str) -> Result<Credential> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Decrypt { what: what.into() })?;
        match kind {
            "password" => Ok(Credential::Password(Zeroizing::new(text.to_string()))),
            "key" => Credential::private_key_from_openssh(text, what),
            other => Err(Error::invalid(format!("stored {what}"), format!("unknown kind {other}"))),
        }
    }
}

/// One entry of the interactive target menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteChoice {
    /// Target name.
    pub target: String,
    /// Account name.
    pub account: String,
    /// Whether it is the target's default account.
    pub is_default: bool,
    /// The target's labels, to show beside it.
    pub labels: BTreeMap<String, String>,
}

/// What [`ControlPlane::check_host_key`](super::ControlPlane::check_host_key) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// The key is the pinned one.
    Match,
    /// No key was pinned: this one is now (trust on first use).
    Pinned {
        /// Its SHA256 fingerprint.
        fingerprint: String,
    },
    /// The target presents a different key than the pinned one: refuse the connection.
    Mismatch {
        /// The pinned key's SHA256 fingerprint.
        expected: String,
        /// The presented key's SHA256 fingerprint.
        got: String,
    },
}

/// Who owns a record: the CLI, or the declarative config file (which may replace or
/// remove it on the next `apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Managed {
    /// Created by a CLI command or API call.
    Cli,
    /// Created by the config file.
    Config,
}

impl std::fmt::Display for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Managed {
    /// `cli` or `config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Managed::Cli => "cli",
            Managed::Config => "config",
        }
    }

    pub(crate) fn parse(s: &str) -> Managed {
        if s == "config" { Managed::Config } else { Managed::Cli }
    }
}

/// Checks a user, target, account, group or rule name: 1–64 of `A-Z a-z 0-9 . _ -`, not
/// starting with `-`. `:` and `@` are excluded because `user:account@target` is the
/// login syntax.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("{what} `{name}`"),
            "use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with -)",
        ))
    }
}

/// SHA256 fingerprint in OpenSSH form (`SHA256:...`).
pub(crate) fn fingerprint(key: &ssh_key::PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

/// A public key without its comment, the form keys are compared and stored in.
pub(crate) fn key_data(key: &ssh_key::PublicKey) -> Result<String> {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::invalid("public key", e.to_string()))
}

/// Parses one public key in `authorized_keys` form (options before the key type are
/// not supported and rejected clearly).
pub fn parse_public_key(line: &str, origin: &str) -> Result<ssh_key::PublicKey> {
    ssh_key::PublicKey::from_openssh(line.trim()).map_err(|e| {
        Error::invalid(
            format!("public key {origin}"),
            format!("{e}; expected `TYPE BASE64 [COMMENT]` as in authorized_keys"),
        )
    })
}

/// Parses every key of an `authorized_keys`-style text (blank lines and `#` comments skipped).
pub fn parse_authorized_keys(text: &str, origin: &str) -> Result<Vec<ssh_key::PublicKey>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| parse_public_key(l, &format!("{origin} line {}", i + 1)))
        .collect()
}
