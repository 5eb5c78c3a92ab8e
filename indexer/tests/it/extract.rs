//! Command extraction over real recorded bash/zsh sessions (`fixtures/corpus`): the shared
//! development set, our own set and randomised sessions, scored the way the corpus scorer (`score.py`) scores
//! them — whitespace-normalised commands, longest common subsequence against the shell's
//! own history, F1 — plus: no secret typed at a no-echo prompt appears in any record.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use gatehouse_indexer::{CommandKind, CommandRecord, Extractor};
use gatehouse_recorder::{Frame, FrameData, asciicast};

/// The accuracy the project promises (on sessions nobody has seen, too).
const MIN_F1: f64 = 0.99;

struct Session {
    name: String,
    frames: Vec<Frame>,
    cols: u16,
    rows: u16,
    truth: Vec<String>,
    secrets: Vec<String>,
}

fn corpus(dir: &str) -> Vec<Session> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/corpus").join(dir);
    let mut casts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cast"))
        .collect();
    casts.sort();
    assert!(casts.len() >= 10, "{}: corpus missing", dir.display());
    casts
        .into_iter()
        .map(|path| {
            let mut dec = asciicast::open(BufReader::new(File::open(&path).unwrap())).unwrap();
            let (cols, rows) = (dec.header().cols, dec.header().rows);
            let frames = dec.by_ref().map(|f| f.unwrap()).collect();
            let truth_path = path.with_extension("truth.json");
            let truth: serde_json::Value = serde_json::from_reader(File::open(&truth_path).unwrap()).unwrap();
            let strings = |key: &str| -> Vec<String> {
                truth[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
            };
            Session {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                frames,
                cols,
                rows,
                truth: strings("commands"),
                secrets: strings("secrets"),
            }
        })
        .collect()
}

fn extract(s: &Session, frames: &[Frame]) -> Vec<CommandRecord> {
    let mut x = Extractor::new(s.cols, s.rows);
    let mut got = Vec::new();
    for f in frames {
        got.extend(x.push(f));
    }
    got.extend(x.finish());
    got
}

/// `score.py`'s normalisation: CRLF → LF, backslash-newline removed, runs of blanks
/// collapsed, each line trimmed.
fn norm(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace("\\\n", "");
    let mut out = String::new();
    let mut blank = false;
    for c in s.chars() {
        if c == ' ' || c == '\t' {
            if !blank {
                out.push(' ');
            }
            blank = true;
        } else {
            out.push(c);
            blank = false;
        }
    }
    out.split('\n').map(str::trim).collect::<Vec<_>>().join("\n").trim().to_string()
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut dp = vec![vec![0; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            dp[i][j] = if a[i] == b[j] { dp[i + 1][j + 1] + 1 } else { dp[i + 1][j].max(dp[i][j + 1]) };
        }
    }
    dp[0][0]
}

/// Scores a corpus; returns (F1, leaked secrets, per-session differences).
fn score(sessions: &[Session]) -> (f64, usize, Vec<String>) {
    let (mut tp, mut n_got, mut n_truth, mut leaks) = (0, 0, 0, 0);
    let mut diffs = Vec::new();
    for s in sessions {
        let records = extract(s, &s.frames);
        let truth: Vec<String> = s.truth.iter().map(|c| norm(c)).filter(|c| !c.is_empty()).collect();
        let got: Vec<String> = records
            .iter()
            .filter(|r| r.kind == CommandKind::Shell)
            .map(|r| norm(&r.command))
            .filter(|c| !c.is_empty())
            .collect();
        let raw: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        for secret in &s.secrets {
            if raw.iter().any(|r| r.contains(secret.as_str())) {
                leaks += 1;
                diffs.push(format!("{}: secret {secret:?} leaked", s.name));
            }
        }
        let m = lcs(&truth, &got);
        if m != truth.len() || m != got.len() {
            diffs.push(format!("{}: truth {truth:?}\n   got {got:?}", s.name));
        }
        tp += m;
        n_got += got.len();
        n_truth += truth.len();
    }
    let p = if n_got > 0 { tp as f64 / n_got as f64 } else { 0.0 };
    let r = if n_truth > 0 { tp as f64 / n_truth as f64 } else { 0.0 };
    let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    (f1, leaks, diffs)
}

fn assert_corpus(dir: &str) {
    let sessions = corpus(dir);
    let (f1, leaks, diffs) = score(&sessions);
    eprintln!("{dir}: {} sessions, f1 {f1:.3}, secrets leaked {leaks}", sessions.len());
    assert_eq!(leaks, 0, "secrets leaked:\n{}", diffs.join("\n"));
    assert!(f1 >= MIN_F1, "{dir}: f1 {f1:.3} < {MIN_F1}:\n{}", diffs.join("\n"));
}

#[test]
fn development_set_scores_at_least_099_without_leaks() {
    assert_corpus("dev");
}

#[test]
fn own_set_scores_at_least_099_without_leaks() {
    assert_corpus("casts");
}

#[test]
fn randomised_sessions_score_at_least_099_without_leaks() {
    assert_corpus("fuzz");
}

/// Output reaches the extractor in arbitrary chunks (SSH channel data): splitting every
/// output frame into tiny pieces — through escape sequences, UTF-8 characters and the
/// line editor's mode switches — must not change a single record.
#[test]
fn output_chunking_does_not_change_records() {
    for s in corpus("dev").iter().chain(corpus("casts").iter()).chain(corpus("fuzz").iter()) {
        let mut split = Vec::new();
        for (i, f) in s.frames.iter().enumerate() {
            match &f.data {
                FrameData::Output(bytes) => {
                    let size = 1 + i % 5;
                    for piece in bytes.chunks(size) {
                        split.push(Frame::output(f.t, piece.to_vec()));
                    }
                }
                _ => split.push(f.clone()),
            }
        }
        let key = |r: &CommandRecord| (r.command.clone(), r.kind, r.t);
        let whole: Vec<_> = extract(s, &s.frames).iter().map(key).collect();
        let pieces: Vec<_> = extract(s, &split).iter().map(key).collect();
        assert_eq!(whole, pieces, "{}", s.name);
    }
}

#[test]
fn records_carry_time_directory_and_output() {
    let sessions = corpus("dev");
    let s = sessions.iter().find(|s| s.name == "d01_basics").expect("d01_basics");
    let records = extract(s, &s.frames);
    let r = records.iter().find(|r| r.command == "echo $((6*7))").expect("the echo command");
    assert_eq!(r.kind, CommandKind::Shell);
    assert_eq!(r.cwd.as_deref(), Some("~"));
    assert_eq!(r.output_excerpt.as_deref(), Some("42"));
    let end = r.t_end.expect("the prompt came back");
    assert!(r.t < end, "{} < {end}", r.t);
    let times: Vec<_> = records.iter().map(|r| r.t).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "records in session order: {times:?}");
}
