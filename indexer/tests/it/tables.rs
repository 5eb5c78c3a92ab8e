//! The Parquet tables, read back by pyarrow exactly as an analyst would.

use std::process::Command;

use gatehouse_fixtures::terminal::realistic_session;
use gatehouse_indexer::reindex;
use gatehouse_indexer::tables::EventRow;
use gatehouse_recorder::Frame;
use serde_json::Value;
use time::macros::datetime;

use crate::common::{Env, meta};

/// The venv python that has pyarrow (scripts/test.sh exports it).
fn python() -> String {
    std::env::var("GATEHOUSE_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/gatehouse/venv/bin/python")
    })
}

const READ: &str = r#"
import json, sys
import pyarrow.dataset as ds
root = sys.argv[1]
out = {}
for t in ["sessions", "commands", "events"]:
    table = ds.dataset(f"{root}/tables/{t}", format="parquet", partitioning="hive").to_table()
    out[t] = {
        "schema": {f.name: str(f.type) for f in table.schema},
        "rows": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in table.to_pylist()],
    }
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_tables_as_they_are() {
    let env = Env::new().await;
    let w1 = realistic_session(61, 40_000);
    let w2 = realistic_session(62, 40_000);
    let mut frames = w1.frames.clone();
    let t = frames.last().unwrap().t;
    frames.push(Frame::event(t, "file.write", serde_json::json!({"path": "/etc/hosts", "bytes": 120, "outcome": "allowed"})));
    let m1 = env.record(meta("alice", "web-01", &w1), datetime!(2026-11-01 09:00 UTC), &frames).await;
    // Bob's session starts before midnight and ends after it.
    let half = time::Duration::microseconds((w2.frames.last().unwrap().t / 2) as i64);
    let m2 = env.record(meta("bob", "db-primary", &w2), datetime!(2026-11-03 00:00 UTC) - half, &w2.frames).await;
    let mut auth = EventRow::control_plane(datetime!(2026-11-02 08:00:00.123456 UTC), "auth");
    auth.user = Some("mallory".into());
    auth.source_addr = Some("203.0.113.9".into());
    auth.auth_method = Some("password".into());
    auth.outcome = Some("failure".into());
    auth.detail = Some("wrong password".into());
    reindex(&env.storage, &env.index_dir(), vec![auth], &()).await.unwrap();

    let out = Command::new(python()).arg("-c").arg(READ).arg(env.store_dir()).output().expect("python runs");
    assert!(out.status.success(), "pyarrow failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Schemas: 5W columns first-class, timestamps in µs UTC, the hive `date` column.
    let schema = &got["sessions"]["schema"];
    for col in ["session_id", "user", "account", "target", "source_addr", "client", "auth_method", "mfa", "end_reason"] {
        assert_eq!(schema[col], "string", "sessions.{col}");
    }
    assert_eq!(schema["start"], "timestamp[us, tz=UTC]");
    assert_eq!(schema["end"], "timestamp[us, tz=UTC]");
    assert_eq!(schema["duration_us"], "int64");
    assert!(schema["date"].is_string(), "hive partition column: {schema}");
    assert_eq!(got["commands"]["schema"]["time"], "timestamp[us, tz=UTC]");
    assert_eq!(got["events"]["schema"]["bytes"], "int64");

    let sessions = got["sessions"]["rows"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let alice = sessions.iter().find(|r| r["user"] == "alice").unwrap();
    assert_eq!(alice["session_id"], m1.id.to_string());
    assert_eq!(alice["start"], "2026-11-01T09:00:00+00:00");
    assert_eq!(alice["target"], "web-01");
    assert_eq!(alice["mfa"], "totp");
    assert_eq!(alice["state"], "complete");
    assert_eq!(alice["end_reason"], "exit");
    assert_eq!(alice["duration_us"], m1.duration);
    assert_eq!(alice["bytes_out"], m1.bytes_out);
    assert_eq!(alice["commands"].as_u64().unwrap() as usize, w1.commands.len());
    assert_eq!(alice["date"].as_str().unwrap(), "2026-11-01");

    // Commands: exactly what was typed, in order, with the session's 5W fields; bob's
    // session crosses midnight, so its commands sit in two date partitions.
    let commands = got["commands"]["rows"].as_array().unwrap();
    for (m, w, user) in [(&m1, &w1, "alice"), (&m2, &w2, "bob")] {
        let mut rows: Vec<&Value> = commands.iter().filter(|r| r["session_id"] == m.id.to_string()).collect();
        rows.sort_by_key(|r| r["seq"].as_i64());
        let typed: Vec<&str> = rows.iter().map(|r| r["command"].as_str().unwrap()).collect();
        assert!(rows.iter().all(|r| r["kind"] == "shell" || r["kind"] == "program-input"));
        assert_eq!(typed, w.commands.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(rows.iter().all(|r| r["user"] == user && r["account"] == "root" && r["source_addr"] == "192.0.2.10"));
        assert!(rows.iter().all(|r| r["offset_us"].as_i64().unwrap() >= 0 && r["time"].is_string()));
    }
    let bob_dates: std::collections::BTreeSet<&str> = commands
        .iter()
        .filter(|r| r["user"] == "bob")
        .map(|r| r["date"].as_str().unwrap())
        .collect();
    assert_eq!(bob_dates.into_iter().collect::<Vec<_>>(), ["2026-11-02", "2026-11-03"]);

    // Events: from the recording and from the control plane.
    let events = got["events"]["rows"].as_array().unwrap();
    let write = events.iter().find(|r| r["kind"] == "file.write").expect("file.write event");
    assert_eq!(write["source"], "recording");
    assert_eq!(write["path"], "/etc/hosts");
    assert_eq!(write["bytes"], 120);
    assert_eq!(write["outcome"], "allowed");
    assert_eq!(write["user"], "alice");
    assert_eq!(write["session_id"], m1.id.to_string());
    let auth = events.iter().find(|r| r["kind"] == "auth").expect("auth event");
    assert_eq!(auth["source"], "control-plane");
    assert_eq!(auth["time"], "2026-11-02T08:00:00.123456+00:00");
    assert_eq!((auth["user"].as_str(), auth["outcome"].as_str()), (Some("mallory"), Some("failure")));
    assert!(auth["session_id"].is_null());
}
