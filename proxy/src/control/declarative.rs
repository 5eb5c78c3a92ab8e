//! The declarative part of `gatehouse.toml`: users, groups, targets with accounts, rules
//! and lockout thresholds, applied idempotently at `serve --config` start.
//!
//! The file is authoritative for what it declares: entries it creates are marked
//! config-managed, updated to match the file on each apply, and removed when they leave
//! the file. Entries created with the CLI are left alone, unless the file declares the
//! same name (then the file takes them over). Secrets never sit in the file itself: users
//! carry an argon2id `password_hash`, accounts name a `password_env`, `password_file` or
//! `key_file`. TOTP enrolment stays a CLI matter (`gatehouse user totp`) and survives
//! applies. Everything is validated (files read, keys parsed) before anything is written,
//! and the writes are one transaction: a bad file changes nothing.
//!
//! ```toml
//! [lockout]
//! max_failures = 5
//! window_secs = 600
//! lockout_secs = 900
//!
//! [[users]]
//! name = "alice"
//! keys = ["ssh-ed25519 AAAAC3Nza... alice@laptop"]
//! password_hash = "$argon2id$v=19$..."
//! groups = ["ops"]
//!
//! [[targets]]
//! name = "web-01"
//! host = "10.0.0.5"
//! labels = { env = "prod" }
//! default_account = "root"
//! host_key = "ssh-ed25519 AAAA..."
//! allow = ["port-forward"]
//! accounts = [{ name = "root", key_file = "keys/web-01-root" }]
//!
//! [[rules]]
//! name = "ops-prod"
//! users = ["@ops"]
//! targets = ["env=prod"]
//! accounts = ["root"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::lockout::LockoutPolicy;
use super::model::{Allowances, Credential, Managed, key_data, parse_public_key, validate_name};
use super::rules::{RuleSpec, insert_rule, load_rules};
use super::targets::{NewTarget, account_names, target_row, upsert_target, validate_target};
use super::users::{add_keys, insert_user, set_groups};
use super::{ControlPlane, optional, password};

/// The control plane's keys of the config file (`users`, `groups`, `targets`, `rules`,
/// `lockout`); other top-level keys belong to the rest of the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Declarative {
    /// `[[users]]`.
    #[serde(default)]
    pub users: Vec<DeclUser>,
    /// `[groups]`: group name → member user names (added to the users' own `groups`).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// `[[targets]]`.
    #[serde(default)]
    pub targets: Vec<DeclTarget>,
    /// `[[rules]]`.
    #[serde(default)]
    pub rules: Vec<DeclRule>,
    /// `[lockout]`; the defaults (5 failures in 600 s lock for 900 s) when absent.
    #[serde(default)]
    pub lockout: Option<LockoutPolicy>,
    /// Where relative `password_file`/`key_file` paths start: the config file's folder.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// A `[[users]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclUser {
    /// Login name.
    pub name: String,
    /// Public keys, `authorized_keys` lines.
    #[serde(default)]
    pub keys: Vec<String>,
    /// An argon2id PHC string (`gatehouse user hash-password` prints one). When absent,
    /// a password set with `gatehouse user passwd` is kept.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A `[[targets]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclTarget {
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// SSH port (22 when absent).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Account used when the user names none.
    #[serde(default)]
    pub default_account: Option<String>,
    /// Pinned host key (`ssh-ed25519 AAAA...`); pinned on first use when absent.
    #[serde(default)]
    pub host_key: Option<String>,
    /// `port-forward`, `agent`, `x11`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Accounts.
    #[serde(default)]
    pub accounts: Vec<DeclAccount>,
}

fn default_port() -> u16 {
    22
}

/// An account of a target: exactly one of the three credential sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclAccount {
    /// Remote user name.
    pub name: String,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Unencrypted OpenSSH private key file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A `[[rules]]` entry: a [`RuleSpec`] whose name is required (it is how the file's
/// rules are matched up with stored ones across applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclRule {
    /// Unique name.
    pub name: String,
    /// `alice`, `@ops`, `*`.
    pub users: Vec<String>,
    /// `web-01`, `env=prod`, `*`.
    pub targets: Vec<String>,
    /// `root`, `*`.
    pub accounts: Vec<String>,
}

/// What an apply changed, as `"user alice"`-style entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Newly created.
    pub created: Vec<String>,
    /// Changed to match the file (or taken over from the CLI).
    pub updated: Vec<String>,
    /// Config-managed entries no longer in the file.
    pub removed: Vec<String>,
    /// Entries already as declared.
    pub unchanged: usize,
}

impl ApplyReport {
    /// Whether the apply changed nothing.
    pub fn is_noop(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    fn note(&mut self, change: Change, what: String) {
        match change {
            Change::Created => self.created.push(what),
            Change::Updated => self.updated.push(what),
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

enum Change {
    Created,
    Updated,
    Unchanged,
}

struct WantUser {
    name: String,
    keys: Vec<ssh_key::PublicKey>,
    key_data: BTreeSet<String>,
    hash: Option<String>,
    groups: Vec<String>,
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(Error::invalid(format!("config {what} `{n}`"), "declared twice"));
        }
    }
    Ok(())
}

impl Declarative {
    /// Reads the control-plane keys of a config file (its other keys are left to the rest
    /// of the config); relative `password_file`/`key_file` paths start at its folder.
    pub fn load(path: &Path) -> Result<Declarative> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut decl: Declarative = toml::from_str(&text)
            .map_err(|e| Error::invalid(format!("config {}", path.display()), e.to_string()))?;
        decl.base_dir = path.parent().map(Path::to_path_buf);
        Ok(decl)
    }

    /// Whether the file declares nothing for the control plane (then `apply` is skipped,
    /// so a config without users leaves CLI-made state and config-made state alone).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.groups.is_empty()
            && self.targets.is_empty()
            && self.rules.is_empty()
            && self.lockout.is_none()
    }

    fn path(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn want_users(&self) -> Result<Vec<WantUser>> {
        unique("user", self.users.iter().map(|u| u.name.as_str()))?;
        let mut out = Vec::new();
        for u in &self.users {
            validate_name("user name", &u.name)?;
            let at = |i: usize| format!("users[{}].keys[{i}]", u.name);
            let keys: Vec<ssh_key::PublicKey> =
                u.keys.iter().enumerate().map(|(i, k)| parse_public_key(k, &at(i))).collect::<Result<_>>()?;
            let key_data = keys.iter().map(key_data).collect::<Result<_>>()?;
            if let Some(h) = &u.password_hash {
                password::validate_hash(h).map_err(|e| Error::invalid(format!("users[{}].password_hash", u.name), e.to_string()))?;
            }
            let mut groups: BTreeSet<String> = u.groups.iter().cloned().collect();
            groups.extend(self.groups.iter().filter(|(_, m)| m.contains(&u.name)).map(|(g, _)| g.clone()));
            for g in &groups {
                validate_name("group name", g)?;
            }
            out.push(WantUser { name: u.name.clone(), keys, key_data, hash: u.password_hash.clone(), groups: groups.into_iter().collect() });
        }
        for (group, members) in &self.groups {
            if let Some(m) = members.iter().find(|m| !self.users.iter().any(|u| &u.name == *m)) {
                return Err(Error::invalid(format!("groups.{group}"), format!("member `{m}` is not a [[users]] entry")));
            }
        }
        Ok(out)
    }

    fn credential(&self, target: &str, a: &DeclAccount) -> Result<Credential> {
        let what = format!("targets[{target}].accounts[{}]", a.name);
        match (&a.password_env, &a.password_file, &a.key_file) {
            (Some(var), None, None) => std::env::var(var)
                .map(|p| Credential::Password(Zeroizing::new(p)))
                .map_err(|_| Error::invalid(what, format!("environment variable {var} is not set"))),
            (None, Some(file), None) => {
                let path = self.path(file);
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?);
                let pw = text.strip_suffix('\n').unwrap_or(&text);
                Ok(Credential::Password(Zeroizing::new(pw.strip_suffix('\r').unwrap_or(pw).to_string())))
            }
            (None, None, Some(file)) => {
                let path = self.path(file);
                let pem = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?);
                Credential::private_key_from_openssh(&pem, &path.display().to_string())
            }
            _ => Err(Error::invalid(what, "give exactly one of password_env, password_file, key_file")),
        }
    }

    fn want_targets(&self) -> Result<Vec<NewTarget>> {
        unique("target", self.targets.iter().map(|t| t.name.as_str()))?;
        let mut out = Vec::new();
        for t in &self.targets {
            unique(&format!("targets[{}] account", t.name), t.accounts.iter().map(|a| a.name.as_str()))?;
            let host_key = t
                .host_key
                .as_deref()
                .map(|k| parse_public_key(k, &format!("targets[{}].host_key", t.name)))
                .transpose()?;
            let accounts = t
                .accounts
                .iter()
                .map(|a| Ok((a.name.clone(), self.credential(&t.name, a)?)))
                .collect::<Result<_>>()?;
            let new = NewTarget {
                name: t.name.clone(),
                host: t.host.clone(),
                port: t.port,
                labels: t.labels.clone(),
                default_account: t.default_account.clone(),
                allow: Allowances::parse_list(&t.allow)?,
                host_key,
                accounts,
            };
            validate_target(&new)?;
            out.push(new);
        }
        Ok(out)
    }

    fn want_rules(&self) -> Result<Vec<RuleSpec>> {
        unique("rule", self.rules.iter().map(|r| r.name.as_str()))?;
        self.rules
            .iter()
            .map(|r| {
                let spec = RuleSpec { name: Some(r.name.clone()), users: r.users.clone(), targets: r.targets.clone(), accounts: r.accounts.clone() };
                spec.validate()?;
                Ok(spec)
            })
            .collect()
    }
}

/// Names of config-managed rows of `table` that are not in `keep`.
fn stale(conn: &Connection, table: &str, keep: &BTreeSet<&str>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM {table} WHERE managed = 'config' AND name IS NOT NULL"))?;
    let names: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(names.into_iter().filter(|n| !keep.contains(n.as_str())).collect())
}

impl ControlPlane {
    /// Makes the stored users, targets and rules match `decl` (see the module docs), and
    /// sets the lockout policy. Applying the same file twice changes nothing the second time.
    pub fn apply(&self, decl: &Declarative) -> Result<ApplyReport> {
        let users = decl.want_users()?;
        let targets = decl.want_targets()?;
        let rules = decl.want_rules()?;
        let mut report = ApplyReport::default();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for u in &users {
            let change = self.apply_user(&tx, u)?;
            report.note(change, format!("user {}", u.name));
        }
        for t in &targets {
            let change = self.apply_target(&tx, t)?;
            report.note(change, format!("target {}", t.name));
        }
        for r in &rules {
            let change = apply_rule(&tx, r, self.now())?;
            report.note(change, format!("rule {}", r.name.as_deref().unwrap_or("")));
        }
        for (table, what, names) in [
            ("users", "user", users.iter().map(|u| u.name.as_str()).collect::<BTreeSet<_>>()),
            ("targets", "target", targets.iter().map(|t| t.name.as_str()).collect()),
            ("rules", "rule", rules.iter().filter_map(|r| r.name.as_deref()).collect()),
        ] {
            for name in stale(&tx, table, &names)? {
                tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [&name])?;
                report.removed.push(format!("{what} {name}"));
            }
        }
        tx.commit()?;
        self.set_lockout_policy(decl.lockout.unwrap_or_default());
        Ok(report)
    }

    fn apply_user(&self, conn: &Connection, u: &WantUser) -> Result<Change> {
        let row: Option<(i64, Option<String>, String)> = optional(conn.query_row(
            "SELECT id, password_hash, managed FROM users WHERE name = ?1",
            [&u.name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ))?;
        let Some((id, hash, managed)) = row else {
            let id = insert_user(conn, &u.name, u.hash.as_deref(), Managed::Config, self.now())?;
            add_keys(conn, id, &u.keys)?;
            set_groups(conn, id, &u.groups)?;
            return Ok(Change::Created);
        };
        let mut stmt = conn.prepare("SELECT key_data FROM user_keys WHERE user_id = ?1")?;
        let have_keys: BTreeSet<String> = stmt.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let have_groups = super::users::groups_of(conn, &u.name)?;
        let same = managed == "config"
            && have_keys == u.key_data
            && have_groups == u.groups
            && (u.hash.is_none() || u.hash == hash);
        if same {
            return Ok(Change::Unchanged);
        }
        conn.execute("UPDATE users SET managed = 'config' WHERE id = ?1", [id])?;
        if u.hash.is_some() {
            conn.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![u.hash, id])?;
        }
        conn.execute("DELETE FROM user_keys WHERE user_id = ?1", [id])?;
        add_keys(conn, id, &u.keys)?;
        set_groups(conn, id, &u.groups)?;
        Ok(Change::Updated)
    }

    fn apply_target(&self, conn: &Connection, t: &NewTarget) -> Result<Change> {
        let Some(row) = target_row(conn, &t.name)? else {
            let id = upsert_target(conn, t, Managed::Config, self.now())?;
            for (account, cred) in &t.accounts {
                self.store_account(conn, id, &t.name, account, cred)?;
            }
            if let Some(key) = &t.host_key {
                self.store_pin(conn, id, key, "config")?;
            }
            return Ok(Change::Created);
        };
        let mut changed = row.managed != Managed::Config
            || row.info.host != t.host
            || row.info.port != t.port
            || row.info.labels != t.labels
            || row.default_account != t.default_account
            || row.allow != t.allow;
        if changed {
            upsert_target(conn, t, Managed::Config, self.now())?;
        }
        let declared: BTreeSet<&str> = t.accounts.iter().map(|(a, _)| a.as_str()).collect();
        for stored in account_names(conn, row.id)? {
            if !declared.contains(stored.name.as_str()) {
                conn.execute("DELETE FROM accounts WHERE target_id = ?1 AND name = ?2", params![row.id, stored.name])?;
                changed = true;
            }
        }
        for (account, cred) in &t.accounts {
            let same = match self.load_credential(conn, row.id, &t.name, account) {
                Ok(Some(have)) => have.kind() == cred.kind() && have.to_stored()? == cred.to_stored()?,
                // Missing, or unreadable under this master key: store the declared one.
                Ok(None) | Err(_) => false,
            };
            if !same {
                self.store_account(conn, row.id, &t.name, account, cred)?;
                changed = true;
            }
        }
        if let Some(key) = &t.host_key {
            let pinned: Option<String> =
                optional(conn.query_row("SELECT key_data FROM host_keys WHERE target_id = ?1", [row.id], |r| r.get(0)))?;
            if pinned.as_deref() != Some(key_data(key)?.as_str()) {
                self.store_pin(conn, row.id, key, "config")?;
                changed = true;
            }
        }
        Ok(if changed { Change::Updated } else { Change::Unchanged })
    }
}

fn apply_rule(conn: &Connection, r: &RuleSpec, now: time::OffsetDateTime) -> Result<Change> {
    let existing = load_rules(conn)?.into_iter().find(|x| x.spec.name == r.name);
    match existing {
        Some(x) if x.spec == *r && x.managed == Managed::Config => Ok(Change::Unchanged),
        Some(_) => {
            insert_rule(conn, r, Managed::Config, now)?;
            Ok(Change::Updated)
        }
        None => {
            insert_rule(conn, r, Managed::Config, now)?;
            Ok(Change::Created)
        }
    }
}

#[cfg(test)]
#[path = "declarative_tests.rs"]
mod tests;
