//! `apply` of the config file's control-plane keys, parsed from real TOML.

use std::net::SocketAddr;

use ssh_key::private::Ed25519Keypair;
use time::OffsetDateTime;

use super::super::{AuthDecision, ControlPlane, Credential, ErrorKind, HostKeyCheck, MasterKey, NewUser};
use super::*;

fn key(seed: u8) -> ssh_key::PrivateKey {
    ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn pub_line(seed: u8) -> String {
    key(seed).public_key().to_openssh().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    hash: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-pw"), "db-secret\n").unwrap();
        let pem = key(9).to_openssh(ssh_key::LineEnding::LF).unwrap();
        std::fs::write(dir.path().join("web-root"), pem.as_bytes()).unwrap();
        Fixture { dir, hash: password::hash_password("alice-pw").unwrap() }
    }

    /// The config text; `extra` is appended (to vary it between applies).
    fn toml(&self, extra: &str) -> Declarative {
        let text = format!(
            r#"
[lockout]
max_failures = 2
window_secs = 60
lockout_secs = 60

[groups]
ops = ["alice"]

[[users]]
name = "alice"
keys = ["{k1}"]
password_hash = "{hash}"

[[users]]
name = "bob"
keys = ["{k2}"]
groups = ["dba"]

[[targets]]
name = "web-01"
host = "10.0.0.5"
labels = {{ env = "prod" }}
default_account = "root"
host_key = "{hk}"
allow = ["port-forward"]
accounts = [{{ name = "root", key_file = "web-root" }}]

[[targets]]
name = "db-01"
host = "10.0.0.6"
port = 2200
accounts = [{{ name = "postgres", password_file = "db-pw" }}]

[[rules]]
name = "ops-prod"
users = ["@ops"]
targets = ["env=prod"]
accounts = ["root"]
{extra}
"#,
            k1 = pub_line(1),
            k2 = pub_line(2),
            hk = pub_line(3),
            hash = self.hash,
        );
        let mut decl: Declarative = toml::from_str(&text).unwrap();
        decl.base_dir = Some(self.dir.path().to_path_buf());
        decl
    }
}

fn plane() -> ControlPlane {
    ControlPlane::open_in_memory(MasterKey::generate()).unwrap()
}

const DBA_RULE: &str = r#"
[[rules]]
name = "dba"
users = ["@dba"]
targets = ["db-01"]
accounts = ["*"]
"#;

#[test]
fn apply_creates_then_is_idempotent() {
    let fx = Fixture::new();
    let cp = plane();
    let first = cp.apply(&fx.toml("")).unwrap();
    assert_eq!(
        first.created,
        ["user alice", "user bob", "target web-01", "target db-01", "rule ops-prod"].map(String::from)
    );
    let again = cp.apply(&fx.toml("")).unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(again.unchanged, 5);

    // What was applied works end to end.
    let source: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    assert_eq!(cp.auth_password("alice", "alice-pw", source), AuthDecision::Accept { needs_totp: false });
    assert!(cp.publickey_acceptable("alice", key(1).public_key()));
    let route = cp.resolve("alice", "web-01", None).unwrap();
    assert!(route.allow.port_forward && !route.allow.agent);
    assert!(matches!(route.credential, Credential::PrivateKey(k) if k.public_key() == key(9).public_key()));
    assert_eq!(cp.check_host_key("web-01", key(3).public_key()).unwrap(), HostKeyCheck::Match);
    assert_eq!(cp.lockout_policy().max_failures, 2);
    assert_eq!(cp.resolve("bob", "db-01", None).unwrap_err().kind(), ErrorKind::Denied);
}

#[test]
fn apply_updates_and_removes_only_config_entries() {
    let fx = Fixture::new();
    let cp = plane();
    cp.apply(&fx.toml("")).unwrap();
    cp.add_user(&NewUser { name: "carol".into(), ..NewUser::default() }).unwrap();

    // A new rule; a changed password file.
    std::fs::write(fx.dir.path().join("db-pw"), "rotated\n").unwrap();
    let report = cp.apply(&fx.toml(DBA_RULE)).unwrap();
    assert_eq!(report.created, ["rule dba"]);
    assert_eq!(report.updated, ["target db-01"]);
    match cp.resolve("bob", "db-01", None).unwrap().credential {
        Credential::Password(p) => assert_eq!(p.as_str(), "rotated"),
        other => panic!("{other:?}"),
    }

    // Dropping bob and the rule from the file removes them; the CLI's carol stays.
    let mut smaller = fx.toml("");
    smaller.users.retain(|u| u.name != "bob");
    let report = cp.apply(&smaller).unwrap();
    assert_eq!(report.removed, ["user bob", "rule dba"]);
    let names: Vec<String> = cp.list_users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "carol"]);
    assert!(cp.apply(&smaller).unwrap().is_noop());
}

#[test]
fn a_bad_file_changes_nothing_and_says_where() {
    let fx = Fixture::new();
    let cp = plane();
    cp.apply(&fx.toml("")).unwrap();
    let cases: Vec<(Declarative, &str)> = vec![
        {
            let mut d = fx.toml("");
            d.targets[1].accounts[0].password_file = Some("missing-file".into());
            (d, "missing-file")
        },
        {
            let mut d = fx.toml("");
            d.users[0].keys.push("ssh-ed25519 not-base64".into());
            (d, "users[alice].keys[1]")
        },
        {
            let mut d = fx.toml("");
            d.users[1].password_hash = Some("plaintext".into());
            (d, "users[bob].password_hash")
        },
        {
            let mut d = fx.toml("");
            d.users.push(d.users[0].clone());
            (d, "user `alice`")
        },
        {
            let mut d = fx.toml("");
            d.targets[0].accounts[0].password_env = Some("X".into());
            (d, "give exactly one of")
        },
        {
            let mut d = fx.toml("");
            d.groups.insert("ops".into(), vec!["zed".into()]);
            (d, "member `zed`")
        },
    ];
    for (decl, needle) in cases {
        let mut smaller = decl.clone();
        smaller.rules.clear();
        let err = cp.apply(&smaller).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Nothing was removed by the failed applies (they had no rules).
    assert_eq!(cp.list_rules().unwrap().len(), 1);
    assert!(cp.apply(&fx.toml("")).unwrap().is_noop());
    // Unknown keys inside an entry are refused by the parser.
    let err = toml::from_str::<Declarative>("[[users]]\nname = \"a\"\npasword_hash = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("pasword_hash"), "{err}");
}

#[test]
fn config_takes_over_a_cli_entry_of_the_same_name_and_keeps_totp() {
    let fx = Fixture::new();
    let cp = plane();
    cp.add_user(&NewUser { name: "alice".into(), totp: true, ..NewUser::default() }).unwrap();
    let report = cp.apply(&fx.toml("")).unwrap();
    assert_eq!(report.updated, ["user alice"]);
    let alice = cp.list_users().unwrap().into_iter().find(|u| u.name == "alice").unwrap();
    assert!(alice.totp && alice.has_password);
    assert_eq!(alice.groups, ["ops"]);
    let since = OffsetDateTime::UNIX_EPOCH;
    assert!(cp.audit_events(since).unwrap().is_empty());
}

#[test]
fn load_reads_a_whole_gatehouse_toml_and_ignores_other_sections() {
    let fx = Fixture::new();
    let path = fx.dir.path().join("gatehouse.toml");
    let text = "[ssh]\nlisten = \"127.0.0.1:2222\"\n\n[[targets]]\nname = \"db-01\"\nhost = \"10.0.0.6\"\n\
                accounts = [{ name = \"postgres\", password_file = \"db-pw\" }]\n";
    std::fs::write(&path, text).unwrap();
    let decl = Declarative::load(&path).unwrap();
    assert!(!decl.is_empty());
    let cp = plane();
    assert_eq!(cp.apply(&decl).unwrap().created, ["target db-01"]);
    assert!(Declarative::default().is_empty());
    std::fs::write(&path, "[[targets]]\nname = 3\n").unwrap();
    let err = Declarative::load(&path).unwrap_err().to_string();
    assert!(err.contains("gatehouse.toml"), "{err}");
}
