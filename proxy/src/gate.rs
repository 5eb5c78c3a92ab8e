//! The proxy core's view of the control plane: authentication (argon2 verification runs
//! on the blocking pool, never on a session loop), route resolution, the menu's list, and
//! host-key pinning. Everything the control plane says no to becomes a message for the
//! user here; the proxy core never touches SQL.

use std::net::SocketAddr;

use russh::keys::ssh_key::PublicKey;

use crate::control::{self, AuthDecision, ControlPlane, Route, RouteChoice};

/// What an authentication step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    /// Fully authenticated.
    Accept,
    /// First factor right; a TOTP code is due.
    NeedTotp,
    /// Wrong, unknown or locked out (the client is told nothing more).
    Reject,
}

/// What the host-key check decided.
#[derive(Debug)]
pub(crate) enum HostKeyCheck {
    /// Pinned and equal, or pinned now (first use).
    Ok,
    /// Changed: refuse, with the fingerprints.
    Mismatch(String),
}

/// The control plane, as the proxy uses it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Gate {
    control: ControlPlane,
}

/// Where an attempt with no known peer address is attributed.
fn source(peer: Option<SocketAddr>) -> SocketAddr {
    peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

fn outcome(d: AuthDecision) -> AuthOutcome {
    match d {
        AuthDecision::Accept { needs_totp: false } => AuthOutcome::Accept,
        AuthDecision::Accept { needs_totp: true } => AuthOutcome::NeedTotp,
        AuthDecision::Reject | AuthDecision::Locked { .. } => AuthOutcome::Reject,
    }
}

impl Gate {
    pub(crate) fn new(control: ControlPlane) -> Gate {
        Gate { control }
    }

    pub(crate) async fn auth_password(&self, user: &str, password: &str, peer: Option<SocketAddr>) -> AuthOutcome {
        let (c, user, password) = (self.control.clone(), user.to_string(), zeroize::Zeroizing::new(password.to_string()));
        // argon2 takes tens of milliseconds of CPU on purpose: keep it off the runtime.
        let d = tokio::task::spawn_blocking(move || c.auth_password(&user, &password, source(peer))).await;
        d.map(outcome).unwrap_or(AuthOutcome::Reject)
    }

    pub(crate) async fn auth_publickey(&self, user: &str, key: &PublicKey, peer: Option<SocketAddr>) -> AuthOutcome {
        outcome(self.control.auth_publickey(user, key, source(peer)))
    }

    /// Whether `key` is one of `user`'s keys (a key offer: no audit, no lockout).
    pub(crate) fn publickey_acceptable(&self, user: &str, key: &PublicKey) -> bool {
        self.control.publickey_acceptable(user, key)
    }

    pub(crate) async fn auth_totp(&self, user: &str, code: &str, peer: Option<SocketAddr>) -> bool {
        matches!(self.control.auth_totp(user, code, source(peer)), AuthDecision::Accept { .. })
    }

    /// The route for `user` to `target` as `account` (default account when `None`), or
    /// the reason it is refused, in words for the user.
    pub(crate) async fn resolve(&self, user: &str, target: &str, account: Option<&str>) -> Result<Route, String> {
        self.control.resolve(user, target, account).map_err(|e| match e.kind() {
            control::ErrorKind::NotFound | control::ErrorKind::Denied => e.to_string(),
            _ => {
                tracing::error!("resolving {user} -> {target}: {e}");
                format!("cannot reach {target} right now (control plane error)")
            }
        })
    }

    /// Targets and accounts `user` may reach, for the menu.
    pub(crate) async fn reachable(&self, user: &str) -> Vec<RouteChoice> {
        self.control.reachable(user).unwrap_or_else(|e| {
            tracing::error!("listing targets for {user}: {e}");
            Vec::new()
        })
    }

    pub(crate) async fn check_host_key(&self, target: &str, key: &PublicKey) -> HostKeyCheck {
        match self.control.check_host_key(target, key) {
            Ok(control::HostKeyCheck::Match) => HostKeyCheck::Ok,
            Ok(control::HostKeyCheck::Pinned { fingerprint }) => {
                tracing::info!(%target, %fingerprint, "host key pinned on first use");
                HostKeyCheck::Ok
            }
            Ok(control::HostKeyCheck::Mismatch { expected, got }) => HostKeyCheck::Mismatch(format!(
                "{target} presented host key {got}, but {expected} is pinned. This may be an \
                 attack; if the change is legitimate an administrator must re-pin it."
            )),
            Err(e) => HostKeyCheck::Mismatch(format!("cannot check the host key of {target}: {e}")),
        }
    }

    /// A forwarding decision for the audit trail: every refusal, and each `-R` listener
    /// allowed (the connections through allowed forwarding are recorded as tunnels).
    pub(crate) fn audit_forward(&self, user: &str, peer: Option<SocketAddr>, target: Option<&str>, what: &str, allowed: bool, detail: &str) {
        if !allowed {
            tracing::warn!(%user, ?target, source = %source(peer), "{what} refused: {detail}");
        }
        self.control.audit_forward(user, source(peer), target, what, allowed, detail);
    }
}
