//! Target host keys: pinned from configuration, or on first use; a different key later
//! is a [`HostKeyCheck::Mismatch`] the proxy must refuse (and it is audited).
//!
//! One key is pinned per target, whatever its algorithm: accepting a new key just because
//! it is of another type would let an attacker bypass the pin by offering a different
//! algorithm. After a legitimate host-key change an admin re-pins it
//! (`gatehouse target pin web-01 --host-key …` or `--forget`).

use rusqlite::{Connection, params};

use super::audit::{AuditKind, AuditOutcome, NewEvent};
use super::error::{Error, Result};
use super::model::{HostKeyCheck, fingerprint, key_data};
use super::targets::target_row;
use super::{ControlPlane, optional, secs};

impl ControlPlane {
    pub(crate) fn store_pin(&self, conn: &Connection, target_id: i64, key: &ssh_key::PublicKey, source: &str) -> Result<()> {
        conn.execute(
            "INSERT INTO host_keys (target_id, key_data, fingerprint, source, pinned_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (target_id) DO UPDATE SET \
             key_data = excluded.key_data, fingerprint = excluded.fingerprint, \
             source = excluded.source, pinned_at = excluded.pinned_at",
            params![target_id, key_data(key)?, fingerprint(key), source, secs(self.now())],
        )?;
        Ok(())
    }

    /// Compares the key a target presented with its pin, pinning it if there is none.
    pub fn check_host_key(&self, target: &str, key: &ssh_key::PublicKey) -> Result<HostKeyCheck> {
        let conn = self.conn();
        let row = target_row(&conn, target)?.ok_or_else(|| Error::NotFound { what: "target", name: target.into() })?;
        let pinned: Option<(String, String)> = optional(conn.query_row(
            "SELECT key_data, fingerprint FROM host_keys WHERE target_id = ?1",
            [row.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        let got = fingerprint(key);
        let ev = NewEvent { target: Some(target), ..NewEvent::default() };
        match pinned {
            None => {
                self.store_pin(&conn, row.id, key, "first-use")?;
                self.audit(&conn, AuditKind::HostKey, AuditOutcome::Success, &ev, &format!("pinned host key {got} on first use"));
                Ok(HostKeyCheck::Pinned { fingerprint: got })
            }
            Some((data, _)) if data == key_data(key)? => Ok(HostKeyCheck::Match),
            Some((_, expected)) => {
                let reason = format!("HOST KEY CHANGED: pinned {expected}, target presented {got}");
                self.audit(&conn, AuditKind::HostKey, AuditOutcome::Failure, &ev, &reason);
                Ok(HostKeyCheck::Mismatch { expected, got })
            }
        }
    }

    /// Pins `key` for `target`, replacing any pin (an admin accepting a new host key).
    pub fn pin_host_key(&self, target: &str, key: &ssh_key::PublicKey) -> Result<()> {
        let conn = self.conn();
        let row = target_row(&conn, target)?.ok_or_else(|| Error::NotFound { what: "target", name: target.into() })?;
        self.store_pin(&conn, row.id, key, "config")
    }

    /// Drops a target's pin: the next connection pins whatever key it presents.
    pub fn forget_host_key(&self, target: &str) -> Result<bool> {
        let conn = self.conn();
        let row = target_row(&conn, target)?.ok_or_else(|| Error::NotFound { what: "target", name: target.into() })?;
        Ok(conn.execute("DELETE FROM host_keys WHERE target_id = ?1", [row.id])? > 0)
    }
}
