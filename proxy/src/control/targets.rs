//! Targets (host, port, labels, allowances) and their accounts, whose credentials are
//! sealed with the master key; management for `gatehouse target …`.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::error::{Error, Result};
use super::model::{Allowances, Credential, Managed, TargetInfo, fingerprint, validate_name};
use super::{ControlPlane, optional, secs};

/// A target to create.
#[derive(Debug, Clone)]
pub struct NewTarget {
    /// Unique name users type (`web-01`).
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Labels (`env=prod`).
    pub labels: BTreeMap<String, String>,
    /// Account used when the user names none.
    pub default_account: Option<String>,
    /// What besides sessions is allowed.
    pub allow: Allowances,
    /// Pin this host key now instead of on first use.
    pub host_key: Option<ssh_key::PublicKey>,
    /// Accounts and their credentials.
    pub accounts: Vec<(String, Credential)>,
}

/// An account, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    /// Account name.
    pub name: String,
    /// `password` or `key`.
    pub kind: String,
}

/// A target, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    /// Address and labels.
    #[serde(flatten)]
    pub info: TargetInfo,
    /// Default account.
    pub default_account: Option<String>,
    /// Accounts.
    pub accounts: Vec<AccountSummary>,
    /// Allowances.
    pub allow: Allowances,
    /// The pinned host key's fingerprint, if pinned.
    pub host_key: Option<String>,
    /// CLI- or config-managed.
    pub managed: Managed,
}

/// A target row, as the resolver needs it.
pub(crate) struct TargetRow {
    pub id: i64,
    pub info: TargetInfo,
    pub default_account: Option<String>,
    pub allow: Allowances,
    pub managed: Managed,
}

pub(crate) fn account_context(target: &str, account: &str) -> String {
    format!("account:{target}/{account}")
}

/// Validates a label `key=value` pair's parts.
pub(crate) fn validate_label(key: &str, value: &str) -> Result<()> {
    validate_name("label key", key)?;
    if value.is_empty() || value.len() > 128 || value.contains([',', '=']) || value.trim() != value {
        return Err(Error::invalid(
            format!("label value `{value}`"),
            "must be 1-128 characters without `,` `=` or surrounding spaces",
        ));
    }
    Ok(())
}

pub(crate) fn validate_target(t: &NewTarget) -> Result<()> {
    validate_name("target name", &t.name)?;
    if t.host.trim().is_empty() || t.host.contains(char::is_whitespace) {
        return Err(Error::invalid(format!("host `{}` of target {}", t.host, t.name), "empty or has spaces"));
    }
    if t.port == 0 {
        return Err(Error::invalid(format!("port of target {}", t.name), "must be 1-65535"));
    }
    t.labels.iter().try_for_each(|(k, v)| validate_label(k, v))?;
    for (name, _) in &t.accounts {
        validate_name("account name", name)?;
    }
    if let Some(d) = &t.default_account {
        validate_name("default account", d)?;
    }
    Ok(())
}

pub(crate) fn target_row(conn: &Connection, name: &str) -> Result<Option<TargetRow>> {
    Ok(optional(conn.query_row(
        "SELECT id, name, host, port, labels, default_account, allow_port_forward, allow_agent, \
         allow_x11, managed FROM targets WHERE name = ?1",
        [name],
        read_target_row,
    ))?)
}

fn read_target_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TargetRow> {
    let labels: String = r.get(4)?;
    Ok(TargetRow {
        id: r.get(0)?,
        info: TargetInfo {
            name: r.get(1)?,
            host: r.get(2)?,
            port: r.get(3)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
        },
        default_account: r.get(5)?,
        allow: Allowances { port_forward: r.get(6)?, agent: r.get(7)?, x11: r.get(8)? },
        managed: Managed::parse(&r.get::<_, String>(9)?),
    })
}

pub(crate) fn all_targets(conn: &Connection) -> Result<Vec<TargetRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, host, port, labels, default_account, allow_port_forward, allow_agent, \
         allow_x11, managed FROM targets ORDER BY name",
    )?;
    let rows = stmt.query_map([], read_target_row)?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub(crate) fn account_names(conn: &Connection, target_id: i64) -> Result<Vec<AccountSummary>> {
    let mut stmt = conn.prepare("SELECT name, kind FROM accounts WHERE target_id = ?1 ORDER BY name")?;
    let rows = stmt
        .query_map([target_id], |r| Ok(AccountSummary { name: r.get(0)?, kind: r.get(1)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Inserts or updates a target row (not its accounts or host key); returns its id.
pub(crate) fn upsert_target(conn: &Connection, t: &NewTarget, managed: Managed, now: time::OffsetDateTime) -> Result<i64> {
    conn.execute(
        "INSERT INTO targets (name, host, port, labels, default_account, allow_port_forward, \
         allow_agent, allow_x11, managed, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (name) DO UPDATE SET host = excluded.host, port = excluded.port, \
         labels = excluded.labels, default_account = excluded.default_account, \
         allow_port_forward = excluded.allow_port_forward, allow_agent = excluded.allow_agent, \
         allow_x11 = excluded.allow_x11, managed = excluded.managed",
        params![
            t.name,
            t.host,
            t.port,
            serde_json::to_string(&t.labels).expect("a string map serialises"),
            t.default_account,
            t.allow.port_forward,
            t.allow.agent,
            t.allow.x11,
            managed.as_str(),
            secs(now)
        ],
    )?;
    Ok(conn.query_row("SELECT id FROM targets WHERE name = ?1", [&t.name], |r| r.get(0))?)
}

impl ControlPlane {
    pub(crate) fn store_account(&self, conn: &Connection, target_id: i64, target: &str, account: &str, cred: &Credential) -> Result<()> {
        let sealed = self.key().seal(&account_context(target, account), &cred.to_stored()?);
        conn.execute(
            "INSERT INTO accounts (target_id, name, kind, secret) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (target_id, name) DO UPDATE SET kind = excluded.kind, secret = excluded.secret",
            params![target_id, account, cred.kind(), sealed],
        )?;
        Ok(())
    }

    /// The decrypted credential of an account, or `None` if the account does not exist.
    pub(crate) fn load_credential(&self, conn: &Connection, target_id: i64, target: &str, account: &str) -> Result<Option<Credential>> {
        let row: Option<(String, Vec<u8>)> = optional(conn.query_row(
            "SELECT kind, secret FROM accounts WHERE target_id = ?1 AND name = ?2",
            params![target_id, account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        let Some((kind, sealed)) = row else { return Ok(None) };
        let context = account_context(target, account);
        let plain = self.key().open(&context, &sealed)?;
        Credential::from_stored(&kind, &plain, &context).map(Some)
    }

    /// Creates a target with its accounts (and pinned host key, if given).
    pub fn add_target(&self, t: &NewTarget) -> Result<()> {
        validate_target(t)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if target_row(&tx, &t.name)?.is_some() {
            return Err(Error::Conflict { what: "target", name: t.name.clone() });
        }
        let id = upsert_target(&tx, t, Managed::Cli, self.now())?;
        for (account, cred) in &t.accounts {
            self.store_account(&tx, id, &t.name, account, cred)?;
        }
        if let Some(key) = &t.host_key {
            self.store_pin(&tx, id, key, "config")?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a target with its accounts and host-key pin.
    pub fn remove_target(&self, name: &str) -> Result<()> {
        let n = self.conn().execute("DELETE FROM targets WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(Error::NotFound { what: "target", name: name.into() });
        }
        Ok(())
    }

    /// Adds or replaces an account's credential on a target.
    pub fn set_account(&self, target: &str, account: &str, cred: &Credential) -> Result<()> {
        validate_name("account name", account)?;
        let conn = self.conn();
        let row = target_row(&conn, target)?.ok_or_else(|| Error::NotFound { what: "target", name: target.into() })?;
        self.store_account(&conn, row.id, target, account, cred)
    }

    /// Removes an account from a target.
    pub fn remove_account(&self, target: &str, account: &str) -> Result<()> {
        let conn = self.conn();
        let row = target_row(&conn, target)?.ok_or_else(|| Error::NotFound { what: "target", name: target.into() })?;
        let n = conn.execute("DELETE FROM accounts WHERE target_id = ?1 AND name = ?2", params![row.id, account])?;
        if n == 0 {
            return Err(Error::NotFound { what: "account", name: format!("{account}@{target}") });
        }
        Ok(())
    }

    /// Sets or clears a target's default account.
    pub fn set_default_account(&self, target: &str, account: Option<&str>) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE targets SET default_account = ?1 WHERE name = ?2",
            params![account, target],
        )?;
        if n == 0 {
            return Err(Error::NotFound { what: "target", name: target.into() });
        }
        Ok(())
    }

    /// Every target, by name.
    pub fn list_targets(&self) -> Result<Vec<TargetSummary>> {
        let conn = self.conn();
        let mut out = Vec::new();
        for row in all_targets(&conn)? {
            let host_key: Option<String> = optional(conn.query_row(
                "SELECT fingerprint FROM host_keys WHERE target_id = ?1",
                [row.id],
                |r| r.get(0),
            ))?;
            out.push(TargetSummary {
                accounts: account_names(&conn, row.id)?,
                info: row.info,
                default_account: row.default_account,
                allow: row.allow,
                host_key,
                managed: row.managed,
            });
        }
        Ok(out)
    }

    /// The fingerprint a key would be pinned under (for CLI messages).
    pub fn fingerprint(key: &ssh_key::PublicKey) -> String {
        fingerprint(key)
    }
}
