//! asciicast decode/encode against golden files.

use std::io::BufReader;

use gatehouse_recorder::asciicast::{self, Encoder, Version};
use gatehouse_recorder::{ErrorKind, Frame, FrameData};

use crate::data;

fn decode_file(name: &str) -> (asciicast::Header, Vec<Frame>) {
    let file = std::fs::File::open(data(name)).unwrap();
    let dec = asciicast::open(BufReader::new(file)).unwrap();
    let header = dec.header().clone();
    let frames = dec.collect::<Result<Vec<_>, _>>().unwrap();
    (header, frames)
}

fn encode(version: Version, header: &asciicast::Header, frames: &[Frame]) -> String {
    let mut enc = Encoder::new(version);
    let mut out = enc.header(header);
    for f in frames {
        out.extend(enc.frame(f));
    }
    out.extend(enc.finish(frames.last().map_or(0, |f| f.t)));
    out
}

#[test]
fn v2_as_asciinema_writes_it() {
    let (h, frames) = decode_file("v2_asciinema.cast");
    assert_eq!((h.version, h.cols, h.rows), (2, 100, 30));
    assert_eq!(h.title.as_deref(), Some("Demo"));
    assert_eq!(h.command.as_deref(), Some("/bin/bash"));
    assert_eq!(h.term.as_deref(), Some("xterm-256color"));
    assert_eq!(h.timestamp.unwrap().unix_timestamp(), 1504467315);
    assert!(!h.env.contains_key("LANG"), "null env values are dropped");
    let meta = h.meta();
    assert_eq!((meta.cols, meta.rows), (Some(100), Some(30)));
    assert_eq!(
        frames,
        vec![
            Frame::output(248_848, "\x1b[1;31mHello \x1b[32mWorld!\x1b[0m\r\n"),
            Frame::input(1_001_376, "ls\r"),
            Frame::output(1_001_376, "日本語 ファイル.txt\r\n"),
            Frame { t: 1_500_000, data: FrameData::Marker("chapter 1".into()) },
            Frame::resize(2_000_000, 120, 40),
            Frame::output(2_143_733, "Now... "),
            Frame::output(6_541_828, "Bye!"),
        ]
    );
}

#[test]
fn v3_intervals_sum_without_drift() {
    let (h, frames) = decode_file("v3_asciinema.cast");
    assert_eq!((h.version, h.cols, h.rows), (3, 80, 24));
    assert_eq!(h.term.as_deref(), Some("xterm-256color"));
    assert_eq!(h.title.as_deref(), Some("v3 demo"));
    let times: Vec<u64> = frames.iter().map(|f| f.t).collect();
    // Four 0.4 µs intervals add up to 1.6 µs; rounding each one would have lost them all.
    assert_eq!(
        times,
        [100_000, 200_000, 200_000, 200_001, 200_001, 200_002, 700_002, 950_002, 2_000_002, 2_000_003]
    );
    assert_eq!(frames[6].data, FrameData::Resize { cols: 90, rows: 30 });
    assert_eq!(frames[7].data, FrameData::Marker(String::new()));
    assert_eq!(frames[8].data, FrameData::Output("été 😀\r\n".into()));
    assert_eq!(frames[9], Frame::event(2_000_003, "exit", serde_json::json!({"status": 3})));
}

#[test]
fn v2_encoding_matches_golden_file() {
    let (h, frames) = decode_file("v2_asciinema.cast");
    let golden = std::fs::read_to_string(data("v2_encoded.cast")).unwrap();
    assert_eq!(encode(Version::V2, &h, &frames), golden);
    // And the golden file decodes back to the same frames.
    let (h2, again) = decode_file("v2_encoded.cast");
    assert_eq!(again, frames);
    assert_eq!((h2.cols, h2.rows, h2.title, h2.term), (h.cols, h.rows, h.title, h.term));
}

#[test]
fn v3_encoding_matches_golden_file_and_round_trips() {
    let (h, frames) = decode_file("v3_asciinema.cast");
    let golden = std::fs::read_to_string(data("v3_encoded.cast")).unwrap();
    assert_eq!(encode(Version::V3, &h, &frames), golden);
    let (_, again) = decode_file("v3_encoded.cast");
    assert_eq!(again, frames);
}

#[test]
fn v2_export_drops_what_v2_cannot_say_and_rejoins_split_utf8() {
    let bytes = "€uro".as_bytes();
    let frames = [
        Frame::output(1, bytes[..1].to_vec()),
        Frame::output(2, bytes[1..].to_vec()),
        Frame::event(3, "exit", serde_json::json!({"status": 0})),
        Frame::output(4, b"\xe2".to_vec()),
    ];
    let out = encode(Version::V2, &asciicast::Header::new(80, 24), &frames);
    assert_eq!(
        out,
        "{\"version\":2,\"width\":80,\"height\":24}\n[0.000002, \"o\", \"€uro\"]\n[0.000004, \"o\", \"\u{fffd}\"]\n"
    );
}

#[test]
fn bad_casts_name_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "empty"),
        ("not json\n", 1, "not JSON"),
        ("{\"version\": 1, \"width\": 80, \"height\": 24}\n", 1, "unsupported asciicast version 1"),
        ("{\"width\": 80}\n", 1, "version"),
        ("{\"version\": 2, \"height\": 24}\n", 1, "width"),
        ("{\"version\": 3, \"term\": {\"cols\": 80}}\n", 1, "term.rows"),
        ("{\"version\": 2, \"width\": 80, \"height\": 24}\n[1.0, \"o\", \"a\"]\n[0.5, \"o\", \"b\"]\n", 3, "backwards"),
        ("{\"version\": 2, \"width\": 80, \"height\": 24}\n[1.0, \"o\", \"a\"]\n\n{oops\n", 4, "not a JSON"),
        ("{\"version\": 2, \"width\": 80, \"height\": 24}\n[-1, \"o\", \"a\"]\n", 2, "non-negative"),
        ("{\"version\": 3, \"term\": {\"cols\": 8, \"rows\": 2}}\n[-0.5, \"o\", \"a\"]\n", 2, "non-negative"),
        ("{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"r\", \"80by24\"]\n", 2, "COLSxROWS"),
        ("{\"version\": 2, \"width\": 80, \"height\": 24}\n[1, \"o\", 42]\n", 2, "must be a string"),
    ];
    for (text, line, needle) in cases {
        let err = match asciicast::open(text.as_bytes()) {
            Err(e) => e,
            Ok(dec) => dec.filter_map(Result::err).next().unwrap_or_else(|| panic!("no error for {text:?}")),
        };
        assert_eq!(err.kind(), ErrorKind::Invalid, "{text:?}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("asciicast line {line}:")), "{text:?} gave {msg}");
        assert!(msg.contains(needle), "{text:?} gave {msg}, expected {needle:?}");
    }
}

#[test]
fn decoding_is_lazy() {
    // A reader that fails after the first event proves frames come out before the rest
    // of the file is read.
    struct Then<R>(R, bool);
    impl<R: std::io::Read> std::io::Read for Then<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 if !self.1 => {
                    self.1 = true;
                    Err(std::io::Error::other("rest of file unavailable"))
                }
                n => Ok(n),
            }
        }
    }
    let head = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"a\"]\n";
    let mut dec = asciicast::open(BufReader::new(Then(head.as_bytes(), false))).unwrap();
    assert_eq!(dec.next().unwrap().unwrap(), Frame::output(500_000, "a"));
    let err = dec.next().unwrap().unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}
