//! `gatehouse search QUERY [filters] [--json]`: commands, screen text and file transfers, newest first.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_query::{Filters, Hit, SearchRequest, Searcher};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Ctx;
use super::sessions::parse_time;
use crate::store::{self, StoreArgs};

/// Search the commands people ran and the screen text they saw, newest first.
///
/// Each argument is a clause and all must match: `nginx` (a word), `/etc/shadow` (words in
/// sequence), `"systemctl restart nginx"` (an argument with spaces is a phrase), `restart*`
/// (a word prefix), `*nginx/sites*` (characters anywhere, any case), `-word` (exclude; put
/// the query after `--` then: `gatehouse search -- nginx -restart`).
/// Prints time, session, offset into the session, user@target, kind and the line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to look for.
    #[arg(required = true)]
    pub query: Vec<String>,
    /// Take the query as one literal substring (characters anywhere, no syntax).
    #[arg(long, short = 's')]
    pub substring: bool,
    /// Only sessions of this gatehouse user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions to this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only sessions as this account on the target.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this session: its id or a unique prefix of it (looked up in the store).
    #[arg(long)]
    pub session: Option<String>,
    /// At or after this time: RFC 3339, a UTC day (2024-05-01), or an age (90m, 12h, 7d).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Only this kind: command, shell, program-input, screen or file (file transfers).
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many hits.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per hit instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `gatehouse search`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let dir = ctx.data_dir.join("index");
    let searcher = Searcher::open(&dir).context("opening the search index")?;
    let session = match &args.session {
        None => None,
        Some(text) => Some(match text.parse::<Uuid>() {
            Ok(id) => id,
            Err(_) => {
                let storage = args.store.storage(ctx)?;
                store::runtime()?.block_on(storage.resolve(text)).with_context(|| format!("session {text}"))?
            }
        }),
    };
    let query = if args.substring {
        args.query.join(" ")
    } else {
        // An argument with spaces (quoted in the shell) is a phrase.
        let clause = |a: &String| {
            if a.contains(char::is_whitespace) && !a.contains('"') { format!("\"{a}\"") } else { a.clone() }
        };
        args.query.iter().map(clause).collect::<Vec<_>>().join(" ")
    };
    let request = SearchRequest {
        query: Some(query),
        literal_substring: args.substring,
        filters: Filters {
            user: args.user,
            target: args.target,
            account: args.account,
            session,
            since: args.since,
            until: args.until,
            kind: args.kind,
        },
        limit: args.limit,
    };
    let hits = searcher.search(&request)?;
    let mut out = std::io::stdout().lock();
    for hit in &hits {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(hit)?)?;
        } else {
            writeln!(out, "{}", line(hit))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn line(h: &Hit) -> String {
    let t = h.time.to_offset(time::UtcOffset::UTC);
    let time = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let offset = format!("+{}", super::moment::format(h.offset_us));
    let who = format!("{}@{}", h.user.as_deref().unwrap_or("-"), h.target.as_deref().unwrap_or("-"));
    let text = h.text.replace('\n', "\\n");
    format!("{time}  {}  {offset:>14}  {who:<24}  {:<13}  {text}", h.session, h.kind)
}
