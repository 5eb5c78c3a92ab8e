//! `gatehouse play|export --from/--until`, run for real: the replay (or the exported clip)
//! starts with the screen as it was at that moment (rebuilt from the keyframes `reindex`
//! stores, or from the start when there are none) and goes on from there. What it prints
//! is fed to a `vt100` terminal of the session's size and compared with that terminal fed
//! the cast itself; the clip is read by the real `asciinema` CLI.

use std::num::NonZeroU16;

use crate::support::{asciinema_cat, ok, run, walk};

const COLS: NonZeroU16 = NonZeroU16::new(40).unwrap();
const ROWS: NonZeroU16 = NonZeroU16::new(10).unwrap();

/// A cast: 2,000 numbered lines over the first second (about 600 KiB, so `reindex` stores
/// keyframes inside it), a scroll region, a clear at 2 s, then a line a second.
fn cast() -> (String, Vec<(f64, String)>) {
    let mut events = Vec::new();
    for i in 0..2000 {
        let colour = 31 + i % 7;
        events.push((i as f64 * 0.0005, format!("\x1b[{colour}mline {i:04}\x1b[0m {}\r\n", "x".repeat(280))));
    }
    events.push((1.5, "\x1b[3;8r\x1b[8;1Hin the region\r\n".to_string()));
    events.push((2.0, "\x1b[r\x1b[H\x1b[2Jbravo\r\n".to_string()));
    events.push((3.0, "charlie\r\n".to_string()));
    events.push((4.0, "delta\r\n".to_string()));
    let mut text = format!("{{\"version\": 2, \"width\": {COLS}, \"height\": {ROWS}}}\n");
    for (t, out) in &events {
        text.push_str(&serde_json::to_string(&serde_json::json!([t, "o", out])).unwrap());
        text.push('\n');
    }
    (text, events)
}

/// The screen of a terminal fed `bytes`, row by row.
fn screen(bytes: &[u8]) -> String {
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    parser.process(bytes);
    parser.screen().contents()
}

/// The cast's output up to `t` seconds (inclusive).
fn output_until(events: &[(f64, String)], t: f64) -> Vec<u8> {
    events.iter().filter(|(at, _)| *at <= t).flat_map(|(_, o)| o.bytes()).collect()
}

#[test]
fn play_from_a_moment_draws_the_screen_then_and_goes_on_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let (text, events) = cast();
    let path = dir.path().join("session.cast");
    std::fs::write(&path, text).unwrap();
    let id = String::from_utf8(ok(dir.path(), &["import", path.to_str().unwrap()])).unwrap().trim().to_string();

    // Without keyframes (not indexed yet), then with them: the same screens.
    for indexed in [false, true] {
        if indexed {
            ok(dir.path(), &["reindex"]);
            let kf = walk(dir.path()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "kf")).count();
            assert_eq!(kf, 1, "reindex stored the session's keyframes");
        }
        // In the middle of the numbered lines: the screen as it was at 0.6 s, then the
        // rest of the session; at the end the terminal shows what the whole cast shows.
        let played = ok(dir.path(), &["play", &id, "--from", "0.6", "--speed", "1000"]);
        let first = 0.6 / 0.0005;
        let shown = format!("line {:04}", first as usize);
        assert!(!String::from_utf8_lossy(&played).contains("line 0000"), "nothing long scrolled off is replayed");
        // The line printed at exactly 0.6 s is drawn with the screen, and not played again.
        assert_eq!(String::from_utf8_lossy(&played).matches(&shown).count(), 1, "the last line at 0.6 s, once");
        assert_eq!(screen(&played), screen(&output_until(&events, 10.0)), "indexed: {indexed}");
        // Up to a moment: the screen then, as a terminal fed the cast up to it shows it.
        for (from, until) in [("0.6", 1.0), ("+0:00:01.200", 1.7), ("0:02.5", 3.5)] {
            let played = ok(dir.path(), &["play", &id, "--from", from, "--until", &until.to_string(), "--speed", "1000"]);
            assert_eq!(screen(&played), screen(&output_until(&events, until)), "from {from} until {until}, indexed: {indexed}");
        }
        // After the clear: only what came after it, and nothing past --until.
        let played = String::from_utf8(ok(dir.path(), &["play", &id, "--from", "2.5", "--until", "3.5", "--speed", "1000"])).unwrap();
        assert!(!played.contains("line ") && !played.contains("delta"), "{played:?}");
        assert_eq!(screen(played.as_bytes()).lines().take(2).collect::<Vec<_>>(), ["bravo", "charlie"]);

        // The same stretch exported: a clip whose times start at 0, which asciinema plays
        // to the same screen; as JSON lines, the frames of the stretch at their times.
        for (from, until) in [("1.2", 1.7), ("2.5", 3.5)] {
            let clip = dir.path().join("clip.cast");
            let args = ["export", &id, "--from", from, "--until", &until.to_string(), "-o", clip.to_str().unwrap()];
            ok(dir.path(), &args);
            let text = std::fs::read_to_string(&clip).unwrap();
            let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!((header["width"].as_u64(), header["height"].as_u64()), (Some(40), Some(10)));
            let times: Vec<f64> =
                text.lines().skip(1).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()[0].as_f64().unwrap()).collect();
            let span = until - from.parse::<f64>().unwrap();
            assert!(times[0] == 0.0 && times.iter().all(|&t| t <= span + 1e-6), "{times:?}");
            assert_eq!(screen(&asciinema_cat(&clip)), screen(&output_until(&events, until)), "clip {from}..{until}");
        }
        // From exactly the clear at 2 s: it is in the clip's first screen, not again after it.
        let clip = String::from_utf8(ok(dir.path(), &["export", &id, "--from", "2", "--until", "3"])).unwrap();
        assert_eq!(clip.matches("bravo").count(), 1, "{clip}");
        assert_eq!(clip.lines().count(), 3, "header, the screen at 2 s, charlie at 1 s: {clip}");
        let jsonl = String::from_utf8(ok(dir.path(), &["export", &id, "--format", "jsonl", "--from", "2", "--until", "3"])).unwrap();
        let times: Vec<u64> =
            jsonl.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["t"].as_u64().unwrap()).collect();
        assert_eq!(times, [2_000_000, 3_000_000], "the frames at 2 s and 3 s");
    }

    // Offsets that name no stretch of the session are refused, saying why.
    for (args, says) in [
        (&["--from", "5"][..], "past the end of session"),
        (&["--from", "3", "--until", "2"], "is before --from"),
        (&["--from", "soon"], "not an offset"),
    ] {
        let mut all = vec!["play", &id[..]];
        all.extend_from_slice(args);
        let out = run(dir.path(), &all, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing played");
    }
    let err = String::from_utf8_lossy(&run(dir.path(), &["play", &id, "--from", "5"], b"").stderr).into_owned();
    assert!(err.contains("it lasts 0:00:04.000"), "{err}");
    // A refused export leaves the file it was to write as it was.
    let kept = dir.path().join("kept.cast");
    std::fs::write(&kept, "an earlier clip").unwrap();
    let out = run(dir.path(), &["export", &id, "--from", "4", "--until", "3", "-o", kept.to_str().unwrap()], b"");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is before --from"));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "an earlier clip");
}
