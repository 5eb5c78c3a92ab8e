//! `gatehouse record|import|export|sessions|play|verify`, run for real: a command in a
//! PTY, asciicast round trips validated by the real `asciinema` CLI, SIGKILL mid-session,
//! damaged segments on disk, and an S3 store (moto) named by the AWS variables.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_fixtures::s3::{self, Moto};
use gatehouse_recorder::{Frame, FrameData, asciicast};

use crate::support::{BIN, asciinema_cat, gatehouse, ok, run, walk};

fn gh_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = gatehouse(dir, args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The session ids in `gatehouse sessions --json`, with their states.
fn sessions(dir: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["sessions", "--json"];
    args.extend_from_slice(extra);
    text(&ok(dir, &args))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v["state"].as_str().unwrap().to_string())
        })
        .collect()
}

fn decode(cast: &[u8]) -> (asciicast::Header, Vec<Frame>) {
    let dec = asciicast::open(cast).expect("export is a valid asciicast");
    let header = dec.header().clone();
    (header, dec.collect::<Result<Vec<_>, _>>().unwrap())
}

fn bytes_of(frames: &[Frame], output: bool) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| match (&f.data, output) {
            (FrameData::Output(b), true) | (FrameData::Input(b), false) => b.to_vec(),
            _ => Vec::new(),
        })
        .collect()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recorder/tests/data").join(name)
}

#[test]
fn record_then_export_gives_back_what_went_in() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"printf 'héllo \033[1;32m世界\033[0m\n'; read line; echo "got [$line]"; sleep 0.2; printf 'bye'; exit 7"#;
    let out = run(dir.path(), &["record", "--title", "demo", "--", "sh", "-c", script], b"typed text\n");
    assert_eq!(out.status.code(), Some(7), "record exits with the command's status: {}", text(&out.stderr));
    let screen = out.stdout;
    assert!(text(&screen).contains("got [typed text]"), "{}", text(&screen));

    let listed = sessions(dir.path(), &[]);
    assert_eq!(listed.len(), 1);
    let (id, state) = &listed[0];
    assert_eq!(state, "complete");
    assert!(text(&out.stderr).contains(id.as_str()), "the id is printed on stderr");

    let cast_path = dir.path().join("s.cast");
    ok(dir.path(), &["export", &id[..13], "--format", "cast", "-o", cast_path.to_str().unwrap()]);
    let cast = std::fs::read(&cast_path).unwrap();
    let (header, frames) = decode(&cast);
    assert_eq!((header.cols, header.rows), (80, 24));
    assert_eq!(header.title.as_deref(), Some("demo"));
    assert_eq!(bytes_of(&frames, true), screen, "the recording's output is exactly what the terminal showed");
    assert_eq!(bytes_of(&frames, false), b"typed text\n", "input recorded");
    assert_eq!(asciinema_cat(&cast_path), screen, "asciinema reads the export");

    // stdout export is the same file; jsonl carries the same frames.
    assert_eq!(ok(dir.path(), &["export", id]), cast);
    let jsonl = text(&ok(dir.path(), &["export", id, "--format", "jsonl"]));
    let outputs: String = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "output")
        .map(|v| v["data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outputs.as_bytes(), screen);
    let manifest: serde_json::Value = serde_json::from_slice(&ok(dir.path(), &["sessions", "--json"])).unwrap();
    assert_eq!(manifest["exit_status"], 7);
    assert_eq!(manifest["meta"]["protocol"], "local");
    // The recorded command is the session's first command, with its exit status.
    let commands = text(&ok(dir.path(), &["commands", id]));
    let first: serde_json::Value = serde_json::from_str(commands.lines().next().expect("a command")).unwrap();
    assert_eq!(first["command"], format!("sh -c {script}"));
    assert_eq!(first["exit"], 7);
}

#[test]
fn import_export_round_trip_and_asciinema_plays_it() {
    let dir = tempfile::tempdir().unwrap();
    for (file, user) in [("v2_asciinema.cast", "alice"), ("v3_asciinema.cast", "bob")] {
        let out = run(dir.path(), &["import", "--user", user, data(file).to_str().unwrap()], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id = text(&out.stdout).trim().to_string();
        let exported = ok(dir.path(), &["export", &id]);
        let (h_in, frames_in) = decode(&std::fs::read(data(file)).unwrap());
        let (h_out, frames_out) = decode(&exported);
        assert_eq!((h_out.cols, h_out.rows, &h_out.title, h_out.timestamp), (h_in.cols, h_in.rows, &h_in.title, h_in.timestamp));
        // v2 has no exit event; everything else comes back exactly, times included.
        let expressible: Vec<Frame> = frames_in.into_iter().filter(|f| !matches!(f.data, FrameData::Event(_))).collect();
        assert_eq!(frames_out, expressible, "{file}");
        let path = dir.path().join(format!("{user}.cast"));
        std::fs::write(&path, &exported).unwrap();
        assert_eq!(asciinema_cat(&path), bytes_of(&expressible, true), "asciinema reads {file}'s export");
    }
    let alice = sessions(dir.path(), &["--user", "alice"]);
    assert_eq!(alice.len(), 1);
    assert_eq!(sessions(dir.path(), &["--since", "2017-09-04", "--until", "2023-01-01"]).len(), 0);
    assert_eq!(sessions(dir.path(), &["--until", "2017-09-05"]).len(), 1, "the v2 cast started 2017-09-03");
    assert_eq!(sessions(dir.path(), &["--since", "2023-11-14"]).len(), 1, "the v3 cast started 2023-11-14");
    let played = ok(dir.path(), &["play", &alice[0].0, "--speed", "50"]);
    let (_, v2) = decode(&std::fs::read(data("v2_asciinema.cast")).unwrap());
    assert_eq!(played, bytes_of(&v2, true));
    // The v3 exit status survives in the manifest.
    let bob: serde_json::Value = serde_json::from_slice(&ok(dir.path(), &["sessions", "--json", "--user", "bob"])).unwrap();
    assert_eq!(bob["exit_status"], 3);
}

#[test]
fn a_report_whose_reader_left_ends_quietly() {
    // `gatehouse sessions | head -1` and the like: the reader is gone before the report
    // is written. The command ends as `grep` would (SIGPIPE), with nothing on stderr.
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["import", data("v2_asciinema.cast").to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    for args in [&["sessions"][..], &["sessions", "--json"], &["export", &id], &["play", &id, "--speed", "1000"], &["verify", "--all"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = gatehouse(dir.path(), args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.signal(), Some(nix::libc::SIGPIPE), "gatehouse {args:?}: {:?}", out.status);
        assert_eq!(text(&out.stderr), "", "gatehouse {args:?}");
    }
}

#[test]
fn a_bad_cast_is_refused_with_its_line_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cast");
    std::fs::write(&bad, "{\"version\": 2, \"width\": 80, \"height\": 24}\n[1.0, \"o\", \"a\"]\n[0.5, \"o\", \"b\"]\n").unwrap();
    let out = run(dir.path(), &["import", bad.to_str().unwrap()], b"");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.cast") && err.contains("line 3") && err.contains("backwards"), "{err}");
    assert!(sessions(dir.path(), &[]).is_empty());
    let out = run(dir.path(), &["export", "0123"], b"");
    assert!(!out.status.success() && text(&out.stderr).contains("not found"), "{}", text(&out.stderr));
}

#[test]
fn sigkill_mid_session_keeps_everything_up_to_a_second_before() {
    let dir = tempfile::tempdir().unwrap();
    let script = "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line $i; sleep 0.01; done";
    let mut child = gh_cmd(dir.path(), &["record", "--", "sh", "-c", script]).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 150 {
        seen.push(rx.recv_timeout(Duration::from_secs(20)).expect("record prints the command's output"));
    }
    let killed_at = Instant::now();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = killed_at - Duration::from_secs(1);
    let must_have: Vec<&str> = seen.iter().filter(|(t, _)| *t <= before).map(|(_, l)| l.trim_end()).collect();
    assert!(must_have.len() >= 20, "{} lines more than a second before the kill", must_have.len());

    // The next gatehouse run recovers the spool; the session is interrupted.
    let listed = sessions(dir.path(), &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, "interrupted");
    // An auditor can list just those.
    assert_eq!(sessions(dir.path(), &["--state", "interrupted"]), listed);
    assert!(sessions(dir.path(), &["--state", "complete"]).is_empty());
    let bad = run(dir.path(), &["sessions", "--state", "broken"], b"");
    assert!(!bad.status.success() && text(&bad.stderr).contains("not a recording state"), "{}", text(&bad.stderr));
    let (_, frames) = decode(&ok(dir.path(), &["export", &listed[0].0]));
    let recorded = text(&bytes_of(&frames, true));
    let recorded: Vec<&str> = recorded.lines().map(str::trim_end).collect();
    assert_eq!(&recorded[..must_have.len()], must_have.as_slice());
    let verify = text(&ok(dir.path(), &["verify", "--all"]));
    assert!(verify.contains(" ok "), "{verify}");
}

/// A cast of `n` output events of ~1 KiB each (different, mildly compressible).
fn big_cast(n: usize) -> String {
    let mut cast = String::from("{\"version\": 2, \"width\": 120, \"height\": 40}\n");
    for i in 0..n {
        let line: String = (0..1000).map(|j| char::from(b'a' + ((i * 31 + j * j) % 26) as u8)).collect();
        cast.push_str(&format!("[{}.{:06}, \"o\", \"{i} {line}\\r\\n\"]\n", i / 1000, i % 1000 * 1000));
    }
    cast
}

#[test]
fn damaged_segments_are_named_and_the_rest_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("big.cast");
    let n = 17_500;
    std::fs::write(&cast, big_cast(n)).unwrap();
    let id = text(&ok(dir.path(), &["import", cast.to_str().unwrap()])).trim().to_string();
    let seg_dir = walk(&dir.path().join("store")).into_iter().find(|p| p.ends_with("00000000.seg")).unwrap();
    let seg_dir = seg_dir.parent().unwrap().to_path_buf();
    let seg = |n: u64| seg_dir.join(format!("{n:08}.seg"));
    assert!(seg(4).exists(), "17.5 MiB of output makes at least 5 segments of 4 MiB");
    let mut flipped = std::fs::read(seg(1)).unwrap();
    flipped[500] ^= 0x40;
    std::fs::write(seg(1), flipped).unwrap();
    let whole = std::fs::read(seg(2)).unwrap();
    std::fs::write(seg(2), &whole[..whole.len() / 2]).unwrap();
    std::fs::remove_file(seg(3)).unwrap();

    let out = run(dir.path(), &["verify", &id], b"");
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    for n in 1..=3 {
        assert!(report.contains(&format!("{n:08}.seg")), "verify names segment {n}: {report}");
    }
    assert!(report.contains("checksum") && report.contains("truncated") && report.contains("not found"), "{report}");
    let all = run(dir.path(), &["verify", "--all"], b"");
    assert_eq!(all.status.code(), Some(1));

    let out = run(dir.path(), &["export", &id, "--format", "jsonl"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for n in 1..=3 {
        assert!(err.contains(&format!("{n:08}.seg")), "export names segment {n}: {err}");
    }
    let exported = text(&out.stdout);
    let numbers: Vec<usize> = exported
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["data"].as_str()?.split(' ').next()?.parse().ok())
        .collect();
    assert!(numbers.contains(&0) && numbers.contains(&(n - 1)), "the segments before and after the damage read");
    assert!(numbers.len() > n / 4 && numbers.len() < n, "{} frames survive", numbers.len());
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));

    // A clip from 17 s: the screen then cannot be rebuilt past the damage (there are no
    // keyframes yet), which is said, naming the segment; the clip still holds what follows.
    let out = run(dir.path(), &["export", &id, "--from", "17"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("screen at 0:00:17.000 cannot be rebuilt") && err.contains("00000001.seg"), "{err}");
    let (_, clip) = decode(&out.stdout);
    let first: usize = String::from_utf8_lossy(&bytes_of(&clip[..1], true)).split(' ').next().unwrap().parse().unwrap();
    // Nothing drew the frame at exactly 17 s, so the clip starts with it.
    assert_eq!((first, clip.len()), (17_000, n - 17_000), "the frames from 17 s on");
    assert_eq!((clip[0].t, clip[1].t), (0, 1000), "times count from the start of the clip");
}

#[test]
fn an_s3_store_from_the_aws_environment() {
    let moto = Moto::start().expect("this test needs moto");
    moto.create_bucket("casts").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let aws = |cmd: &mut Command| {
        cmd.env("GATEHOUSE_STORE", "s3://casts/gh")
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY)
            .env("AWS_REGION", "us-east-1");
    };
    let mut rec = gh_cmd(dir.path(), &["record", "--", "printf", "stored in s3"]);
    aws(&mut rec);
    let out = rec.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut list = gh_cmd(dir.path(), &["sessions", "--json"]);
    aws(&mut list);
    let listed = text(&list.output().unwrap().stdout);
    let id = serde_json::from_str::<serde_json::Value>(listed.lines().next().expect("one session")).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut export = gh_cmd(dir.path(), &["export", &id]);
    aws(&mut export);
    let (_, frames) = decode(&export.output().unwrap().stdout);
    assert_eq!(bytes_of(&frames, true), b"stored in s3");
    // And it really is in the bucket, not on local disk.
    assert!(!dir.path().join("store").exists());
}

#[test]
fn every_recording_command_says_what_it_does() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, phrase) in [
        ("record", "pseudo-terminal"),
        ("import", "asciicast v2 or v3"),
        ("export", "asciicast v2"),
        ("sessions", "List stored sessions"),
        ("play", "Replay a stored session"),
        ("verify", "hash chain"),
    ] {
        let help = text(&ok(dir.path(), &[cmd, "--help"]));
        assert!(help.contains(phrase), "{cmd} --help lacks {phrase:?}:\n{help}");
        assert!(help.contains("--store"), "{cmd} --help lacks --store");
    }
}

#[test]
fn record_in_a_terminal_passes_its_size_and_resizes_through() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let (pty, pts) = pty_process::blocking::open().unwrap();
    pty.resize(pty_process::Size::new(24, 80)).unwrap();
    let script = "stty size; sleep 1.5; stty size";
    let mut child = pty_process::blocking::Command::new(BIN)
        .args(["record", "--", "sh", "-c", script])
        .env("GATEHOUSE_DATA_DIR", dir.path())
        .env_remove("GATEHOUSE_STORE")
        .spawn(pts)
        .unwrap();
    let pty = std::sync::Arc::new(pty);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = pty.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = (&*reader).read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&screen).contains("24 80") {
        assert!(Instant::now() < deadline, "no size printed: {}", text(&screen));
        screen.extend(rx.recv_timeout(Duration::from_secs(20)).unwrap());
    }
    // The user's terminal changes size: its foreground process (gatehouse) gets SIGWINCH.
    pty.resize(pty_process::Size::new(30, 100)).unwrap();
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
        screen.extend(chunk);
    }
    assert!(status.success(), "{}", text(&screen));
    assert!(text(&screen).contains("30 100"), "the recorded command saw the resize: {}", text(&screen));

    let listed = sessions(dir.path(), &[]);
    let frames: Vec<serde_json::Value> = text(&ok(dir.path(), &["export", &listed[0].0, "--format", "jsonl"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        frames.iter().any(|f| f["type"] == "resize" && f["cols"] == 100 && f["rows"] == 30),
        "a resize frame is recorded"
    );
    let (header, _) = decode(&ok(dir.path(), &["export", &listed[0].0]));
    assert_eq!((header.cols, header.rows), (80, 24), "the session starts at the terminal's size");
}
