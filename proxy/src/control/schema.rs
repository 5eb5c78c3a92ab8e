//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Only portable SQL (no SQLite-only types or functions beyond the pragmas here), so the
//! same statements can later back a PostgreSQL store. Times are integer seconds, or
//! microseconds for audit events, since the Unix epoch; label and selector lists are JSON.

use rusqlite::Connection;

use super::crypto::MasterKey;
use super::error::{Error, Result};

/// Migration `i` brings the schema from version `i` to `i + 1`. Append, never edit.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    totp_secret    BLOB,
    totp_last_step INTEGER,
    managed        TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE TABLE user_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_data    TEXT NOT NULL,
    comment     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    UNIQUE (user_id, key_data)
);
CREATE TABLE user_groups (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);
CREATE TABLE targets (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    host               TEXT NOT NULL,
    port               INTEGER NOT NULL,
    labels             TEXT NOT NULL,
    default_account    TEXT,
    allow_port_forward INTEGER NOT NULL,
    allow_agent        INTEGER NOT NULL,
    allow_x11          INTEGER NOT NULL,
    managed            TEXT NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE TABLE accounts (
    id        INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    secret    BLOB NOT NULL,
    UNIQUE (target_id, name)
);
CREATE TABLE host_keys (
    target_id   INTEGER PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    key_data    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source      TEXT NOT NULL,
    pinned_at   INTEGER NOT NULL
);
CREATE TABLE rules (
    id         INTEGER PRIMARY KEY,
    name       TEXT UNIQUE,
    users      TEXT NOT NULL,
    targets    TEXT NOT NULL,
    accounts   TEXT NOT NULL,
    managed    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE lockouts (
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    failures     TEXT NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (scope, subject)
);
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at_us       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    method      TEXT,
    user_name   TEXT,
    source_ip   TEXT,
    source_port INTEGER,
    target      TEXT,
    account     TEXT,
    reason      TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at_us);
"#,
// 2: lets stale lockout rows be pruned in SQL (failures themselves are a JSON list).
r#"
ALTER TABLE lockouts ADD COLUMN last_failure INTEGER NOT NULL DEFAULT 0;
"#];

/// The `meta` row holding a sealed known value, to tell "wrong master key" at open time
/// rather than at the first credential read.
const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"gatehouse master key check";

/// Brings the database to the current schema and checks the master key against it.
pub(crate) fn prepare(conn: &mut Connection, path: &str, key: &MasterKey) -> Result<()> {
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(Error::Schema {
            path: path.to_string(),
            reason: format!(
                "schema version {version} is newer than this gatehouse understands ({known}); \
                 upgrade gatehouse"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    match stored {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![KEY_CHECK, key.seal(KEY_CHECK, KEY_CHECK_PLAINTEXT)],
            )?;
        }
        Some(sealed) => {
            key.open(KEY_CHECK, &sealed).map_err(|_| Error::MasterKey(format!(
                "it does not match the key {path} was created with (check {} or the \
                 master.key file)",
                super::crypto::MASTER_KEY_ENV
            )))?;
        }
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        conn.execute("INSERT INTO lockouts (scope, subject, failures) VALUES ('user', 'alice', '[1]')", []).unwrap();
        prepare(&mut conn, "control.db", &MasterKey::generate()).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, current_version());
        let row: (String, i64) =
            conn.query_row("SELECT subject, last_failure FROM lockouts", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(row, ("alice".to_string(), 0));
    }
}
