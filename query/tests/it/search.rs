use std::collections::BTreeSet;

use gatehouse_fixtures::terminal::{Rng, realistic_session};
use gatehouse_indexer::index::{SearchIndex, SessionContext};
use gatehouse_indexer::{Batch, SessionCommand, SessionIndexer};
use gatehouse_query::{ErrorKind, Filters, SearchRequest, Searcher};
use time::macros::datetime;
use uuid::Uuid;

struct Fixture {
    searcher: Searcher,
    /// (session, text) of every indexed document.
    docs: Vec<(Uuid, String, String)>,
    sessions: Vec<(Uuid, SessionContext)>,
}

fn ctx(n: u8, user: &str, target: &str, started: time::OffsetDateTime) -> SessionContext {
    SessionContext {
        session: Uuid::from_bytes([n; 16]),
        started_at: started,
        user: Some(user.into()),
        account: Some("root".into()),
        target: Some(target.into()),
        source_addr: Some("10.1.2.3".into()),
    }
}

fn build() -> Fixture {
    let index = SearchIndex::in_memory();
    let mut sink = index.sink(1, 50 << 20).unwrap();
    let sessions = vec![
        ctx(1, "alice", "web-01", datetime!(2026-11-01 09:00 UTC)),
        ctx(2, "bob", "db-primary", datetime!(2026-11-02 14:00 UTC)),
    ];
    let mut docs = Vec::new();
    for (i, (c, seed)) in sessions.iter().zip([3u64, 4]).enumerate() {
        let w = realistic_session(seed, 60_000 + i * 10_000);
        let mut p = SessionIndexer::new(w.cols, w.rows);
        for f in &w.frames {
            p.push(f);
        }
        let out = p.finish();
        let mut batch: Batch = out.batch;
        // A hand-made command with an output excerpt, to search the excerpt.
        batch.commands.push(SessionCommand {
            seq: 10_000,
            record: gatehouse_indexer::CommandRecord {
                t: 1,
                t_end: Some(2),
                command: format!("cat /etc/hostname-{i}"),
                kind: gatehouse_indexer::CommandKind::Shell,
                cwd: Some("/root".into()),
                exit: Some(0),
                output_excerpt: Some(format!("unique-host-{i}.example.net")),
            },
        });
        for cmd in &batch.commands {
            let kind = if cmd.record.kind == gatehouse_indexer::CommandKind::Shell { "shell" } else { "program-input" };
            docs.push((c.session, kind.to_string(), cmd.record.command.clone()));
        }
        for line in &batch.lines {
            docs.push((c.session, "screen".to_string(), line.text.to_string()));
        }
        let mut seq = 0;
        sink.add(c, &batch, &mut seq).unwrap();
    }
    sink.commit().unwrap();
    let searcher = Searcher::new(index).unwrap();
    searcher.reload().unwrap();
    Fixture { searcher, docs, sessions: sessions.into_iter().map(|c| (c.session, c)).collect() }
}

fn req(q: &str) -> SearchRequest {
    SearchRequest { query: Some(q.into()), limit: 100_000, ..SearchRequest::default() }
}

fn texts(f: &Fixture, r: &SearchRequest) -> BTreeSet<String> {
    f.searcher.search(r).unwrap().into_iter().map(|h| h.text).collect()
}

#[test]
fn term_phrase_prefix_and_substring() {
    let f = build();
    let all_texts = |pred: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        f.docs.iter().filter(|(_, _, t)| pred(t)).map(|(_, _, t)| t.clone()).collect()
    };
    // Phrase: the words in order.
    let got = texts(&f, &req("\"systemctl restart nginx\""));
    assert!(got.contains("systemctl restart nginx"), "{got:?}");
    assert!(got.iter().all(|t| t.to_lowercase().contains("systemctl restart nginx")), "{got:?}");
    // A path as a term: its words in sequence, in the text or in a command's output.
    let matches = |q: &str, needle: &str| {
        let hits = f.searcher.search(&req(q)).unwrap();
        assert!(!hits.is_empty(), "{q}");
        for h in &hits {
            let found = |t: &str| t.to_lowercase().contains(needle);
            assert!(found(&h.text) || h.output.as_deref().is_some_and(found), "{q}: {h:?}");
        }
        let got: BTreeSet<String> = hits.into_iter().map(|h| h.text).collect();
        assert!(got.is_superset(&all_texts(&|t| t.to_lowercase().contains(needle))), "{q}");
    };
    matches("/etc/shadow", "etc/shadow");
    // Prefix.
    matches("restar*", "restar");
    matches("/etc/sha*", "etc/sha");
    // Output excerpt words find the command.
    let got = texts(&f, &req("unique-host-1.example.net"));
    assert_eq!(got, BTreeSet::from(["cat /etc/hostname-1".to_string()]));
    // Exclusion.
    let got = texts(&f, &req("nginx -restart"));
    assert!(got.iter().all(|t| !t.to_lowercase().contains("restart")) && !got.is_empty());
}

#[test]
fn substring_results_equal_a_brute_force_scan() {
    let f = build();
    let mut rng = Rng::new(99);
    let mut checked = 0;
    for _ in 0..150 {
        let (_, _, text) = &f.docs[rng.below(f.docs.len() as u64) as usize];
        let chars: Vec<char> = text.chars().collect();
        if chars.len() < 2 {
            continue;
        }
        let len = rng.range(1, 12.min(chars.len() as u64)) as usize;
        let at = rng.below((chars.len() - len + 1) as u64) as usize;
        let needle: String = chars[at..at + len].iter().collect();
        if needle.contains(char::is_whitespace) {
            // Whitespace splits clauses; the literal mode takes it whole.
        }
        let want: BTreeSet<String> = f
            .docs
            .iter()
            .filter(|(_, _, t)| t.to_lowercase().contains(&needle.to_lowercase()))
            .map(|(_, _, t)| t.clone())
            .collect();
        let r = SearchRequest { query: Some(needle.clone()), literal_substring: true, limit: 1_000_000, ..Default::default() };
        let got = texts(&f, &r);
        assert_eq!(got, want, "substring {needle:?}");
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn filters_narrow_and_hits_point_to_the_moment() {
    let f = build();
    let (alice, actx) = &f.sessions[0];
    let by_user = SearchRequest { filters: Filters { user: Some("alice".into()), ..Default::default() }, ..req("*e*") };
    let hits = f.searcher.search(&by_user).unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.session == *alice && h.user.as_deref() == Some("alice")));
    // Hits are newest first and their time is start + offset.
    for pair in hits.windows(2) {
        assert!(pair[0].time >= pair[1].time);
    }
    for h in &hits {
        assert_eq!(h.time, actx.at(h.offset_us));
    }
    let by_target = SearchRequest { filters: Filters { target: Some("db-primary".into()), ..Default::default() }, ..req("*e*") };
    assert!(f.searcher.search(&by_target).unwrap().iter().all(|h| h.target.as_deref() == Some("db-primary")));
    // Time range: only the second session started on Nov 2.
    let since = SearchRequest {
        filters: Filters { since: Some(datetime!(2026-11-02 00:00 UTC)), ..Default::default() },
        ..req("*e*")
    };
    assert!(f.searcher.search(&since).unwrap().iter().all(|h| h.session != *alice));
    let until = SearchRequest {
        filters: Filters { until: Some(datetime!(2026-11-02 00:00 UTC)), ..Default::default() },
        ..req("*e*")
    };
    assert!(f.searcher.search(&until).unwrap().iter().all(|h| h.session == *alice));
    // Kinds.
    let screen = SearchRequest { filters: Filters { kind: Some("screen".into()), ..Default::default() }, ..req("*e*") };
    assert!(f.searcher.search(&screen).unwrap().iter().all(|h| h.kind == "screen"));
    let commands = SearchRequest { filters: Filters { kind: Some("command".into()), ..Default::default() }, ..req("*e*") };
    let hits = f.searcher.search(&commands).unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.kind != "screen"));
    // Listing a session's commands, in order.
    let listed = f.searcher.session_commands(*alice).unwrap();
    let want: Vec<&String> = f.docs.iter().filter(|(s, k, _)| s == alice && k != "screen").map(|(_, _, t)| t).collect();
    assert_eq!(listed.iter().map(|h| &h.text).collect::<Vec<_>>(), want);
    // Limit.
    assert_eq!(f.searcher.search(&SearchRequest { limit: 3, ..req("*e*") }).unwrap().len(), 3);
}

#[test]
fn bad_queries_are_clear_errors() {
    let f = build();
    for bad in ["\"unclosed", "-only", "*", "...*"] {
        let err = f.searcher.search(&req(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}: {err}");
    }
    let err = Searcher::open(std::path::Path::new("/nonexistent/index")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("gatehouse reindex"), "{err}");
}

#[test]
fn newest_first_is_exact_across_segments_in_any_time_order() {
    let index = SearchIndex::in_memory();
    let mut sink = index.sink(1, 50 << 20).unwrap();
    // Three commits (three segments) whose time ranges are out of order and overlap.
    let starts = [
        datetime!(2026-11-05 10:00 UTC),
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-05 09:59 UTC),
    ];
    let mut want = Vec::new();
    for (n, start) in starts.into_iter().enumerate() {
        let c = ctx(n as u8 + 10, "ops", "web-01", start);
        let commands = (0..50u32)
            .map(|i| SessionCommand {
                seq: i,
                record: gatehouse_indexer::CommandRecord {
                    t: u64::from(i) * 7_000_000 + n as u64,
                    t_end: None,
                    command: format!("deploy release {i}"),
                    kind: gatehouse_indexer::CommandKind::Shell,
                    cwd: None,
                    exit: None,
                    output_excerpt: None,
                },
            })
            .collect::<Vec<_>>();
        for cmd in &commands {
            want.push((c.at(cmd.record.t), c.session, cmd.seq));
        }
        sink.add(&c, &Batch { commands, ..Batch::default() }, &mut 0).unwrap();
        sink.commit().unwrap();
    }
    // A deleted session's documents never come back.
    sink.delete_session(Uuid::from_bytes([11; 16]));
    sink.commit().unwrap();
    want.retain(|(_, s, _)| *s != Uuid::from_bytes([11; 16]));
    want.sort_by(|a, b| b.cmp(a));
    let searcher = Searcher::new(index).unwrap();
    searcher.reload().unwrap();
    for limit in [1, 5, 37, 100, 1000] {
        let got: Vec<_> = searcher.search(&SearchRequest { limit, ..req("deploy") }).unwrap().into_iter().map(|h| (h.time, h.session, h.seq as u32)).collect();
        assert_eq!(got, want[..limit.min(want.len())].to_vec(), "limit {limit}");
    }
}
