//! `gatehouse commands FILE.cast|SESSION`, run for real on recorded shell sessions from
//! `fixtures/corpus`: JSON lines with the record fields, the same commands from a file and
//! from the stored session it was imported as, no secret in the output, and a damaged
//! cast reported with its line while the commands before it are still printed.

use std::path::Path;
use std::process::Output;

use crate::support::{corpus, gatehouse};

fn run(dir: &Path, args: &[&str]) -> Output {
    gatehouse(dir, args).output().expect("gatehouse runs")
}

fn records(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn commands(records: &[serde_json::Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r["command"].as_str().unwrap().to_string(), r["kind"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn commands_from_a_cast_and_from_the_stored_session() {
    let dir = tempfile::tempdir().unwrap();
    let cast = corpus("d08_secret.cast");
    let out = run(dir.path(), &["commands", cast.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_file = records(&out);
    assert_eq!(
        commands(&from_file),
        [
            ("read -s -p 'PIN: ' pin; echo".to_string(), "shell".to_string()),
            ("echo ok".to_string(), "shell".to_string())
        ]
    );
    let first = &from_file[0];
    for key in ["t", "t_end", "command", "kind", "cwd", "exit", "output_excerpt"] {
        assert!(first.get(key).is_some(), "record has {key}: {first}");
    }
    assert!(first["t"].as_f64().unwrap() > 0.0 && first["t_end"].as_f64().unwrap() > first["t"].as_f64().unwrap());
    assert_eq!(from_file[1]["output_excerpt"], "ok");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cr3t-PIN-4471"), "the no-echo PIN never appears");

    let import = run(dir.path(), &["import", cast.to_str().unwrap()]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let id = String::from_utf8_lossy(&import.stdout).trim().to_string();
    let out = run(dir.path(), &["commands", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(records(&out), from_file, "a stored session gives the same records as its cast");
}

#[test]
fn a_damaged_cast_names_its_line_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(corpus("d01_basics.cast")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Keep the header and the first half of the events (past `whoami`), then a broken one.
    let cut = lines.len() / 2;
    let mut damaged = lines[..cut].join("\n");
    damaged.push_str("\n[12.5, \"o\", \n");
    let bad = dir.path().join("damaged.cast");
    std::fs::write(&bad, damaged).unwrap();
    let out = run(dir.path(), &["commands", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged.cast") && err.contains(&format!("line {}", cut + 1)), "{err}");
    let got = commands(&records(&out));
    assert!(got.iter().any(|(c, _)| c == "whoami"), "records before the damage are printed: {got:?}");

    let missing = run(dir.path(), &["commands", "no-such-file.cast"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-file.cast"));
}
