//! Users: names, public keys, password hashes, TOTP secrets (sealed), groups; and their
//! management (the CLI's `gatehouse user …`).

use rusqlite::{Connection, params};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::lockout::LockState;
use super::model::{Managed, fingerprint, key_data, validate_name};
use super::totp::{self, TotpEnrollment};
use super::{ControlPlane, optional, password, secs};

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Password, if they may log in with one (hashed with argon2id before storing).
    pub password: Option<Zeroizing<String>>,
    /// Public keys they may log in with.
    pub keys: Vec<ssh_key::PublicKey>,
    /// Groups (rules name them as `@group`).
    pub groups: Vec<String>,
    /// Enrol TOTP as a second factor now.
    pub totp: bool,
}

/// A stored public key, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// `SHA256:...`.
    pub fingerprint: String,
    /// The key in `authorized_keys` form, without comment.
    pub key: String,
    /// Its comment.
    pub comment: String,
}

/// A user, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Whether a password is set.
    pub has_password: bool,
    /// Public keys.
    pub keys: Vec<KeyInfo>,
    /// Groups.
    pub groups: Vec<String>,
    /// Whether TOTP is enrolled.
    pub totp: bool,
    /// CLI- or config-managed.
    pub managed: Managed,
}

/// A current lockout, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockoutInfo {
    /// `user` or `source`.
    pub scope: String,
    /// The user name or source address.
    pub subject: String,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

pub(crate) fn user_id(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(optional(conn.query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0)))?)
}

fn require_user(conn: &Connection, name: &str) -> Result<i64> {
    user_id(conn, name)?.ok_or_else(|| Error::NotFound { what: "user", name: name.into() })
}

/// The groups of a user (empty for an unknown one).
pub(crate) fn groups_of(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT g.group_name FROM user_groups g JOIN users u ON u.id = g.user_id \
         WHERE u.name = ?1 ORDER BY g.group_name",
    )?;
    let groups = stmt.query_map([name], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(groups)
}

pub(crate) fn insert_user(
    conn: &Connection,
    name: &str,
    hash: Option<&str>,
    managed: Managed,
    now: OffsetDateTime,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO users (name, password_hash, managed, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, hash, managed.as_str(), secs(now)],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn add_keys(conn: &Connection, id: i64, keys: &[ssh_key::PublicKey]) -> Result<()> {
    for key in keys {
        conn.execute(
            "INSERT INTO user_keys (user_id, key_data, comment, fingerprint) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id, key_data) DO UPDATE SET comment = excluded.comment",
            params![id, key_data(key)?, key.comment().as_str_lossy(), fingerprint(key)],
        )?;
    }
    Ok(())
}

pub(crate) fn set_groups(conn: &Connection, id: i64, groups: &[String]) -> Result<()> {
    conn.execute("DELETE FROM user_groups WHERE user_id = ?1", [id])?;
    for g in groups {
        conn.execute(
            "INSERT INTO user_groups (user_id, group_name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, g],
        )?;
    }
    Ok(())
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<UserInfo>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, password_hash IS NOT NULL, totp_secret IS NOT NULL, managed \
         FROM users ORDER BY name",
    )?;
    let rows: Vec<(i64, String, bool, bool, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut keys_stmt = conn.prepare(
        "SELECT fingerprint, key_data, comment FROM user_keys WHERE user_id = ?1 ORDER BY id",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, name, has_password, totp, managed) in rows {
        let keys = keys_stmt
            .query_map([id], |r| Ok(KeyInfo { fingerprint: r.get(0)?, key: r.get(1)?, comment: r.get(2)? }))?
            .collect::<rusqlite::Result<_>>()?;
        let groups = groups_of(conn, &name)?;
        out.push(UserInfo { name, has_password, keys, groups, totp, managed: Managed::parse(&managed) });
    }
    Ok(out)
}

fn validate_groups(groups: &[String]) -> Result<()> {
    groups.iter().try_for_each(|g| validate_name("group name", g))
}

impl ControlPlane {
    /// Creates a user. With `totp`, returns the enrolment to hand to the user.
    /// Hashes the password (slow: see the module docs).
    pub fn add_user(&self, new: &NewUser) -> Result<Option<TotpEnrollment>> {
        validate_name("user name", &new.name)?;
        validate_groups(&new.groups)?;
        let hash = new.password.as_ref().map(|p| password::hash_password(p)).transpose()?;
        let secret = new.totp.then(totp::new_secret).map(Zeroizing::new);
        let enrollment =
            secret.as_ref().map(|s| totp::enrollment(s, &new.name)).transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if user_id(&tx, &new.name)?.is_some() {
            return Err(Error::Conflict { what: "user", name: new.name.clone() });
        }
        let id = insert_user(&tx, &new.name, hash.as_deref(), Managed::Cli, self.now())?;
        add_keys(&tx, id, &new.keys)?;
        set_groups(&tx, id, &new.groups)?;
        if let Some(secret) = &secret {
            let sealed = self.key().seal(&totp_context(&new.name), secret);
            tx.execute("UPDATE users SET totp_secret = ?1 WHERE id = ?2", params![sealed, id])?;
        }
        tx.commit()?;
        Ok(enrollment)
    }

    /// Deletes a user with their keys and groups (rules naming them stay, matching nobody).
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM users WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(Error::NotFound { what: "user", name: name.into() });
        }
        Ok(())
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        list(&self.conn())
    }

    /// Sets (or, with `None`, removes) a user's password. Hashes (slow).
    pub fn set_password(&self, name: &str, password: Option<&str>) -> Result<()> {
        let hash = password.map(password::hash_password).transpose()?;
        let conn = self.conn();
        let id = require_user(&conn, name)?;
        conn.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, id])?;
        Ok(())
    }

    /// Adds public keys to a user (keys already there keep one copy).
    pub fn add_user_keys(&self, name: &str, keys: &[ssh_key::PublicKey]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = require_user(&tx, name)?;
        add_keys(&tx, id, keys)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a user's key by its `SHA256:` fingerprint.
    pub fn remove_user_key(&self, name: &str, fingerprint: &str) -> Result<()> {
        let conn = self.conn();
        let id = require_user(&conn, name)?;
        let n = conn.execute(
            "DELETE FROM user_keys WHERE user_id = ?1 AND fingerprint = ?2",
            params![id, fingerprint],
        )?;
        if n == 0 {
            return Err(Error::NotFound { what: "key", name: format!("{name} {fingerprint}") });
        }
        Ok(())
    }

    /// Replaces a user's groups.
    pub fn set_user_groups(&self, name: &str, groups: &[String]) -> Result<()> {
        validate_groups(groups)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = require_user(&tx, name)?;
        set_groups(&tx, id, groups)?;
        tx.commit()?;
        Ok(())
    }

    /// Enrols (or re-enrols, invalidating the old secret) TOTP for a user.
    pub fn enroll_totp(&self, name: &str) -> Result<TotpEnrollment> {
        let secret = Zeroizing::new(totp::new_secret());
        let enrollment = totp::enrollment(&secret, name)?;
        let conn = self.conn();
        let id = require_user(&conn, name)?;
        let sealed = self.key().seal(&totp_context(name), &secret);
        conn.execute(
            "UPDATE users SET totp_secret = ?1, totp_last_step = NULL WHERE id = ?2",
            params![sealed, id],
        )?;
        Ok(enrollment)
    }

    /// Removes a user's TOTP enrolment.
    pub fn disable_totp(&self, name: &str) -> Result<()> {
        let conn = self.conn();
        let id = require_user(&conn, name)?;
        conn.execute(
            "UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Current lockouts (users and source addresses).
    pub fn lockouts(&self) -> Result<Vec<LockoutInfo>> {
        let now = self.now();
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT scope, subject, failures, locked_until FROM lockouts ORDER BY scope, subject",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (scope, subject, failures, locked_until) = row?;
            let state = LockState { failures: serde_json::from_str(&failures).unwrap_or_default(), locked_until };
            if let Some(until) = state.locked_until(now) {
                out.push(LockoutInfo { scope, subject, until });
            }
        }
        Ok(out)
    }

    /// Lifts a lockout: `subject` is a user name or a source IP address. Returns whether
    /// there was anything to lift.
    pub fn unlock(&self, subject: &str) -> Result<bool> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM lockouts WHERE subject = ?1", [subject])?;
        Ok(n > 0)
    }
}

/// The sealing context of a user's TOTP secret.
pub(crate) fn totp_context(user: &str) -> String {
    format!("totp:{user}")
}
