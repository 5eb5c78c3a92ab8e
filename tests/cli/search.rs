//! `gatehouse reindex` and `gatehouse search`, run for real on recordings imported from the
//! recorded corpus (real bash sessions): commands and screen text are found with every kind
//! of query and filter, reindexing twice changes nothing, and a secret typed at a no-echo
//! prompt is found nowhere.

use std::path::Path;
use std::process::Output;

use crate::support::{corpus, gatehouse};

fn gh(dir: &Path, args: &[&str]) -> Output {
    gatehouse(dir, args).output().expect("gatehouse runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = gh(dir, args);
    assert!(out.status.success(), "gatehouse {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `search --json` hits as (session, kind, text, user).
fn hits(dir: &Path, args: &[&str]) -> Vec<(String, String, String, String)> {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    ok(dir, &all)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("session"), s("kind"), s("text"), s("user"))
        })
        .collect()
}

#[test]
fn reindex_then_search_commands_and_screen_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let alice = ok(dir, &["import", "--user", "alice", "--target", "web-01", corpus("d01_basics.cast").to_str().unwrap()]);
    let bob = ok(dir, &["import", "--user", "bob", "--target", "db-01", corpus("d08_secret.cast").to_str().unwrap()]);
    let (alice, bob) = (alice.trim().to_string(), bob.trim().to_string());

    // No index yet: a clear error that says what to do.
    let out = gh(dir, &["search", "whoami"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gatehouse reindex"), "{}", String::from_utf8_lossy(&out.stderr));

    let out = gh(dir, &["reindex"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("indexed 2 sessions"), "{summary}");
    assert!(!summary.contains('\r'), "no progress bar when stderr is not a terminal: {summary:?}");

    // A term, with the session, kind and user it belongs to.
    let got = hits(dir, &["whoami", "--kind", "command"]);
    assert_eq!(got, vec![(alice.clone(), "shell".into(), "whoami".into(), "alice".into())]);
    // A phrase given as one argument; a path's words in sequence; a prefix; a substring.
    let texts = |args: &[&str]| hits(dir, args).into_iter().map(|h| h.2).collect::<Vec<_>>();
    assert_eq!(texts(&["head -5", "--kind", "shell"]), ["ls -1 /etc | head -5"]);
    assert_eq!(texts(&["/etc", "head*", "--kind", "shell"]), ["ls -1 /etc | head -5"]);
    assert_eq!(texts(&["-s", "1 /etc | he", "--kind", "shell"]), ["ls -1 /etc | head -5"]);
    assert_eq!(texts(&["*6*7*", "--kind", "shell"]), ["echo $((6*7))"]);
    // Screen text: the output the shell printed (6*7 = 42), found as a screen line.
    assert!(hits(dir, &["42", "--kind", "screen"]).iter().any(|h| h.0 == alice && h.2 == "42"));
    // Exclusion; filters.
    let echoes = texts(&["--kind", "shell", "--", "echo", "-ok"]);
    assert!(!echoes.is_empty() && echoes.iter().all(|t| !t.contains("ok")), "{echoes:?}");
    assert!(hits(dir, &["echo", "--user", "bob"]).iter().all(|h| h.0 == bob && h.3 == "bob"));
    assert!(hits(dir, &["echo", "--target", "web-01"]).iter().all(|h| h.0 == alice));
    assert!(hits(dir, &["echo", "--session", &bob[..23]]).iter().all(|h| h.0 == bob));
    assert!(hits(dir, &["echo", "--until", "2000-01-01"]).is_empty());
    assert!(!hits(dir, &["echo", "--since", "2000-01-01"]).is_empty());
    // Text output: time, session, offset, user@target, kind, line.
    let line = ok(dir, &["search", "whoami", "--kind", "shell"]);
    assert!(line.contains(&alice) && line.contains("alice@web-01") && line.contains("shell") && line.contains("whoami"), "{line}");

    // The PIN typed at `read -s` is nowhere: not in commands, not in screen text.
    for q in ["s3cr3t", "PIN-4471", "4471"] {
        assert!(hits(dir, &["-s", q]).is_empty(), "{q} found");
    }
    assert!(hits(dir, &["PIN"]).iter().any(|h| h.0 == bob), "the prompt itself is searchable");

    // Reindexing again gives the same hits, no duplicates.
    let before = hits(dir, &["-s", "e", "--limit", "1000"]);
    let out = gh(dir, &["reindex"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(hits(dir, &["-s", "e", "--limit", "1000"]), before);
    let tables = dir.join("store/tables/commands");
    assert!(std::fs::read_dir(&tables).unwrap().count() >= 1, "commands table partitions in {}", tables.display());
}

#[test]
fn bad_search_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["import", corpus("d01_basics.cast").to_str().unwrap()]);
    ok(dir, &["reindex"]);
    for (args, says) in [
        (&["search", "\"unclosed"][..], "unclosed quote"),
        (&["search", "x", "--kind", "weird"], "unknown kind"),
        (&["search", "x", "--since", "yesterday"], "is not a time"),
    ] {
        let out = gh(dir, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
