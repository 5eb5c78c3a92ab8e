//! End to end: file transfers through `gatehouse demo` with the real `sftp` and `scp`
//! clients are searchable as file-transfer hits (who, what path, how many bytes, via what,
//! pointing to the session and the moment), land in the `events` table, and leave no screen
//! text; a command run without a terminal keeps its text output searchable but not its
//! binary output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BIN, Demo};

/// `gatehouse search --json ARGS...` as JSON hits.
fn search(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN).arg("--data-dir").arg(data).args(["search", "--json"]).args(args).output().unwrap();
    assert!(out.status.success(), "search {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits until `gatehouse search` gives a hit (the live indexer's final pass of a finished
/// session takes a moment).
fn wait_hit(data: &Path, args: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hits = search(data, args);
        if !hits.is_empty() {
            return hits;
        }
        assert!(Instant::now() < deadline, "no hit for {args:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_ok(mut cmd: Command, stdin: Option<&Path>) -> String {
    let input = stdin.map_or(Stdio::null(), |p| Stdio::from(std::fs::File::open(p).unwrap()));
    let out = cmd.stdin(input).output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn file_transfers_are_searchable_hits_and_binary_streams_leave_no_screen_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let demo = Demo::start(dir.path(), Some(&home));
    let login = demo.login.clone();
    // sftp and scp split `user@host` at the first `@`; the demo's user names have one.
    let (user, host) = login.rsplit_once('@').unwrap();
    let user_opt = format!("User={user}");

    // SFTP: an upload and a download of a file with recognisable bytes.
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let payload: String = (0..40).map(|i| format!("payload line {i} of the uploaded file\n")).collect();
    std::fs::write(local.join("report-q3.txt"), &payload).unwrap();
    let batch = dir.path().join("batch");
    let remote = home.join("inbox");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(
        &batch,
        format!(
            "put {src} {dst}/report-q3.txt\nget {dst}/report-q3.txt {back}\nrm {dst}/report-q3.txt\n",
            src = local.join("report-q3.txt").display(),
            dst = remote.display(),
            back = local.join("back.txt").display()
        ),
    )
    .unwrap();
    let mut sftp = demo.client("sftp", "-P");
    sftp.args(["-o", &user_opt, host]);
    run_ok(sftp, Some(&batch));
    assert_eq!(std::fs::read_to_string(local.join("back.txt")).unwrap(), payload);

    let size = payload.len();
    let hits = wait_hit(&data, &["--kind", "file", "--", "wrote", "report-q3.txt"]);
    let wrote = &hits[0];
    let path = remote.join("report-q3.txt");
    assert_eq!(wrote["text"], format!("wrote {} ({}) via sftp", path.display(), human(size)));
    assert_eq!(wrote["user"], "demo");
    assert!(wrote["target"].is_string());
    let session = wrote["session"].as_str().unwrap().to_string();
    assert!(wrote["offset_us"].as_u64().unwrap() > 0, "the moment in the session");
    // The download and the removal, from the same session; found by path alone too.
    let by_path: Vec<String> = search(&data, &["--session", &session, "--", &path.display().to_string()])
        .iter()
        .map(|h| h["text"].as_str().unwrap().to_string())
        .collect();
    assert!(by_path.contains(&format!("read {} ({}) via sftp", path.display(), human(size))), "{by_path:?}");
    assert!(by_path.contains(&format!("removed {} via sftp", path.display())), "{by_path:?}");
    // No screen text from the SFTP protocol's bytes.
    let screen = search(&data, &["--session", &session, "--kind", "screen", "-s", ""]);
    assert!(screen.is_empty(), "screen text from an sftp session: {screen:?}");
    // The human output says who did what where.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["search", "--kind", "file", "--", "wrote", "report-q3.txt"])
        .output()
        .unwrap();
    let human_line = String::from_utf8_lossy(&out.stdout);
    assert!(
        human_line.contains(&session) && human_line.contains("demo@") && human_line.contains("via sftp"),
        "{human_line}"
    );

    // The events table holds the transfers with path and bytes.
    let python = std::env::var("GATEHOUSE_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/gatehouse/venv/bin/python", std::env::var("HOME").unwrap()));
    let read = "import sys, pyarrow.dataset as ds\nt = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table().to_pylist()\nfor r in t:\n    if r['kind'].startswith('file.'): print(r['kind'], r['path'], r['bytes'], r['user'], r['session_id'])";
    let out = Command::new(&python).args(["-c", read]).arg(data.join("store/tables/events")).output().unwrap();
    let rows = String::from_utf8_lossy(&out.stdout);
    assert!(
        rows.lines().any(|l| l.starts_with(&format!("file.write {} {size} demo", path.display()))),
        "events table: {rows} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Legacy scp (`scp -O`: an exec of `scp -t` speaking its own protocol): no screen text.
    let mut scp = demo.client("scp", "-P");
    scp.args(["-O", "-o", &user_opt])
        .arg(local.join("report-q3.txt"))
        .arg(format!("{host}:{}/legacy.txt", remote.display()));
    run_ok(scp, None);
    assert_eq!(std::fs::read_to_string(remote.join("legacy.txt")).unwrap(), payload);
    let exec = wait_hit(&data, &["--kind", "command", "--", "scp", "legacy.txt"]);
    let scp_session = exec[0]["session"].as_str().unwrap().to_string();
    let screen = search(&data, &["--session", &scp_session, "--kind", "screen", "-s", ""]);
    assert!(screen.is_empty(), "screen text from an scp session: {screen:?}");
    // Its file is a hit too, decoded from the scp protocol in the recording.
    let files: Vec<String> = search(&data, &["--session", &scp_session, "--kind", "file", "-s", ""])
        .iter()
        .map(|h| h["text"].as_str().unwrap().to_string())
        .collect();
    let legacy = remote.join("legacy.txt");
    // (The destination may be a directory: the stream does not say, so the name is given.)
    assert_eq!(files, [format!("wrote report-q3.txt to {} ({}) via scp", legacy.display(), human(size))]);

    // A command without a terminal: text output is searchable, binary output is not.
    let mut text = demo.client("ssh", "-p");
    text.arg(&login).arg("echo text-exec-$((6*7))");
    assert!(run_ok(text, None).contains("text-exec-42"));
    wait_hit(&data, &["--kind", "screen", "--", "text-exec-42"]);
    let mut bin = demo.client("ssh", "-p");
    bin.arg(&login).arg("printf '\\0\\0\\0\\0\\377bin-%s\\0\\0\\0\\0' $((6*7))marker; echo; echo after-bin-exec");
    run_ok(bin, None);
    let exec = wait_hit(&data, &["--kind", "command", "--", "after-bin-exec"]);
    let bin_session = exec[0]["session"].as_str().unwrap().to_string();
    let screen = search(&data, &["--session", &bin_session, "--kind", "screen", "-s", "bin-42marker"]);
    assert!(screen.is_empty(), "binary output indexed as screen text: {screen:?}");
}

/// The size as the index words it (see `gatehouse_indexer::index::human_bytes`).
fn human(n: usize) -> String {
    gatehouse_indexer::index::human_bytes(n as u64)
}
