//! The audit trail of the control plane: every authentication attempt, access decision
//! and host-key event, stored in `audit_events` and read back by time for the indexer's
//! `events` table (the binary does that wiring).

use std::net::SocketAddr;

use rusqlite::{Connection, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::error::Result;
use super::ControlPlane;

/// What an audit event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An authentication attempt (password, publickey, totp).
    Auth,
    /// A decision to route (or not) a user to a target account.
    Access,
    /// A target host key pinned or found changed.
    HostKey,
    /// A forwarding request (port, agent, X11) refused by policy, or a `-R` listener
    /// allowed.
    Forward,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Accepted (for auth: fully authenticated).
    Success,
    /// First factor accepted, TOTP still required.
    Partial,
    /// Wrong credentials / no rule / unknown target / host key changed.
    Failure,
    /// Refused because the user or source is locked out.
    Locked,
}

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Increasing id.
    pub id: i64,
    /// When (microsecond precision).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What about.
    pub kind: AuditKind,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// `password`, `publickey`, `totp` for auth events; for forward events what was
    /// asked: `port forwarding`, `agent forwarding`, `X11 forwarding`.
    pub method: Option<String>,
    /// The user name as given (may not exist).
    pub user: Option<String>,
    /// Where the attempt came from.
    pub source: Option<SocketAddr>,
    /// The target, for access and host-key events.
    pub target: Option<String>,
    /// The account, for access events.
    pub account: Option<String>,
    /// The precise reason ("wrong password", "no rule grants …", "locked until …").
    pub reason: String,
}

/// An event about to be recorded (id and time are filled in).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewEvent<'a> {
    pub method: Option<&'a str>,
    pub user: Option<&'a str>,
    pub source: Option<SocketAddr>,
    pub target: Option<&'a str>,
    pub account: Option<&'a str>,
}

impl AuditKind {
    fn as_str(self) -> &'static str {
        match self {
            AuditKind::Auth => "auth",
            AuditKind::Access => "access",
            AuditKind::HostKey => "host_key",
            AuditKind::Forward => "forward",
        }
    }
    fn parse(s: &str) -> AuditKind {
        match s {
            "access" => AuditKind::Access,
            "host_key" => AuditKind::HostKey,
            "forward" => AuditKind::Forward,
            _ => AuditKind::Auth,
        }
    }
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Partial => "partial",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Locked => "locked",
        }
    }
    fn parse(s: &str) -> AuditOutcome {
        match s {
            "success" => AuditOutcome::Success,
            "partial" => AuditOutcome::Partial,
            "locked" => AuditOutcome::Locked,
            _ => AuditOutcome::Failure,
        }
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub(crate) fn insert(
    conn: &Connection,
    at: OffsetDateTime,
    kind: AuditKind,
    outcome: AuditOutcome,
    ev: &NewEvent<'_>,
    reason: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_events (at_us, kind, outcome, method, user_name, source_ip, \
         source_port, target, account, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            micros(at),
            kind.as_str(),
            outcome.as_str(),
            ev.method,
            ev.user,
            ev.source.map(|s| s.ip().to_string()),
            ev.source.map(|s| s.port()),
            ev.target,
            ev.account,
            reason,
        ],
    )?;
    Ok(())
}

impl ControlPlane {
    /// Records an event; a database failure here is logged, never fatal to the caller
    /// (refusing a login because the audit write failed would be worse than a log line,
    /// and the decision itself is still returned).
    pub(crate) fn audit(
        &self,
        conn: &Connection,
        kind: AuditKind,
        outcome: AuditOutcome,
        ev: &NewEvent<'_>,
        reason: &str,
    ) {
        if let Err(e) = insert(conn, self.now(), kind, outcome, ev, reason) {
            tracing::error!(error = %e, ?kind, ?outcome, reason, "cannot store audit event");
        }
    }

    /// Records a forwarding decision (`what`: `port forwarding`, `agent forwarding`,
    /// `X11 forwarding`) by `user` from `source` through `target`, with the details.
    pub fn audit_forward(&self, user: &str, source: SocketAddr, target: Option<&str>, what: &str, allowed: bool, detail: &str) {
        let ev = NewEvent { method: Some(what), user: Some(user), source: Some(source), target, ..NewEvent::default() };
        let outcome = if allowed { AuditOutcome::Success } else { AuditOutcome::Failure };
        self.audit(&self.conn(), AuditKind::Forward, outcome, &ev, detail);
    }

    /// Every audit event at or after `since`, oldest first.
    pub fn audit_events(&self, since: OffsetDateTime) -> Result<Vec<AuditEvent>> {
        self.query_events("at_us >= ?1 ORDER BY id", micros(since), i64::MAX)
    }

    /// Up to `limit` events with an id above `after_id`, oldest first: for a consumer
    /// that follows the trail incrementally (ids only grow; times may tie).
    pub fn audit_events_after(&self, after_id: i64, limit: usize) -> Result<Vec<AuditEvent>> {
        self.query_events("id > ?1 ORDER BY id", after_id, i64::try_from(limit).unwrap_or(i64::MAX))
    }

    fn query_events(&self, filter: &str, arg: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, at_us, kind, outcome, method, user_name, source_ip, source_port, \
             target, account, reason FROM audit_events WHERE {filter} LIMIT ?2"
        ))?;
        let rows = stmt.query_map(rusqlite::params![arg, limit], |r| {
            let at_us: i64 = r.get(1)?;
            let ip: Option<String> = r.get(6)?;
            let port: Option<u16> = r.get(7)?;
            Ok(AuditEvent {
                id: r.get(0)?,
                at: OffsetDateTime::from_unix_timestamp_nanos(at_us as i128 * 1000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                kind: AuditKind::parse(&r.get::<_, String>(2)?),
                outcome: AuditOutcome::parse(&r.get::<_, String>(3)?),
                method: r.get(4)?,
                user: r.get(5)?,
                source: ip
                    .and_then(|ip| ip.parse().ok())
                    .map(|ip| SocketAddr::new(ip, port.unwrap_or(0))),
                target: r.get(8)?,
                account: r.get(9)?,
                reason: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
