//! Allow rules: users or `@groups` → targets by name or `key=value` label → accounts,
//! `*` matching anything; and the resolver that turns "alice wants root@web-01" into a
//! [`Route`] or a refusal.
//!
//! Access is granted when one rule matches the user, the target and the account. Nothing
//! is allowed without a rule. A refusal says the same ("unknown target or access denied")
//! whether the target is missing or merely forbidden, so users cannot probe for targets;
//! the audit event keeps the precise reason.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::audit::{AuditKind, AuditOutcome, NewEvent};
use super::error::{Error, ErrorKind, Result};
use super::model::{Managed, Route, RouteChoice, TargetInfo, validate_name};
use super::targets::{account_names, all_targets, target_row, validate_label};
use super::users::{groups_of, user_id};
use super::{ControlPlane, secs};

/// A rule to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Optional unique name (config-file rules always have one).
    #[serde(default)]
    pub name: Option<String>,
    /// `alice`, `@ops` (a group) or `*`.
    pub users: Vec<String>,
    /// `web-01`, `env=prod` (a label) or `*`.
    pub targets: Vec<String>,
    /// `root` or `*`.
    pub accounts: Vec<String>,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its id (`gatehouse rule remove ID`).
    pub id: i64,
    /// The selectors.
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// CLI- or config-managed.
    pub managed: Managed,
}

impl RuleSpec {
    /// Checks every selector's syntax.
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = &self.name {
            validate_name("rule name", n)?;
        }
        for (what, list) in [("users", &self.users), ("targets", &self.targets), ("accounts", &self.accounts)] {
            if list.is_empty() {
                return Err(Error::invalid(format!("rule {what}"), "the list is empty"));
            }
        }
        for u in &self.users {
            match u.strip_prefix('@') {
                _ if u == "*" => {}
                Some(group) => validate_name("rule group selector", group)?,
                None => validate_name("rule user selector", u)?,
            }
        }
        for t in &self.targets {
            match t.split_once('=') {
                _ if t == "*" => {}
                Some((k, v)) => validate_label(k, v)?,
                None => validate_name("rule target selector", t)?,
            }
        }
        for a in &self.accounts {
            if a != "*" {
                validate_name("rule account selector", a)?;
            }
        }
        Ok(())
    }

    /// Whether the rule names this user or one of their groups.
    pub fn matches_user(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|s| {
            s == "*" || s == user || s.strip_prefix('@').is_some_and(|g| groups.iter().any(|x| x == g))
        })
    }

    /// Whether the rule names this target or one of its labels.
    pub fn matches_target(&self, target: &TargetInfo) -> bool {
        self.targets.iter().any(|s| match s.split_once('=') {
            _ if s == "*" => true,
            Some((k, v)) => target.labels.get(k).is_some_and(|x| x == v),
            None => *s == target.name,
        })
    }

    /// Whether the rule names this account.
    pub fn matches_account(&self, account: &str) -> bool {
        self.accounts.iter().any(|s| s == "*" || s == account)
    }
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a string list serialises")
}

pub(crate) fn insert_rule(conn: &Connection, spec: &RuleSpec, managed: Managed, now: time::OffsetDateTime) -> Result<i64> {
    conn.execute(
        "INSERT INTO rules (name, users, targets, accounts, managed, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (name) DO UPDATE SET users = excluded.users, targets = excluded.targets, \
         accounts = excluded.accounts, managed = excluded.managed",
        params![spec.name, to_json(&spec.users), to_json(&spec.targets), to_json(&spec.accounts), managed.as_str(), secs(now)],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn load_rules(conn: &Connection) -> Result<Vec<Rule>> {
    let mut stmt = conn.prepare("SELECT id, name, users, targets, accounts, managed FROM rules ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        let list = |i: usize| -> rusqlite::Result<Vec<String>> {
            Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or_default())
        };
        Ok(Rule {
            id: r.get(0)?,
            spec: RuleSpec { name: r.get(1)?, users: list(2)?, targets: list(3)?, accounts: list(4)? },
            managed: Managed::parse(&r.get::<_, String>(5)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn no_route(target: &str, kind: ErrorKind, reason: String) -> Error {
    Error::NoRoute { target: target.to_string(), kind, reason }
}

impl ControlPlane {
    /// Adds a rule; returns its id.
    pub fn add_rule(&self, spec: &RuleSpec) -> Result<i64> {
        spec.validate()?;
        let conn = self.conn();
        if let Some(name) = &spec.name {
            let exists = load_rules(&conn)?.iter().any(|r| r.spec.name.as_ref() == Some(name));
            if exists {
                return Err(Error::Conflict { what: "rule", name: name.clone() });
            }
        }
        insert_rule(&conn, spec, Managed::Cli, self.now())
    }

    /// Removes a rule by id or name.
    pub fn remove_rule(&self, id_or_name: &str) -> Result<()> {
        let conn = self.conn();
        let n = match id_or_name.parse::<i64>() {
            Ok(id) => conn.execute("DELETE FROM rules WHERE id = ?1", [id])?,
            Err(_) => conn.execute("DELETE FROM rules WHERE name = ?1", [id_or_name])?,
        };
        if n == 0 {
            return Err(Error::NotFound { what: "rule", name: id_or_name.into() });
        }
        Ok(())
    }

    /// Every rule, oldest first.
    pub fn list_rules(&self) -> Result<Vec<Rule>> {
        load_rules(&self.conn())
    }

    /// Decides whether `user` may open a session as `account` (or the target's default)
    /// on `target`, and returns the route with the decrypted credential. Refusals are
    /// [`Error::NoRoute`] (kind `NotFound` or `Denied`, same message); both are audited.
    pub fn resolve(&self, user: &str, target: &str, account: Option<&str>) -> Result<Route> {
        let conn = self.conn();
        let result = self.resolve_in(&conn, user, target, account);
        let ev = NewEvent {
            user: Some(user),
            target: Some(target),
            account: result.as_ref().map(|r| r.account.as_str()).ok().or(account),
            ..NewEvent::default()
        };
        match &result {
            Ok(route) => self.audit(&conn, AuditKind::Access, AuditOutcome::Success, &ev, &format!("granted {}@{}", route.account, target)),
            Err(Error::NoRoute { reason, .. }) => self.audit(&conn, AuditKind::Access, AuditOutcome::Failure, &ev, reason),
            Err(e) => self.audit(&conn, AuditKind::Access, AuditOutcome::Failure, &ev, &e.to_string()),
        }
        result
    }

    fn resolve_in(&self, conn: &Connection, user: &str, target: &str, account: Option<&str>) -> Result<Route> {
        if user_id(conn, user)?.is_none() {
            return Err(no_route(target, ErrorKind::Denied, format!("unknown user {user}")));
        }
        let groups = groups_of(conn, user)?;
        let row = target_row(conn, target)?
            .ok_or_else(|| no_route(target, ErrorKind::NotFound, format!("no target named {target}")))?;
        let rules: Vec<Rule> = load_rules(conn)?
            .into_iter()
            .filter(|r| r.spec.matches_user(user, &groups) && r.spec.matches_target(&row.info))
            .collect();
        if rules.is_empty() {
            return Err(no_route(target, ErrorKind::Denied, format!("no rule grants {user} access to {target}")));
        }
        let permitted = |a: &str| rules.iter().any(|r| r.spec.matches_account(a));
        let account = match account.map(str::to_string).or(row.default_account.clone()) {
            Some(a) => a,
            None => {
                // No default: if exactly one account is permitted, that is the obvious one.
                let allowed: Vec<String> =
                    account_names(conn, row.id)?.into_iter().map(|a| a.name).filter(|a| permitted(a)).collect();
                match allowed.as_slice() {
                    [only] => only.clone(),
                    _ => {
                        return Err(Error::invalid(
                            format!("account for {target}"),
                            format!(
                                "{target} has no default account; connect as {user}:ACCOUNT@{target} \
                                 (yours: {})",
                                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                            ),
                        ));
                    }
                }
            }
        };
        if !permitted(&account) {
            return Err(no_route(target, ErrorKind::Denied, format!("no rule grants {user} account {account} on {target}")));
        }
        let credential = self
            .load_credential(conn, row.id, target, &account)?
            .ok_or_else(|| no_route(target, ErrorKind::NotFound, format!("{target} has no account {account}")))?;
        Ok(Route { target: row.info, account, credential, allow: row.allow })
    }

    /// Every (target, account) `user` may reach, by target then account: the menu.
    pub fn reachable(&self, user: &str) -> Result<Vec<RouteChoice>> {
        let conn = self.conn();
        if user_id(&conn, user)?.is_none() {
            return Ok(Vec::new());
        }
        let groups = groups_of(&conn, user)?;
        let rules: Vec<Rule> = load_rules(&conn)?.into_iter().filter(|r| r.spec.matches_user(user, &groups)).collect();
        let mut out = Vec::new();
        for row in all_targets(&conn)? {
            let here: Vec<&Rule> = rules.iter().filter(|r| r.spec.matches_target(&row.info)).collect();
            if here.is_empty() {
                continue;
            }
            for account in account_names(&conn, row.id)? {
                if here.iter().any(|r| r.spec.matches_account(&account.name)) {
                    out.push(RouteChoice {
                        target: row.info.name.clone(),
                        is_default: row.default_account.as_deref() == Some(account.name.as_str()),
                        account: account.name,
                        labels: row.info.labels.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(users: &[&str], targets: &[&str], accounts: &[&str]) -> RuleSpec {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        RuleSpec { name: None, users: v(users), targets: v(targets), accounts: v(accounts) }
    }

    fn target(name: &str, labels: &[(&str, &str)]) -> TargetInfo {
        TargetInfo {
            name: name.into(),
            host: "h".into(),
            port: 22,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn matching_table() {
        let ops = vec!["ops".to_string()];
        let none: Vec<String> = vec![];
        let web = target("web-01", &[("env", "prod"), ("role", "web")]);
        let db = target("db-01", &[("env", "staging")]);
        // (rule, user, groups, target, account, expected)
        type Row<'a> = (RuleSpec, &'a str, &'a Vec<String>, &'a TargetInfo, &'a str, bool);
        let rows: &[Row] = &[
            (spec(&["alice"], &["web-01"], &["root"]), "alice", &none, &web, "root", true),
            (spec(&["alice"], &["web-01"], &["root"]), "bob", &none, &web, "root", false),
            (spec(&["alice"], &["web-01"], &["root"]), "alice", &none, &db, "root", false),
            (spec(&["alice"], &["web-01"], &["root"]), "alice", &none, &web, "deploy", false),
            (spec(&["@ops"], &["env=prod"], &["*"]), "bob", &ops, &web, "anything", true),
            (spec(&["@ops"], &["env=prod"], &["*"]), "bob", &none, &web, "root", false),
            (spec(&["@ops"], &["env=prod"], &["*"]), "bob", &ops, &db, "root", false),
            (spec(&["*"], &["role=web", "db-01"], &["root"]), "x", &none, &db, "root", true),
            (spec(&["*"], &["role=web", "db-01"], &["root"]), "x", &none, &web, "root", true),
            // A label selector never matches a target *named* like it, nor a missing label.
            (spec(&["*"], &["env=staging"], &["*"]), "x", &none, &web, "root", false),
            (spec(&["*"], &["*"], &["*"]), "anyone", &none, &db, "any", true),
            // `@alice` is a group, not the user alice.
            (spec(&["@alice"], &["*"], &["*"]), "alice", &none, &web, "root", false),
        ];
        for (i, (rule, user, groups, t, account, expected)) in rows.iter().enumerate() {
            rule.validate().unwrap();
            let got = rule.matches_user(user, groups) && rule.matches_target(t) && rule.matches_account(account);
            assert_eq!(got, *expected, "row {i}: {rule:?} {user} {groups:?} {} {account}", t.name);
        }
    }

    #[test]
    fn selectors_are_validated() {
        for (bad, needle) in [
            (spec(&["a b"], &["*"], &["*"]), "rule user selector"),
            (spec(&["@"], &["*"], &["*"]), "rule group selector"),
            (spec(&["*"], &["=prod"], &["*"]), "label key"),
            (spec(&["*"], &["env=a,b"], &["*"]), "label value"),
            (spec(&["*"], &["*"], &["ro ot"]), "rule account selector"),
            (spec(&["*"], &[], &["*"]), "rule targets"),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
