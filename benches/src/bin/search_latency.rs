//! Search latency over 10 million indexed commands: p50/p99 of term, phrase, prefix and
//! substring queries through `gatehouse_query::Searcher::search` (what `gatehouse search`
//! runs: newest 20 hits, stored fields loaded), against the anchor of the same substring
//! queries answered by a linear scan (`memchr::memmem`) over the same commands held in
//! memory, in the same run.
//!
//! The 10M commands (`benches::commands`, seed 7; 50,000 sessions of 200 commands over 500
//! targets and 50 users) are indexed once into a cache directory
//! (`$GATEHOUSE_CACHE/bench/search-10m-v1`, default `~/.cache/gatehouse/...`) and reused:
//! building takes a while on 2 cores. Queries come from another seed of the same
//! generator: 300 per kind, each run once to warm the page cache, then timed.
//! Usage: `search_latency [commands]` (default 10000000; a smaller count uses its own cache).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gatehouse_benches::commands::CommandGen;
use gatehouse_indexer::index::{SearchIndex, SessionContext};
use gatehouse_indexer::{Batch, CommandKind, CommandRecord, SessionCommand};
use gatehouse_query::{SearchRequest, Searcher};
use uuid::Uuid;

const PER_SESSION: u64 = 200;
const QUERIES: usize = 300;
const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];

fn cache_dir(n: u64) -> PathBuf {
    let base = std::env::var_os("GATEHOUSE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/gatehouse"));
    base.join(format!("bench/search-{}-v1", n))
}

fn session_ctx(s: u64) -> SessionContext {
    let start = time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds((s * 631) as i64);
    SessionContext {
        session: Uuid::from_u64_pair(0x6761_7465_686f_7573, s),
        started_at: start,
        user: Some(format!("{}{}", USERS[(s % 10) as usize], s % 5)),
        account: Some(["root", "deploy", "postgres"][(s % 3) as usize].to_string()),
        target: Some(format!("srv-{:03}", s % 500)),
        source_addr: Some(format!("192.0.2.{}", s % 250)),
    }
}

fn build(dir: &std::path::Path, n: u64) {
    let started = Instant::now();
    let index = SearchIndex::recreate(dir).expect("index dir");
    let mut sink = index.sink(2, 1 << 30).expect("writer");
    let mut cg = CommandGen::new(7);
    for s in 0..n / PER_SESSION {
        let ctx = session_ctx(s);
        let commands = (0..PER_SESSION)
            .map(|i| SessionCommand {
                seq: i as u32,
                record: CommandRecord {
                    t: i * 3_000_000,
                    t_end: Some(i * 3_000_000 + 500_000),
                    command: cg.command(),
                    kind: CommandKind::Shell,
                    cwd: None,
                    exit: None,
                    output_excerpt: None,
                },
            })
            .collect();
        sink.add(&ctx, &Batch { commands, ..Batch::default() }, &mut 0).expect("add");
        if ((s + 1) * PER_SESSION).is_multiple_of(1_000_000) {
            eprintln!("  indexed {} commands ({:.0} s)", (s + 1) * PER_SESSION, started.elapsed().as_secs_f64());
        }
    }
    sink.finish().expect("commit");
    std::fs::write(dir.join("gatehouse-bench-complete"), n.to_string()).expect("marker");
    eprintln!("built in {:.0} s", started.elapsed().as_secs_f64());
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
}

/// Tokens of a command (letters and digits), at least 3 long.
fn words(cmd: &str) -> Vec<&str> {
    cmd.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).collect()
}

fn queries(kind: &str) -> Vec<(String, bool)> {
    let mut cg = CommandGen::new(99 + kind.len() as u64);
    let mut out = Vec::new();
    while out.len() < QUERIES {
        let cmd = cg.command();
        let w = words(&cmd);
        match kind {
            "term" if !w.is_empty() => out.push((w[cg.below(w.len() as u64) as usize].to_string(), false)),
            "phrase" => {
                let all: Vec<&str> = cmd.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
                if all.len() >= 2 {
                    let at = cg.below(all.len() as u64 - 1) as usize;
                    out.push((format!("\"{} {}\"", all[at], all[at + 1]), false));
                }
            }
            "prefix" if !w.is_empty() => {
                let word = w[cg.below(w.len() as u64) as usize];
                let len = (3 + cg.below(3) as usize).min(word.len());
                out.push((format!("{}*", &word[..len]), false));
            }
            "substring" => {
                let chars: Vec<char> = cmd.chars().collect();
                let len = 4 + cg.below(9) as usize;
                if chars.len() > len {
                    let at = cg.below((chars.len() - len) as u64) as usize;
                    out.push((chars[at..at + len].iter().collect(), true));
                }
            }
            // Rare substrings made of common trigrams (a digit of a real one changed): few
            // or no hits, so the search cannot stop early; the worst case of substring search.
            "rare-sub" => {
                let chars: Vec<char> = cmd.chars().collect();
                let len = 7 + cg.below(6) as usize;
                if chars.len() > len {
                    let at = cg.below((chars.len() - len) as u64) as usize;
                    let mut sub: Vec<char> = chars[at..at + len].to_vec();
                    let digits: Vec<usize> = (0..sub.len()).filter(|&i| sub[i].is_ascii_digit()).collect();
                    if !digits.is_empty() {
                        let i = digits[cg.below(digits.len() as u64) as usize];
                        sub[i] = char::from(b'0' + ((sub[i] as u8 - b'0' + 1 + cg.below(9) as u8) % 10));
                        out.push((sub.into_iter().collect(), true));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let dir = cache_dir(n);
    let complete = std::fs::read_to_string(dir.join("gatehouse-bench-complete")).ok();
    if complete.as_deref() != Some(&n.to_string()) {
        eprintln!("building the index of {n} commands in {} (once; reused afterwards)", dir.display());
        build(&dir, n);
    }
    let searcher = Searcher::open(&dir).expect("open index");
    let size = dir_size(&dir);
    println!(
        "index: {n} commands, {:.2} GiB on disk ({:.1} MiB per million commands), {}",
        size as f64 / (1u64 << 30) as f64,
        size as f64 / (1u64 << 20) as f64 / (n as f64 / 1e6),
        dir.display()
    );
    let mut substring_p50 = Duration::ZERO;
    let mut substring_queries = Vec::new();
    for kind in ["term", "phrase", "prefix", "substring", "rare-sub"] {
        let qs = queries(kind);
        let request = |q: &str, literal: bool| SearchRequest {
            query: Some(q.to_string()),
            literal_substring: literal,
            limit: 20,
            ..SearchRequest::default()
        };
        for (q, literal) in &qs {
            searcher.search(&request(q, *literal)).expect("warm-up");
        }
        let mut times = Vec::with_capacity(qs.len());
        let mut exhaustive = Vec::new(); // queries with fewer hits than asked: nothing to stop early on
        let mut empty = 0;
        for (q, literal) in &qs {
            let start = Instant::now();
            let hits = searcher.search(&request(q, *literal)).expect("search");
            let took = start.elapsed();
            times.push(took);
            empty += usize::from(hits.is_empty());
            if hits.len() < 20 {
                exhaustive.push(took);
            }
        }
        times.sort();
        exhaustive.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        println!(
            "{kind:<10} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} queries, {} with no hit, {} with under 20 hits{}; e.g. {:?})",
            ms(p50),
            ms(p99),
            ms(*times.last().unwrap()),
            qs.len(),
            empty,
            exhaustive.len(),
            if exhaustive.is_empty() { String::new() } else { format!(": their p99 {:.2} ms", ms(percentile(&exhaustive, 0.99))) },
            qs[0].0
        );
        if kind == "substring" {
            substring_p50 = p50;
            substring_queries = qs.into_iter().map(|(q, _)| q).collect();
        }
    }
    // Anchor: the same substring queries by scanning every command in memory.
    let mut cg = CommandGen::new(7);
    let mut all = Vec::with_capacity((n as usize) * 48);
    for _ in 0..n {
        all.extend_from_slice(cg.command().to_lowercase().as_bytes());
        all.push(b'\n');
    }
    let mut scans = Vec::new();
    for q in substring_queries.iter().take(30) {
        let needle = q.to_lowercase();
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let start = Instant::now();
        std::hint::black_box(finder.find_iter(&all).count());
        scans.push(start.elapsed());
    }
    scans.sort();
    let scan_p50 = percentile(&scans, 0.5);
    println!(
        "anchor: linear memmem scan of the {n} commands in memory ({:.0} MiB): p50 {:.1} ms",
        all.len() as f64 / 1048576.0,
        ms(scan_p50)
    );
    println!(
        "substring ratio (scan p50 / index p50): {:.0}x faster; targets p99 <= 20 ms (term, phrase), <= 100 ms (substring)",
        scan_p50.as_secs_f64() / substring_p50.as_secs_f64()
    );
}
