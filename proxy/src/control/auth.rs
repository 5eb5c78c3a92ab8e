//! Authentication: password, public key, TOTP; each attempt checked against the lockout
//! state of the user name and of the source address, and recorded as an audit event.
//!
//! Public-key *offers* (the client asking "would you accept this key?" before signing)
//! go to [`ControlPlane::publickey_acceptable`], which has no side effects: clients offer
//! every key in their agent, and counting those as failures would lock people out for
//! having many keys. The signed attempt goes to [`ControlPlane::auth_publickey`]; its
//! rejections are audited but do not count towards lockout either (keys cannot be guessed,
//! and a proxy that accepts every offer gets one signed attempt per agent key).

use std::net::SocketAddr;

use rusqlite::{Connection, params};
use time::OffsetDateTime;

use super::audit::{AuditKind, AuditOutcome, NewEvent};
use super::error::Result;
use super::lockout::LockState;
use super::model::{AuthDecision, key_data};
use super::users::totp_context;
use super::{ControlPlane, optional, password, totp};

const USER: &str = "user";
const SOURCE: &str = "source";

/// Why an attempt failed, for the audit event (never shown to the client).
type Verdict = std::result::Result<bool, String>;

fn load_lock(conn: &Connection, scope: &str, subject: &str) -> Result<LockState> {
    let row: Option<(String, Option<i64>)> = optional(conn.query_row(
        "SELECT failures, locked_until FROM lockouts WHERE scope = ?1 AND subject = ?2",
        params![scope, subject],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ))?;
    Ok(match row {
        // An unreadable row is treated as empty rather than locking someone out forever.
        Some((failures, locked_until)) => {
            LockState { failures: serde_json::from_str(&failures).unwrap_or_default(), locked_until }
        }
        None => LockState::default(),
    })
}

fn store_lock(conn: &Connection, scope: &str, subject: &str, state: &LockState) -> Result<()> {
    conn.execute(
        "INSERT INTO lockouts (scope, subject, failures, locked_until, last_failure) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, subject) DO UPDATE SET \
         failures = excluded.failures, locked_until = excluded.locked_until, \
         last_failure = excluded.last_failure",
        params![
            scope,
            subject,
            serde_json::to_string(&state.failures).expect("a Vec<i64> serialises"),
            state.locked_until,
            state.failures.last().copied().unwrap_or(0).max(state.locked_until.unwrap_or(0)),
        ],
    )?;
    Ok(())
}

/// Forgets subjects whose failures have all left the window and who are not locked, so a
/// spray from many addresses does not grow the table for ever.
fn prune_locks(conn: &Connection, now: OffsetDateTime, window_secs: u64) -> Result<()> {
    let now_s = now.unix_timestamp();
    conn.execute(
        "DELETE FROM lockouts WHERE last_failure < ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        params![now_s.saturating_sub(window_secs as i64), now_s],
    )?;
    Ok(())
}

impl ControlPlane {
    /// The later of the user's and the source's lock ends, if either is locked. Sources
    /// are keyed by IP (canonical: `::ffff:a.b.c.d` is `a.b.c.d`), not port.
    fn locked(&self, conn: &Connection, user: &str, source: SocketAddr, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        let ip = source.ip().to_canonical().to_string();
        let a = load_lock(conn, USER, user)?.locked_until(now);
        let b = load_lock(conn, SOURCE, &ip)?.locked_until(now);
        Ok(a.max(b))
    }

    /// Counts a failure against the user and the source; the lock end if now locked.
    fn count_failure(&self, conn: &Connection, user: &str, source: SocketAddr, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        let policy = self.lockout_policy();
        let ip = source.ip().to_canonical().to_string();
        prune_locks(conn, now, policy.window_secs)?;
        let mut until = None;
        for (scope, subject) in [(USER, user), (SOURCE, ip.as_str())] {
            let mut state = load_lock(conn, scope, subject)?;
            until = until.max(state.fail(now, &policy));
            store_lock(conn, scope, subject, &state)?;
        }
        Ok(until)
    }

    /// Refuses a locked user/source up front: `Some(decision)` ends the attempt.
    fn refuse_if_locked(&self, conn: &Connection, ev: &NewEvent<'_>, now: OffsetDateTime) -> Option<AuthDecision> {
        let (user, source) = (ev.user.unwrap_or(""), ev.source.expect("auth events carry a source"));
        match self.locked(conn, user, source, now) {
            Ok(None) => None,
            Ok(Some(until)) => {
                let reason = format!("locked out until {until}");
                self.audit(conn, AuditKind::Auth, AuditOutcome::Locked, ev, &reason);
                Some(AuthDecision::Locked { until })
            }
            Err(e) => {
                tracing::error!(error = %e, user, "lockout state unreadable; refusing");
                self.audit(conn, AuditKind::Auth, AuditOutcome::Failure, ev, &format!("internal error: {e}"));
                Some(AuthDecision::Reject)
            }
        }
    }

    /// Turns a verdict into the decision, updating lockout state and the audit trail.
    fn conclude(&self, conn: &Connection, ev: &NewEvent<'_>, verdict: Verdict, now: OffsetDateTime) -> AuthDecision {
        let user = ev.user.unwrap_or("");
        match verdict {
            Ok(true) => {
                self.audit(conn, AuditKind::Auth, AuditOutcome::Partial, ev, "first factor accepted; TOTP required");
                AuthDecision::Accept { needs_totp: true }
            }
            Ok(false) => {
                if let Err(e) = conn.execute("DELETE FROM lockouts WHERE scope = ?1 AND subject = ?2", params![USER, user]) {
                    tracing::error!(error = %e, user, "cannot clear lockout state");
                }
                self.audit(conn, AuditKind::Auth, AuditOutcome::Success, ev, "authenticated");
                AuthDecision::Accept { needs_totp: false }
            }
            // A rejected public key is not a guess anyone can iterate (keys cannot be
            // brute-forced), and clients try every key in their agent: only password
            // and TOTP failures count towards lockout.
            Err(reason) if ev.method == Some("publickey") => {
                self.audit(conn, AuditKind::Auth, AuditOutcome::Failure, ev, &reason);
                AuthDecision::Reject
            }
            Err(mut reason) => {
                match self.count_failure(conn, user, ev.source.expect("auth events carry a source"), now) {
                    Ok(Some(until)) => reason.push_str(&format!("; now locked out until {until}")),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, user, "cannot update lockout state"),
                }
                self.audit(conn, AuditKind::Auth, AuditOutcome::Failure, ev, &reason);
                AuthDecision::Reject
            }
        }
    }

    /// Checks a password. **Slow** (argon2id, tens of ms of CPU): call it from
    /// `tokio::task::spawn_blocking`. The database lock is not held while hashing.
    pub fn auth_password(&self, user: &str, password: &str, source: SocketAddr) -> AuthDecision {
        let ev = NewEvent { method: Some("password"), user: Some(user), source: Some(source), ..NewEvent::default() };
        let now = self.now();
        let stored: Result<Option<(Option<String>, bool)>> = {
            let conn = self.conn();
            if let Some(decision) = self.refuse_if_locked(&conn, &ev, now) {
                return decision;
            }
            optional(conn.query_row(
                "SELECT password_hash, totp_secret IS NOT NULL FROM users WHERE name = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ))
            .map_err(Into::into)
        };
        let verdict = match stored {
            Ok(Some((Some(hash), needs_totp))) => {
                if password::verify_password(password, &hash) { Ok(needs_totp) } else { Err("wrong password".to_string()) }
            }
            Ok(Some((None, _))) => {
                password::verify_dummy(password);
                Err("user has no password set".to_string())
            }
            Ok(None) => {
                password::verify_dummy(password);
                Err("unknown user".to_string())
            }
            Err(e) => Err(format!("internal error: {e}")),
        };
        self.conclude(&self.conn(), &ev, verdict, now)
    }

    /// Whether `key` is one of `user`'s keys. No side effects: for the client's key offers.
    pub fn publickey_acceptable(&self, user: &str, key: &ssh_key::PublicKey) -> bool {
        let Ok(data) = key_data(key) else { return false };
        let conn = self.conn();
        matches!(user_key_row(&conn, user, &data), Ok(Some(Some(_))))
    }

    /// Checks a public key whose signature the SSH layer has verified.
    pub fn auth_publickey(&self, user: &str, key: &ssh_key::PublicKey, source: SocketAddr) -> AuthDecision {
        let ev = NewEvent { method: Some("publickey"), user: Some(user), source: Some(source), ..NewEvent::default() };
        let now = self.now();
        let conn = self.conn();
        if let Some(decision) = self.refuse_if_locked(&conn, &ev, now) {
            return decision;
        }
        let fp = super::model::fingerprint(key);
        let verdict = match key_data(key).and_then(|data| user_key_row(&conn, user, &data)) {
            Ok(Some(Some(needs_totp))) => Ok(needs_totp),
            Ok(Some(None)) => Err(format!("key {fp} is not one of the user's keys")),
            Ok(None) => Err(format!("unknown user (key {fp})")),
            Err(e) => Err(format!("internal error: {e}")),
        };
        self.conclude(&conn, &ev, verdict, now)
    }

    /// Checks a TOTP code, the second factor after a password or key that returned
    /// `Accept { needs_totp: true }` (the caller tracks that the first factor passed).
    /// Each code is accepted once.
    pub fn auth_totp(&self, user: &str, code: &str, source: SocketAddr) -> AuthDecision {
        let ev = NewEvent { method: Some("totp"), user: Some(user), source: Some(source), ..NewEvent::default() };
        let now = self.now();
        let conn = self.conn();
        if let Some(decision) = self.refuse_if_locked(&conn, &ev, now) {
            return decision;
        }
        let verdict = match self.check_totp(&conn, user, code, now) {
            Ok(verdict) => verdict,
            Err(e) => Err(format!("internal error: {e}")),
        };
        self.conclude(&conn, &ev, verdict, now)
    }

    fn check_totp(&self, conn: &Connection, user: &str, code: &str, now: OffsetDateTime) -> Result<Verdict> {
        let row: Option<(i64, Option<Vec<u8>>, Option<i64>)> = optional(conn.query_row(
            "SELECT id, totp_secret, totp_last_step FROM users WHERE name = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ))?;
        let Some((id, sealed, last_step)) = row else { return Ok(Err("unknown user".into())) };
        let Some(sealed) = sealed else { return Ok(Err("TOTP is not enrolled".into())) };
        let secret = self.key().open(&totp_context(user), &sealed)?;
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        match totp::check(&secret, user, code, unix)? {
            None => Ok(Err("wrong TOTP code".into())),
            Some(step) if last_step.is_some_and(|last| step as i64 <= last) => {
                Ok(Err("TOTP code already used".into()))
            }
            Some(step) => {
                conn.execute("UPDATE users SET totp_last_step = ?1 WHERE id = ?2", params![step as i64, id])?;
                Ok(Ok(false))
            }
        }
    }
}

/// `None`: no such user; `Some(None)`: the user lacks this key; `Some(Some(needs_totp))`.
fn user_key_row(conn: &Connection, user: &str, data: &str) -> Result<Option<Option<bool>>> {
    let row: Option<(i64, bool)> = optional(conn.query_row(
        "SELECT id, totp_secret IS NOT NULL FROM users WHERE name = ?1",
        [user],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ))?;
    let Some((id, needs_totp)) = row else { return Ok(None) };
    let has: Option<i64> = optional(conn.query_row(
        "SELECT 1 FROM user_keys WHERE user_id = ?1 AND key_data = ?2",
        params![id, data],
        |r| r.get(0),
    ))?;
    Ok(Some(has.map(|_| needs_totp)))
}
