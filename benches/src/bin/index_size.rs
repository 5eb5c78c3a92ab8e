//! Search index size per million commands, against the anchor of the same commands as
//! raw text (one per line) and as JSON lines with the fields the index keeps (session, 5W,
//! time, offset), in the same run.
//!
//! Indexes N commands (default 1,000,000) from `benches::commands` (seed 7, sessions of 200
//! commands), the same as `search_latency`, into a fresh temporary directory; commits, waits
//! for merges; reports bytes on disk and tantivy's own breakdown (postings, positions, term
//! dictionary, stored documents, fast fields) with the share of the trigram field.
//! Usage: `index_size [commands]`.

use std::time::Instant;

use gatehouse_benches::commands::CommandGen;
use gatehouse_indexer::index::{SearchIndex, SessionContext};
use gatehouse_indexer::{Batch, CommandKind, CommandRecord, SessionCommand};
use uuid::Uuid;

const PER_SESSION: u64 = 200;

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open_or_create(tmp.path()).expect("index");
    let mut sink = index.sink(2, 512 << 20).expect("writer");
    let mut cg = CommandGen::new(7);
    let (mut raw, mut json) = (0u64, 0u64);
    let started = Instant::now();
    for s in 0..n / PER_SESSION {
        let ctx = SessionContext {
            session: Uuid::from_u64_pair(0x6761_7465_686f_7573, s),
            started_at: time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds((s * 631) as i64),
            user: Some(format!("user{}", s % 50)),
            account: Some("root".into()),
            target: Some(format!("srv-{:03}", s % 500)),
            source_addr: Some(format!("192.0.2.{}", s % 250)),
        };
        let mut commands = Vec::with_capacity(PER_SESSION as usize);
        for i in 0..PER_SESSION {
            let command = cg.command();
            raw += command.len() as u64 + 1;
            let line = serde_json::json!({
                "session": ctx.session, "user": ctx.user, "account": ctx.account, "target": ctx.target,
                "source_addr": ctx.source_addr, "time": ctx.at(i * 3_000_000).unix_timestamp_nanos() / 1000,
                "offset_us": i * 3_000_000, "seq": i, "kind": "shell", "command": command,
            });
            json += line.to_string().len() as u64 + 1;
            commands.push(SessionCommand {
                seq: i as u32,
                record: CommandRecord {
                    t: i * 3_000_000,
                    t_end: Some(i * 3_000_000 + 500_000),
                    command,
                    kind: CommandKind::Shell,
                    cwd: None,
                    exit: None,
                    output_excerpt: None,
                },
            });
        }
        sink.add(&ctx, &Batch { commands, ..Batch::default() }, &mut 0).expect("add");
    }
    sink.finish().expect("commit");
    let elapsed = started.elapsed();
    let disk: u64 = std::fs::read_dir(tmp.path()).unwrap().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    let reader = index.reader().expect("reader");
    reader.reload().expect("reload");
    let usage = reader.searcher().space_usage().expect("space usage");
    let (mut postings, mut positions, mut termdict, mut store, mut fast, mut grams) = (0, 0, 0, 0, 0, 0);
    for seg in usage.segments() {
        postings += seg.postings().total().get_bytes();
        positions += seg.positions().total().get_bytes();
        termdict += seg.termdict().total().get_bytes();
        store += seg.store().total().get_bytes();
        fast += seg.fast_fields().total().get_bytes();
        for part in [seg.postings(), seg.positions(), seg.termdict()] {
            grams += part.fields().filter(|f| f.field_name() == "grams").map(|f| f.total().get_bytes()).sum::<u64>();
        }
    }
    let per_m = |b: u64| mib(b) / (n as f64 / 1e6);
    println!("{n} commands indexed in {:.0} s (2 threads)", elapsed.as_secs_f64());
    println!("index on disk: {:.1} MiB = {:.1} MiB per million commands", mib(disk), per_m(disk));
    println!(
        "  postings {:.1}, positions {:.1}, term dictionary {:.1}, stored documents {:.1}, fast fields {:.1} MiB per million",
        per_m(postings),
        per_m(positions),
        per_m(termdict),
        per_m(store),
        per_m(fast)
    );
    println!("  of which the trigram field (substring search): {:.1} MiB per million", per_m(grams));
    println!("anchor: raw command text {:.1} MiB per million; as JSON lines with session and 5W fields {:.1} MiB per million", per_m(raw), per_m(json));
    println!(
        "ratio: index / raw text = {:.2}; index / JSON lines = {:.2}",
        disk as f64 / raw as f64,
        disk as f64 / json as f64
    );
}
