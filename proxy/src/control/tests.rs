//! Tests of the control plane through its public API, on an in-memory database.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ssh_key::private::Ed25519Keypair;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::*;

const T0: i64 = 1_700_000_000;

/// A control plane whose clock the test moves.
fn plane() -> (ControlPlane, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(T0));
    let clock = now.clone();
    let cp = ControlPlane::open_in_memory(MasterKey::generate())
        .unwrap()
        .with_clock(Arc::new(move || {
            OffsetDateTime::from_unix_timestamp(clock.load(Ordering::SeqCst)).unwrap()
        }));
    (cp, now)
}

fn keypair(seed: u8) -> ssh_key::PrivateKey {
    ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn pubkey(seed: u8) -> ssh_key::PublicKey {
    keypair(seed).public_key().clone()
}

fn src(last: u8) -> SocketAddr {
    format!("192.0.2.{last}:50000").parse().unwrap()
}

fn user(name: &str, password: Option<&str>, groups: &[&str]) -> NewUser {
    NewUser {
        name: name.into(),
        password: password.map(|p| Zeroizing::new(p.to_string())),
        keys: vec![],
        groups: groups.iter().map(|g| g.to_string()).collect(),
        totp: false,
    }
}

fn target(name: &str, labels: &[(&str, &str)], accounts: &[&str]) -> NewTarget {
    NewTarget {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 22,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        default_account: accounts.first().map(|a| a.to_string()),
        allow: Allowances::default(),
        host_key: None,
        accounts: accounts
            .iter()
            .map(|a| (a.to_string(), Credential::Password(Zeroizing::new(format!("pw-{a}")))))
            .collect(),
    }
}

fn rule(users: &[&str], targets: &[&str], accounts: &[&str]) -> RuleSpec {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    RuleSpec { name: None, users: v(users), targets: v(targets), accounts: v(accounts) }
}

#[test]
fn password_and_key_auth_accept_reject_and_audit() {
    let (cp, _) = plane();
    let mut alice = user("alice", Some("s3cret"), &[]);
    alice.keys = vec![pubkey(1)];
    cp.add_user(&alice).unwrap();
    assert_eq!(cp.auth_password("alice", "s3cret", src(1)), AuthDecision::Accept { needs_totp: false });
    assert_eq!(cp.auth_password("alice", "wrong", src(1)), AuthDecision::Reject);
    assert_eq!(cp.auth_password("mallory", "s3cret", src(1)), AuthDecision::Reject);
    assert!(cp.publickey_acceptable("alice", &pubkey(1)));
    assert!(!cp.publickey_acceptable("alice", &pubkey(2)));
    assert_eq!(cp.auth_publickey("alice", &pubkey(1), src(1)), AuthDecision::Accept { needs_totp: false });
    assert_eq!(cp.auth_publickey("alice", &pubkey(2), src(1)), AuthDecision::Reject);

    let events = cp.audit_events(OffsetDateTime::UNIX_EPOCH).unwrap();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.method.as_deref().unwrap(), e.user.as_deref().unwrap(), e.outcome, e.reason.as_str()))
        .collect();
    assert_eq!(summary[0], ("password", "alice", AuditOutcome::Success, "authenticated"));
    assert_eq!(summary[1], ("password", "alice", AuditOutcome::Failure, "wrong password"));
    assert_eq!(summary[2], ("password", "mallory", AuditOutcome::Failure, "unknown user"));
    assert_eq!(summary[3].2, AuditOutcome::Success);
    assert!(summary[4].3.contains("is not one of the user's keys"), "{}", summary[4].3);
    assert_eq!(events.len(), 5, "offers are not audited");
    assert_eq!(events[1].source, Some(src(1)));
    assert_eq!(events[1].kind, AuditKind::Auth);
    // Incremental reading by id.
    let tail = cp.audit_events_after(events[2].id, 2).unwrap();
    assert_eq!(tail.iter().map(|e| e.id).collect::<Vec<_>>(), [events[3].id, events[4].id]);
    assert!(cp.audit_events_after(events[4].id, 10).unwrap().is_empty());
    // `since` filters by time.
    assert!(cp.audit_events(OffsetDateTime::from_unix_timestamp(T0 + 1).unwrap()).unwrap().is_empty());
}

#[test]
fn lockout_per_user_and_per_source_refuses_even_the_right_password() {
    let (cp, now) = plane();
    cp.set_lockout_policy(LockoutPolicy { max_failures: 3, window_secs: 600, lockout_secs: 900 });
    cp.add_user(&user("alice", Some("right"), &[])).unwrap();
    cp.add_user(&user("bob", Some("bobpw"), &[])).unwrap();
    // Three failures from three sources lock the user, not the sources.
    for s in 1..=3 {
        assert_eq!(cp.auth_password("alice", "bad", src(s)), AuthDecision::Reject);
    }
    let until = OffsetDateTime::from_unix_timestamp(T0 + 900).unwrap();
    assert_eq!(cp.auth_password("alice", "right", src(9)), AuthDecision::Locked { until });
    assert_eq!(cp.auth_publickey("alice", &pubkey(1), src(9)), AuthDecision::Locked { until });
    assert_eq!(cp.auth_password("bob", "bobpw", src(1)), AuthDecision::Accept { needs_totp: false });
    // Rejected keys never lock anyone (an agent with many keys tries each in turn).
    for _ in 0..5 {
        assert_eq!(cp.auth_publickey("bob", &pubkey(7), src(2)), AuthDecision::Reject);
    }
    assert_eq!(cp.auth_password("bob", "bobpw", src(2)), AuthDecision::Accept { needs_totp: false });
    let locks = cp.lockouts().unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!((locks[0].scope.as_str(), locks[0].subject.as_str()), ("user", "alice"));
    // The lock expires.
    now.store(T0 + 900, Ordering::SeqCst);
    assert_eq!(cp.auth_password("alice", "right", src(9)), AuthDecision::Accept { needs_totp: false });

    // Spraying many user names from one source locks the source, for every user.
    // (An IPv4-mapped IPv6 address is the same source.)
    let mapped: SocketAddr = "[::ffff:192.0.2.66]:1234".parse().unwrap();
    for (name, from) in [("u1", src(66)), ("u2", src(66)), ("u3", mapped)] {
        assert_eq!(cp.auth_password(name, "guess", from), AuthDecision::Reject);
    }
    assert!(matches!(cp.auth_password("bob", "bobpw", src(66)), AuthDecision::Locked { .. }));
    assert_eq!(cp.auth_password("bob", "bobpw", src(67)), AuthDecision::Accept { needs_totp: false });
    // An admin unlock lifts it.
    assert!(cp.unlock("192.0.2.66").unwrap());
    assert_eq!(cp.auth_password("bob", "bobpw", src(66)), AuthDecision::Accept { needs_totp: false });

    // Stale rows (failures out of the window, not locked) are pruned on the next failure.
    now.store(T0 + 5000, Ordering::SeqCst);
    cp.auth_password("u9", "guess", src(99));
    let rows: i64 = cp.conn().query_row("SELECT count(*) FROM lockouts", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2, "only u9 and its source remain");

    let events = cp.audit_events(OffsetDateTime::UNIX_EPOCH).unwrap();
    let locked: Vec<_> = events.iter().filter(|e| e.outcome == AuditOutcome::Locked).collect();
    assert_eq!(locked.len(), 3);
    assert!(events[2].reason.contains("now locked out until"), "{}", events[2].reason);
}

#[test]
fn totp_second_factor_with_a_fixed_clock_and_no_replay() {
    let (cp, now) = plane();
    let mut alice = user("alice", Some("pw"), &[]);
    alice.totp = true;
    let enrollment = cp.add_user(&alice).unwrap().expect("enrolment returned");
    assert!(enrollment.uri.starts_with("otpauth://totp/gatehouse:alice?"));
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret_base32).unwrap();
    let code_at = |t: i64| totp::generate(secret.as_ref(), "alice", t as u64).unwrap();

    assert_eq!(cp.auth_password("alice", "pw", src(1)), AuthDecision::Accept { needs_totp: true });
    assert_eq!(cp.auth_totp("alice", "000000", src(1)), AuthDecision::Reject);
    assert_eq!(cp.auth_totp("alice", &code_at(T0), src(1)), AuthDecision::Accept { needs_totp: false });
    // The same code again (same step) is refused: a code is single-use.
    assert_eq!(cp.auth_totp("alice", &code_at(T0), src(1)), AuthDecision::Reject);
    // The next step's code works 30 s later; a stale code (2 steps old) does not.
    now.store(T0 + 30, Ordering::SeqCst);
    assert_eq!(cp.auth_totp("alice", &code_at(T0 + 30), src(1)), AuthDecision::Accept { needs_totp: false });
    now.store(T0 + 120, Ordering::SeqCst);
    assert_eq!(cp.auth_totp("alice", &code_at(T0 + 60), src(1)), AuthDecision::Reject);
    // Users without TOTP fail the TOTP step.
    cp.add_user(&user("bob", Some("pw"), &[])).unwrap();
    assert_eq!(cp.auth_totp("bob", &code_at(T0 + 120), src(1)), AuthDecision::Reject);

    let reasons: Vec<String> = cp
        .audit_events(OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{:?}:{}", e.method.unwrap(), e.outcome, e.reason))
        .collect();
    assert_eq!(reasons[0], "password:Partial:first factor accepted; TOTP required");
    assert_eq!(reasons[1], "totp:Failure:wrong TOTP code");
    assert_eq!(reasons[3], "totp:Failure:TOTP code already used");
    assert_eq!(reasons[6], "totp:Failure:TOTP is not enrolled");

    // Re-enrolment replaces the secret; disabling removes the second factor.
    let again = cp.enroll_totp("alice").unwrap();
    assert_ne!(again.secret_base32, enrollment.secret_base32);
    cp.disable_totp("alice").unwrap();
    assert_eq!(cp.auth_password("alice", "pw", src(1)), AuthDecision::Accept { needs_totp: false });
}

#[test]
fn resolve_by_name_label_group_and_uniform_refusals() {
    let (cp, _) = plane();
    cp.add_user(&user("alice", Some("pw"), &["ops"])).unwrap();
    cp.add_user(&user("bob", Some("pw"), &[])).unwrap();
    cp.add_target(&target("web-01", &[("env", "prod")], &["root", "deploy"])).unwrap();
    cp.add_target(&target("db-01", &[("env", "staging")], &["postgres"])).unwrap();
    cp.add_target(&target("secret-01", &[], &["root"])).unwrap();
    cp.add_rule(&rule(&["@ops"], &["env=prod"], &["deploy"])).unwrap();
    cp.add_rule(&rule(&["bob"], &["db-01"], &["*"])).unwrap();

    let route = cp.resolve("alice", "web-01", Some("deploy")).unwrap();
    assert_eq!((route.target.name.as_str(), route.account.as_str()), ("web-01", "deploy"));
    assert!(matches!(&route.credential, Credential::Password(p) if p.as_str() == "pw-deploy"));
    assert_eq!(route.target.labels.get("env").map(String::as_str), Some("prod"));
    // Default account (root) is not granted to alice.
    let denied = cp.resolve("alice", "web-01", None).unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::Denied);
    let bob = cp.resolve("bob", "db-01", None).unwrap();
    assert_eq!(bob.account, "postgres");

    // Unknown and forbidden targets read the same to the user; kinds differ.
    let unknown = cp.resolve("alice", "nope", None).unwrap_err();
    let forbidden = cp.resolve("alice", "secret-01", None).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert_eq!(forbidden.kind(), ErrorKind::Denied);
    assert_eq!(unknown.to_string(), "unknown target or access denied: nope");
    assert_eq!(forbidden.to_string(), "unknown target or access denied: secret-01");
    // Granted account that the target lacks.
    cp.add_rule(&rule(&["bob"], &["web-01"], &["nobody"])).unwrap();
    assert_eq!(cp.resolve("bob", "web-01", Some("nobody")).unwrap_err().kind(), ErrorKind::NotFound);
    // A user losing their group loses access.
    cp.set_user_groups("alice", &[]).unwrap();
    assert_eq!(cp.resolve("alice", "web-01", Some("deploy")).unwrap_err().kind(), ErrorKind::Denied);

    let access: Vec<String> = cp
        .audit_events(OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::Access)
        .map(|e| e.reason)
        .collect();
    assert_eq!(access[0], "granted deploy@web-01");
    assert_eq!(access[1], "no rule grants alice account root on web-01");
    assert_eq!(access[3], "no target named nope");
    assert_eq!(access[4], "no rule grants alice access to secret-01");
    assert_eq!(access[5], "web-01 has no account nobody");
}

#[test]
fn reachable_lists_the_menu_and_no_default_picks_the_only_account() {
    let (cp, _) = plane();
    cp.add_user(&user("alice", Some("pw"), &["ops"])).unwrap();
    cp.add_target(&target("web-01", &[("env", "prod")], &["root", "deploy"])).unwrap();
    let mut nodefault = target("web-02", &[("env", "prod")], &["root", "deploy"]);
    nodefault.default_account = None;
    cp.add_target(&nodefault).unwrap();
    cp.add_target(&target("db-01", &[("env", "staging")], &["postgres"])).unwrap();
    cp.add_rule(&rule(&["@ops"], &["env=prod"], &["deploy"])).unwrap();
    let menu: Vec<(String, String, bool)> =
        cp.reachable("alice").unwrap().into_iter().map(|c| (c.target, c.account, c.is_default)).collect();
    assert_eq!(
        menu,
        vec![("web-01".into(), "deploy".into(), false), ("web-02".into(), "deploy".into(), false)]
    );
    assert!(cp.reachable("nobody").unwrap().is_empty());
    // web-02 has no default, but only `deploy` is granted: that is the one used.
    assert_eq!(cp.resolve("alice", "web-02", None).unwrap().account, "deploy");
    cp.add_rule(&rule(&["alice"], &["web-02"], &["*"])).unwrap();
    let err = cp.resolve("alice", "web-02", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("connect as alice:ACCOUNT@web-02 (yours: deploy, root)"), "{err}");
}

#[test]
fn private_key_credentials_round_trip_encrypted() {
    let (cp, _) = plane();
    let key = keypair(9);
    let pem = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
    let cred = Credential::private_key_from_openssh(&pem, "test").unwrap();
    let mut t = target("web-01", &[], &[]);
    t.accounts = vec![("root".into(), cred)];
    t.default_account = Some("root".into());
    cp.add_target(&t).unwrap();
    cp.add_user(&user("alice", None, &[])).unwrap();
    cp.add_rule(&rule(&["alice"], &["*"], &["*"])).unwrap();
    match cp.resolve("alice", "web-01", None).unwrap().credential {
        Credential::PrivateKey(k) => assert_eq!(k.public_key(), key.public_key()),
        other => panic!("expected a key, got {other:?}"),
    }
    // The stored blob does not contain the key material in clear.
    let stored: Vec<u8> = cp.conn().query_row("SELECT secret FROM accounts", [], |r| r.get(0)).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("OPENSSH"));
    // Garbage is a clear error naming the origin.
    let err = Credential::private_key_from_openssh("nonsense", "/tmp/k").unwrap_err().to_string();
    assert!(err.contains("private key /tmp/k"), "{err}");
}

#[test]
fn tampered_credential_is_a_corrupt_error_not_a_wrong_secret() {
    let (cp, _) = plane();
    cp.add_target(&target("web-01", &[], &["root"])).unwrap();
    cp.add_user(&user("alice", None, &[])).unwrap();
    cp.add_rule(&rule(&["alice"], &["web-01"], &["root"])).unwrap();
    {
        let conn = cp.conn();
        let mut blob: Vec<u8> = conn.query_row("SELECT secret FROM accounts", [], |r| r.get(0)).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 0x01;
        conn.execute("UPDATE accounts SET secret = ?1", [blob]).unwrap();
    }
    let err = cp.resolve("alice", "web-01", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("cannot decrypt account:web-01/root"), "{err}");
}

#[test]
fn host_key_pinned_on_first_use_then_match_or_mismatch() {
    let (cp, _) = plane();
    cp.add_target(&target("web-01", &[], &["root"])).unwrap();
    let fp1 = ControlPlane::fingerprint(&pubkey(1));
    assert_eq!(cp.check_host_key("web-01", &pubkey(1)).unwrap(), HostKeyCheck::Pinned { fingerprint: fp1.clone() });
    assert_eq!(cp.check_host_key("web-01", &pubkey(1)).unwrap(), HostKeyCheck::Match);
    let fp2 = ControlPlane::fingerprint(&pubkey(2));
    assert_eq!(
        cp.check_host_key("web-01", &pubkey(2)).unwrap(),
        HostKeyCheck::Mismatch { expected: fp1.clone(), got: fp2.clone() }
    );
    // The pin did not move.
    assert_eq!(cp.check_host_key("web-01", &pubkey(1)).unwrap(), HostKeyCheck::Match);
    // From configuration: pinned before any connection.
    let mut t = target("web-02", &[], &["root"]);
    t.host_key = Some(pubkey(3));
    cp.add_target(&t).unwrap();
    assert!(matches!(cp.check_host_key("web-02", &pubkey(1)).unwrap(), HostKeyCheck::Mismatch { .. }));
    assert_eq!(cp.check_host_key("web-02", &pubkey(3)).unwrap(), HostKeyCheck::Match);
    // Admin re-pin after a legitimate change.
    cp.pin_host_key("web-01", &pubkey(2)).unwrap();
    assert_eq!(cp.check_host_key("web-01", &pubkey(2)).unwrap(), HostKeyCheck::Match);
    assert!(cp.forget_host_key("web-01").unwrap());
    assert!(matches!(cp.check_host_key("web-01", &pubkey(5)).unwrap(), HostKeyCheck::Pinned { .. }));
    assert_eq!(cp.check_host_key("nope", &pubkey(1)).unwrap_err().kind(), ErrorKind::NotFound);

    let hk: Vec<_> =
        cp.audit_events(OffsetDateTime::UNIX_EPOCH).unwrap().into_iter().filter(|e| e.kind == AuditKind::HostKey).collect();
    assert_eq!(hk[1].outcome, AuditOutcome::Failure);
    assert_eq!(hk[1].reason, format!("HOST KEY CHANGED: pinned {fp1}, target presented {fp2}"));
}

#[test]
fn database_file_survives_reopen_and_rejects_the_wrong_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("control.db");
    let key = MasterKey::generate();
    {
        let cp = ControlPlane::open(&db, key.clone()).unwrap();
        cp.add_user(&user("alice", Some("pw"), &[])).unwrap();
        cp.add_target(&target("web-01", &[], &["root"])).unwrap();
        cp.add_rule(&rule(&["alice"], &["web-01"], &["root"])).unwrap();
    }
    let cp = ControlPlane::open(&db, key).unwrap();
    assert!(matches!(cp.resolve("alice", "web-01", None).unwrap().credential, Credential::Password(_)));
    let version: i64 = cp.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, ControlPlane::schema_version());
    drop(cp);
    let err = ControlPlane::open(&db, MasterKey::generate()).unwrap_err().to_string();
    assert!(err.contains("does not match the key"), "{err}");
    // A database from a newer gatehouse is refused, not misread.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(conn);
    let err = ControlPlane::open(&db, MasterKey::generate()).unwrap_err().to_string();
    assert!(err.contains("schema version 999 is newer"), "{err}");
}

#[test]
fn management_validates_names_and_reports_conflicts() {
    let (cp, _) = plane();
    cp.add_user(&user("alice", Some("pw"), &[])).unwrap();
    assert_eq!(cp.add_user(&user("alice", None, &[])).unwrap_err().kind(), ErrorKind::Conflict);
    for bad in ["", "a:b", "a@b", "-x", "has space"] {
        assert_eq!(cp.add_user(&user(bad, None, &[])).unwrap_err().kind(), ErrorKind::Invalid, "{bad:?}");
    }
    assert_eq!(cp.remove_user("nobody").unwrap_err().kind(), ErrorKind::NotFound);
    let bad_rule = rule(&["alice"], &["env="], &["root"]);
    assert_eq!(cp.add_rule(&bad_rule).unwrap_err().kind(), ErrorKind::Invalid);
    assert_eq!(cp.add_rule(&rule(&[], &["*"], &["*"])).unwrap_err().kind(), ErrorKind::Invalid);
    cp.add_user_keys("alice", &[pubkey(1), pubkey(1), pubkey(2)]).unwrap();
    let info = &cp.list_users().unwrap()[0];
    assert_eq!(info.keys.len(), 2);
    cp.remove_user_key("alice", &info.keys[0].fingerprint).unwrap();
    assert_eq!(cp.list_users().unwrap()[0].keys.len(), 1);
    cp.set_password("alice", None).unwrap();
    assert_eq!(cp.auth_password("alice", "pw", src(1)), AuthDecision::Reject);
    cp.remove_user("alice").unwrap();
    assert!(cp.list_users().unwrap().is_empty());
}
