//! File-transfer events as searchable text: the proxy records what an SFTP session did
//! (`file.read`, `file.write`, `file.remove`, … with paths and byte counts), and the
//! index holds one `file` document per event, worded for an auditor:
//! `read /etc/passwd (1.2 KiB) via sftp`.

use gatehouse_recorder::Event;
use serde_json::Value;

/// The `kind` of a file-transfer document.
pub const FILE_KIND: &str = "file";

/// A byte count for people: `812 B`, `1.2 KiB`, `3.4 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The words of a file-transfer event (`None` for other events, and for a successful
/// `file.open`, which the read or write that follows it says better).
pub fn transfer_text(event: &Event) -> Option<String> {
    let d = &event.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str);
    let path = s("path").unwrap_or("?");
    let size = d.get("bytes").and_then(Value::as_u64).map(|n| format!(" ({})", human_bytes(n))).unwrap_or_default();
    let failed = if d.get("ok").and_then(Value::as_bool) == Some(false) { " (failed)" } else { "" };
    // (A file whose name the path may not end with: scp into a destination that may be a
    // directory.)
    let name = s("name");
    let what = match event.kind.as_str() {
        "file.read" => name.map_or_else(|| format!("read {path}{size}"), |n| format!("read {n} from {path}{size}")),
        "file.write" => name.map_or_else(|| format!("wrote {path}{size}"), |n| format!("wrote {n} to {path}{size}")),
        "file.open" if failed.is_empty() => return None,
        "file.open" => format!("open {path} for {}", s("mode").unwrap_or("read")),
        "file.remove" => format!("removed {path}"),
        "file.mkdir" => format!("made directory {path}"),
        "file.rmdir" => format!("removed directory {path}"),
        "file.rename" => format!("renamed {} to {}", s("from").unwrap_or("?"), s("to").unwrap_or("?")),
        _ => return None,
    };
    // The proxy decodes SFTP; events decoded from other protocols say which.
    let via = s("via").unwrap_or("sftp");
    Some(format!("{what}{failed} via {via}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(kind: &str, data: Value) -> Event {
        Event { kind: kind.into(), data }
    }

    #[test]
    fn sizes() {
        let cases = [(0, "0 B"), (812, "812 B"), (1024, "1.0 KiB"), (1229, "1.2 KiB"), (3_565_158, "3.4 MiB")];
        for (n, want) in cases {
            assert_eq!(human_bytes(n), want);
        }
    }

    #[test]
    fn words_of_each_event() {
        let cases = [
            (
                ev("file.read", json!({"path": "/etc/passwd", "bytes": 1229})),
                Some("read /etc/passwd (1.2 KiB) via sftp"),
            ),
            (ev("file.write", json!({"path": "/tmp/up.bin", "bytes": 10})), Some("wrote /tmp/up.bin (10 B) via sftp")),
            (ev("file.write", json!({"path": "/srv/a", "bytes": 3, "via": "scp"})), Some("wrote /srv/a (3 B) via scp")),
            (
                ev("file.write", json!({"path": "/tmp", "name": "x.bin", "bytes": 3, "via": "scp"})),
                Some("wrote x.bin to /tmp (3 B) via scp"),
            ),
            (ev("file.open", json!({"path": "/etc/shadow", "mode": "read", "ok": true})), None),
            (
                ev("file.open", json!({"path": "/etc/shadow", "mode": "read", "ok": false, "status": 3})),
                Some("open /etc/shadow for read (failed) via sftp"),
            ),
            (
                ev("file.remove", json!({"path": "/var/log/auth.log", "ok": true})),
                Some("removed /var/log/auth.log via sftp"),
            ),
            (ev("file.rename", json!({"from": "/a", "to": "/b", "ok": true})), Some("renamed /a to /b via sftp")),
            (
                ev("file.mkdir", json!({"path": "/d", "ok": false, "status": 4})),
                Some("made directory /d (failed) via sftp"),
            ),
            (ev("file.rmdir", json!({"path": "/d", "ok": true})), Some("removed directory /d via sftp")),
            (ev("exec", json!({"command": "ls"})), None),
            (ev("tunnel.open", json!({"to": "db:5432"})), None),
        ];
        for (event, want) in cases {
            assert_eq!(transfer_text(&event).as_deref(), want, "{event:?}");
        }
    }
}
