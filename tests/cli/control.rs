//! `gatehouse user|target|rule`: management commands against a temporary data dir, checked
//! both by what they print and by what the control plane then decides.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gatehouse_proxy::control::{AuthDecision, ControlPlane, Credential, HostKeyCheck, PublicKey};

use crate::support::{BIN, Kill, gatehouse};

/// Runs `gatehouse ARGS` with `stdin` in data dir `dir`, without a master key in the environment.
fn gh(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = gatehouse(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = gh(dir, args, stdin);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gatehouse {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Runs and expects failure; returns stderr.
fn fails(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = gh(dir, args, stdin);
    assert!(!out.status.success(), "gatehouse {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A real ssh-keygen key pair; returns the private key path (the public one is `.pub`).
fn keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", &format!("{name}@test"), "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(status.success());
    path
}

fn pubkey(path: &Path) -> PublicKey {
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    gatehouse_proxy::control::parse_public_key(&text, "test").unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn users_targets_and_rules_made_by_the_cli_grant_access() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let alice_key = keygen(tmp.path(), "alice", "");
    let deploy_key = keygen(tmp.path(), "deploy", "");
    let host_key = keygen(tmp.path(), "host", "");
    let alice_pub = alice_key.with_extension("pub");

    let out = ok(
        &data,
        &["user", "add", "alice", "--password-stdin", "--key", alice_pub.to_str().unwrap(), "--group", "ops", "--totp"],
        "alice-pw\n",
    );
    assert!(out.contains("user alice created"), "{out}");
    let uri = out.lines().map(str::trim).find(|l| l.starts_with("otpauth://totp/gatehouse:alice?")).expect(&out);
    assert!(uri.contains("secret=") && uri.contains("issuer=gatehouse"), "{uri}");

    let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
    let out = ok(
        &data,
        &[
            "target", "add", "web-01", "--host", "10.0.0.5", "--port", "2200", "--label", "env=prod",
            "--account", "root", "--password-stdin", "--host-key", host_pub.trim(), "--allow", "port-forward,agent",
        ],
        "root-target-pw\n",
    );
    assert!(out.contains("host key pinned: SHA256:"), "{out}");
    ok(&data, &["target", "add-account", "web-01", "deploy", "--key-file", deploy_key.to_str().unwrap()], "");
    ok(&data, &["rule", "add", "--users", "@ops", "--targets", "env=prod", "--accounts", "deploy", "--name", "ops-prod"], "");

    let users: serde_json::Value = serde_json::from_str(&ok(&data, &["user", "list", "--json"], "")).unwrap();
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["groups"][0], "ops");
    assert_eq!(users[0]["totp"], true);
    assert_eq!(users[0]["keys"][0]["comment"], "alice@test");
    let targets: serde_json::Value = serde_json::from_str(&ok(&data, &["target", "list", "--json"], "")).unwrap();
    assert_eq!(targets[0]["port"], 2200);
    assert_eq!(targets[0]["labels"]["env"], "prod");
    assert_eq!(targets[0]["default_account"], "root");
    assert_eq!(targets[0]["allow"]["agent"], true);
    let table = ok(&data, &["target", "list"], "");
    assert!(table.contains("deploy(key),root*(password)"), "{table}");

    // Secrets at rest: key file and database private, no plaintext credential in the database.
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data.join("control.db")), 0o600);
    let db = std::fs::read(data.join("control.db")).unwrap();
    assert!(!db.windows(14).any(|w| w == b"root-target-pw"));

    // What the CLI stored is what the proxy's control plane decides with.
    let cp = ControlPlane::open_data_dir(&data).unwrap();
    let src = "127.0.0.1:5000".parse().unwrap();
    assert_eq!(cp.auth_password("alice", "alice-pw", src), AuthDecision::Accept { needs_totp: true });
    assert_eq!(cp.auth_publickey("alice", &pubkey(&alice_key), src), AuthDecision::Accept { needs_totp: true });
    let route = cp.resolve("alice", "web-01", Some("deploy")).unwrap();
    assert!(matches!(route.credential, Credential::PrivateKey(k) if *k.public_key() == pubkey(&deploy_key)));
    assert!(route.allow.port_forward && route.allow.agent && !route.allow.x11);
    assert_eq!(cp.resolve("alice", "web-01", None).unwrap_err().to_string(), "unknown target or access denied: web-01");
    assert_eq!(cp.check_host_key("web-01", &pubkey(&host_key)).unwrap(), HostKeyCheck::Match);
    assert!(matches!(cp.check_host_key("web-01", &pubkey(&alice_key)).unwrap(), HostKeyCheck::Mismatch { .. }));
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let locked_key = keygen(tmp.path(), "locked", "a passphrase");
    std::fs::write(tmp.path().join("junk.pub"), "ssh-ed25519 notbase64 x\n").unwrap();

    assert!(fails(&data, &["user", "remove", "bob"], "").contains("user not found: bob"));
    assert!(fails(&data, &["user", "add", "a:b", "--password-stdin"], "pw\n").contains("invalid user name `a:b`"));
    assert!(fails(&data, &["user", "add", "bob", "--password-stdin"], "\n").contains("is empty"));
    assert!(fails(&data, &["user", "add", "bob"], "").contains("needs --password-stdin or --key"));
    let junk = tmp.path().join("junk.pub");
    let err = fails(&data, &["user", "add", "bob", "--key", junk.to_str().unwrap()], "");
    assert!(err.contains("junk.pub line 1"), "{err}");
    let err = fails(&data, &["target", "add", "db", "--host", "h", "--account", "root", "--key-file", locked_key.to_str().unwrap()], "");
    assert!(err.contains("passphrase-protected"), "{err}");
    let err = fails(&data, &["target", "add", "db", "--host", "h", "--label", "env"], "");
    assert!(err.contains("label `env`: expected KEY=VALUE"), "{err}");
    let err = fails(&data, &["target", "add", "db", "--host", "h", "--allow", "everything"], "");
    assert!(err.contains("allowance `everything`"), "{err}");
    let err = fails(&data, &["rule", "add", "--users", "alice", "--targets", "env=", "--accounts", "root"], "");
    assert!(err.contains("label value ``"), "{err}");
    // Nothing half-created by the failures.
    assert_eq!(ok(&data, &["user", "list", "--json"], "").trim(), "[]");
    assert_eq!(ok(&data, &["target", "list", "--json"], "").trim(), "[]");

    // A master key that does not match the database is refused before anything is read.
    let out = Command::new(BIN)
        .args(["user", "list"])
        .env("GATEHOUSE_DATA_DIR", &data)
        .env("GATEHOUSE_MASTER_KEY", "0".repeat(64))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match the key"), "{err}");
}

#[test]
fn passwords_rules_and_lockouts_are_managed_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&data, &["user", "add", "bob", "--password-stdin"], "old-pw\n");
    ok(&data, &["user", "passwd", "bob", "--password-stdin"], "new-pw\n");
    ok(&data, &["target", "add", "db-01", "--host", "10.0.0.6", "--account", "pg", "--password-stdin"], "x\n");
    assert!(ok(&data, &["rule", "add", "--users", "bob", "--targets", "db-01", "--accounts", "*"], "").contains("rule 1 added"));
    ok(&data, &["rule", "add", "--users", "*", "--targets", "*", "--accounts", "*", "--name", "all"], "");

    let src = "192.0.2.7:4000".parse().unwrap();
    {
        let cp = ControlPlane::open_data_dir(&data).unwrap();
        assert_eq!(cp.auth_password("bob", "old-pw", src), AuthDecision::Reject);
        assert_eq!(cp.auth_password("bob", "new-pw", src), AuthDecision::Accept { needs_totp: false });
        // The source had one failure already (old-pw): 4 more lock it, the 5th is refused
        // uncounted; one more guess from elsewhere is bob's 5th failure and locks him.
        for _ in 0..5 {
            cp.auth_password("bob", "guess", src);
        }
        assert!(matches!(cp.auth_password("alice", "whatever", src), AuthDecision::Locked { .. }));
        let elsewhere = "192.0.2.8:4000".parse().unwrap();
        assert_eq!(cp.auth_password("bob", "guess", elsewhere), AuthDecision::Reject);
        assert!(matches!(cp.auth_password("bob", "new-pw", elsewhere), AuthDecision::Locked { .. }));
    }
    let locks: serde_json::Value = serde_json::from_str(&ok(&data, &["user", "lockouts", "--json"], "")).unwrap();
    let subjects: Vec<&str> = locks.as_array().unwrap().iter().map(|l| l["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["192.0.2.7", "bob"]);
    ok(&data, &["user", "unlock", "bob"], "");
    ok(&data, &["user", "unlock", "192.0.2.7"], "");
    let cp = ControlPlane::open_data_dir(&data).unwrap();
    assert_eq!(cp.auth_password("bob", "new-pw", src), AuthDecision::Accept { needs_totp: false });

    ok(&data, &["rule", "remove", "all"], "");
    ok(&data, &["rule", "remove", "1"], "");
    assert!(fails(&data, &["rule", "remove", "1"], "").contains("rule not found: 1"));
    assert_eq!(cp.resolve("bob", "db-01", None).unwrap_err().to_string(), "unknown target or access denied: db-01");

    ok(&data, &["user", "passwd", "bob", "--clear"], "");
    assert_eq!(cp.auth_password("bob", "new-pw", src), AuthDecision::Reject);
    let hash = ok(&data, &["user", "hash-password"], "for-config\n");
    assert!(gatehouse_proxy::control::verify_password("for-config", hash.trim()));
}

/// Starts `gatehouse serve --config CONFIG` on a free port and waits until it listens;
/// returns it with what it printed on stderr before that.
fn serve(data: &Path, config: &Path) -> (Kill, String) {
    use std::io::BufRead;
    let mut child = gatehouse(data, &["serve", "--ssh-listen", "127.0.0.1:0", "--store", "memory://", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.contains("listening on 127.0.0.1:"), "serve did not start: {line:?}");
    // Everything serve says on stderr before listening is the apply report; read what is there.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut report = String::new();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
        report.push_str(&l);
        report.push('\n');
    }
    (running, report)
}

#[test]
fn serve_applies_the_config_file_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let deploy_key = keygen(tmp.path(), "deploy", "");
    let hash = ok(&data, &["user", "hash-password"], "alice-pw\n");
    let config = tmp.path().join("gatehouse.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "[ssh]\nenv_allow = [\"LANG\"]\n\n[groups]\nops = [\"alice\"]\n\n\
                 [[users]]\nname = \"alice\"\npassword_hash = \"{}\"\n\n\
                 [[targets]]\nname = \"web-01\"\nhost = \"10.0.0.5\"\nlabels = {{ env = \"prod\" }}\n\
                 accounts = [{{ name = \"deploy\", key_file = \"deploy\" }}]\n\n\
                 [[rules]]\nname = \"ops\"\nusers = [\"@ops\"]\ntargets = [\"env=prod\"]\naccounts = [\"*\"]\n{extra}",
                hash.trim()
            ),
        )
        .unwrap()
    };
    write("");
    ok(&data, &["user", "add", "carol", "--password-stdin"], "carol-pw\n");

    let (server, report) = serve(&data, &config);
    assert!(report.contains("created user alice, target web-01, rule ops"), "{report}");
    let cp = ControlPlane::open_data_dir(&data).unwrap();
    let src = "127.0.0.1:5000".parse().unwrap();
    assert_eq!(cp.auth_password("alice", "alice-pw", src), AuthDecision::Accept { needs_totp: false });
    let route = cp.resolve("alice", "web-01", None).unwrap();
    assert!(matches!(route.credential, Credential::PrivateKey(k) if *k.public_key() == pubkey(&deploy_key)));
    drop(server);

    // Same file again: nothing to do. Without the target: it goes, the CLI's carol stays.
    let (server, report) = serve(&data, &config);
    assert!(!report.contains("created") && !report.contains("updated"), "{report}");
    drop(server);
    std::fs::write(&config, "[[users]]\nname = \"alice\"\n").unwrap();
    let (server, report) = serve(&data, &config);
    assert!(report.contains("removed target web-01, rule ops"), "{report}");
    drop(server);
    let users: serde_json::Value = serde_json::from_str(&ok(&data, &["user", "list", "--json"], "")).unwrap();
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "carol"]);
}
