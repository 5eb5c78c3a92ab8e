//! The control plane: who may connect (users, keys, passwords, TOTP, groups, lockout),
//! where they may go (targets, accounts and their encrypted credentials, pinned host
//! keys), the allow rules joining the two, and the audit trail of every attempt.
//!
//! State lives in SQLite (`<data_dir>/control.db`) behind one mutex'd connection: every
//! call is a few indexed statements (microseconds), so methods are synchronous and safe to
//! call from async code, **except** the ones that verify a password hash (argon2id, tens
//! of milliseconds of CPU by design): [`ControlPlane::auth_password`] and
//! [`ControlPlane::apply`]/[`ControlPlane::add_user`] when they hash; run those on
//! `tokio::task::spawn_blocking`. The hash is verified with the database lock released.
//!
//! All SQL lives in this module's files next to the logic that needs it, over plain
//! `rusqlite::Connection`s, with pure parts (lockout, rule matching, crypto, TOTP)
//! separate, so a PostgreSQL store can later replace the SQL without touching them.

mod audit;
mod auth;
mod crypto;
mod declarative;
mod error;
mod hostkeys;
mod lockout;
mod model;
mod password;
mod rules;
mod schema;
mod targets;
mod totp;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use time::OffsetDateTime;

pub use audit::{AuditEvent, AuditKind, AuditOutcome};
pub use crypto::{MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey};
pub use declarative::{ApplyReport, DeclAccount, DeclRule, DeclTarget, DeclUser, Declarative};
pub use error::{Error, ErrorKind, Result};
pub use lockout::{LockState, LockoutPolicy};
pub use model::{
    Allowances, AuthDecision, Credential, HostKeyCheck, Managed, Route, RouteChoice, TargetInfo,
    parse_authorized_keys, parse_public_key, validate_name,
};
pub use password::{hash_password, verify_password};
pub use rules::{Rule, RuleSpec};
pub use targets::{AccountSummary, NewTarget, TargetSummary};
pub use totp::TotpEnrollment;
pub use users::{KeyInfo, LockoutInfo, NewUser, UserInfo};

/// The key types of `ssh-key` (the version russh uses), so callers need not depend on it.
pub use ssh_key::{PrivateKey, PublicKey};
/// Wipes secrets from memory on drop; passwords travel in it.
pub use zeroize::Zeroizing;

/// The control-plane database's file name inside the data directory.
pub const CONTROL_DB_FILE: &str = "control.db";

/// Where "now" comes from; replaceable so tests can drive TOTP and lockout through time.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The control plane. Cheap to clone (an `Arc`); share one per process.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    key: MasterKey,
    policy: Mutex<LockoutPolicy>,
    clock: Clock,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Opens (creating and migrating as needed) the database at `db_path`. Fails clearly
    /// if `master_key` is not the key the database was created with.
    pub fn open(db_path: &Path, master_key: MasterKey) -> Result<ControlPlane> {
        if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let created = !db_path.exists();
        let mut conn = Connection::open(db_path)?;
        if created {
            // Password hashes and sealed secrets: nobody else has any business reading it.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(db_path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(db_path, e))?;
        }
        // WAL lets the CLI read and write while `serve` holds the database open.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit is safe against a gatehouse crash and never corrupts the
        // database; only an OS crash or power loss may drop the last few commits. FULL
        // costs an fsync per audit event (~3.5 ms, measured) under the connection lock,
        // which would cap logins at a few hundred per second.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::prepare(&mut conn, &db_path.display().to_string(), &master_key)?;
        Ok(ControlPlane::from_connection(conn, master_key))
    }

    /// Opens `<data_dir>/control.db` with the deployment's master key
    /// ([`MasterKey::load`]: `GATEHOUSE_MASTER_KEY`, else `<data_dir>/master.key`).
    pub fn open_data_dir(data_dir: &Path) -> Result<ControlPlane> {
        let key = MasterKey::load(data_dir)?;
        ControlPlane::open(&data_dir.join(CONTROL_DB_FILE), key)
    }

    /// A private in-memory database (tests, demos).
    pub fn open_in_memory(master_key: MasterKey) -> Result<ControlPlane> {
        let mut conn = Connection::open_in_memory()?;
        schema::prepare(&mut conn, ":memory:", &master_key)?;
        Ok(ControlPlane::from_connection(conn, master_key))
    }

    fn from_connection(conn: Connection, key: MasterKey) -> ControlPlane {
        ControlPlane {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                key,
                policy: Mutex::new(LockoutPolicy::default()),
                clock: Arc::new(OffsetDateTime::now_utc),
            }),
        }
    }

    /// Replaces the clock (tests and simulations). Call before cloning.
    pub fn with_clock(self, clock: Clock) -> ControlPlane {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("ControlPlane::with_clock must be called before cloning"));
        ControlPlane { inner: Arc::new(Inner { clock, ..inner }) }
    }

    /// Sets the lockout thresholds (the config file's `[lockout]`).
    pub fn set_lockout_policy(&self, policy: LockoutPolicy) {
        *self.inner.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// The lockout thresholds in force.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        *self.inner.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema version this build writes (for `gatehouse` diagnostics).
    pub fn schema_version() -> i64 {
        schema::current_version()
    }

    fn now(&self) -> OffsetDateTime {
        (self.inner.clock)()
    }

    /// The database connection. A panic while holding it cannot leave SQLite half-written
    /// (statements are atomic), so a poisoned lock is simply taken over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self) -> &MasterKey {
        &self.inner.key
    }
}

/// Unix seconds of `t`.
fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Maps "no row" to `None`, like `OptionalExtension`, in one place.
fn optional<T>(r: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
