//! Searching the index: clauses plus filters in, newest hits first out, each pointing to a
//! session and a moment in it.

use std::ops::Bound;
use std::path::Path;

use gatehouse_indexer::index::{FILE_KIND, Fields, SCREEN_KIND, SearchIndex, query_trigrams};
use serde::Serialize;
use tantivy::collector::Count;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DateTime, IndexReader, TantivyDocument, Term};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::syntax::{Clause, parse};

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The query, in the syntax of [`crate::syntax`]; `None` lists everything the
    /// filters allow.
    pub query: Option<String>,
    /// Take the whole query as one literal substring (no syntax).
    pub literal_substring: bool,
    /// Narrowing.
    pub filters: Filters,
    /// At most this many hits (newest first).
    pub limit: usize,
}

/// Filters; empty fields match everything. Values match exactly.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The gatehouse user.
    pub user: Option<String>,
    /// The target's name.
    pub target: Option<String>,
    /// The account on the target.
    pub account: Option<String>,
    /// One session.
    pub session: Option<Uuid>,
    /// At or after this time.
    pub since: Option<OffsetDateTime>,
    /// Before this time.
    pub until: Option<OffsetDateTime>,
    /// Only this kind: `shell`, `program-input`, `screen`, `file` (file transfers), or
    /// `command` (both command kinds).
    pub kind: Option<String>,
}

/// One hit: a command, a screen line or a file transfer, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The session.
    pub session: Uuid,
    /// Wall-clock time of the command (Enter) or of the line's first sighting.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The same moment in µs since the session started: where a player seeks.
    pub offset_us: u64,
    /// `shell`, `program-input`, `screen` or `file`.
    pub kind: String,
    /// The command line, the screen line, or the file transfer in words.
    pub text: String,
    /// Order within the session (commands: their sequence number).
    pub seq: u64,
    /// The gatehouse user.
    pub user: Option<String>,
    /// The account on the target.
    pub account: Option<String>,
    /// The target.
    pub target: Option<String>,
    /// The user's source address.
    pub source_addr: Option<String>,
    /// Command end, µs since session start.
    pub end_offset_us: Option<u64>,
    /// Working directory, where known.
    pub cwd: Option<String>,
    /// Exit status, where known.
    pub exit: Option<i64>,
    /// The command's output excerpt.
    pub output: Option<String>,
}

/// Searches one index. Cheap to keep around: it reloads on new commits by itself.
pub struct Searcher {
    index: SearchIndex,
    reader: IndexReader,
    blocks: crate::newest::BlockTimes,
}

impl Searcher {
    /// Opens the index in `dir` (`NotFound` if none was built).
    pub fn open(dir: &Path) -> Result<Searcher> {
        Searcher::new(SearchIndex::open(dir)?)
    }

    /// Searches an index already open (the live indexer's, in `serve`).
    pub fn new(index: SearchIndex) -> Result<Searcher> {
        let reader = index.reader()?;
        Ok(Searcher { index, reader, blocks: crate::newest::BlockTimes::default() })
    }

    /// Picks up the latest commit now (otherwise it does within a moment).
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// The newest `limit` hits.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>> {
        let query = self.build(request)?;
        let searcher = self.reader.searcher();
        let found = crate::newest::newest(&searcher, &query, request.limit.max(1), &self.blocks)?;
        let mut hits = found.into_iter().map(|(_, addr)| Ok(self.hit(&searcher.doc(addr)?))).collect::<Result<Vec<Hit>>>()?;
        // Hits of the same moment (the lines one frame printed) would come in the index's
        // document order, which a reindex may change: order them by session, kind and
        // position instead, the last first, so the same index content answers the same.
        hits.sort_by(|a, b| {
            (b.time.cmp(&a.time))
                .then_with(|| a.session.cmp(&b.session))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| b.seq.cmp(&a.seq))
        });
        Ok(hits)
    }

    /// How many documents match (no limit).
    pub fn count(&self, request: &SearchRequest) -> Result<usize> {
        Ok(self.reader.searcher().search(&self.build(request)?, &Count)?)
    }

    /// A session's commands in order (a listing).
    pub fn session_commands(&self, session: Uuid) -> Result<Vec<Hit>> {
        let filters = Filters { session: Some(session), kind: Some("command".into()), ..Filters::default() };
        let request = SearchRequest { query: None, literal_substring: false, filters, limit: usize::MAX };
        let n = self.count(&request)?;
        let mut hits = self.search(&SearchRequest { limit: n.max(1), ..request })?;
        hits.sort_by_key(|h| h.seq);
        Ok(hits)
    }

    /// The tantivy query for a request.
    pub fn build(&self, request: &SearchRequest) -> Result<BooleanQuery> {
        let f = self.index.fields();
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match (&request.query, request.literal_substring) {
            (Some(q), true) if !q.is_empty() => must.push((Occur::Must, substring(f, q)?)),
            (Some(q), false) => {
                for part in parse(q)? {
                    let occur = if part.exclude { Occur::MustNot } else { Occur::Must };
                    must.push((occur, self.clause(&part.clause)?));
                }
            }
            _ => must.push((Occur::Must, Box::new(AllQuery))),
        }
        self.filters(&request.filters, &mut must)?;
        Ok(BooleanQuery::new(must))
    }

    fn clause(&self, clause: &Clause) -> Result<Box<dyn Query>> {
        let f = self.index.fields();
        Ok(match clause {
            Clause::Substring(s) => substring(f, s)?,
            Clause::Words(text) => {
                let words = self.words(text);
                if words.is_empty() {
                    // Only punctuation: nothing for the word index; look for the characters.
                    return substring(f, text);
                }
                either(words_query(f.text, &words), words_query(f.output, &words))
            }
            Clause::Prefix(text) => {
                let words = self.words(text);
                let ends_in_word = text.chars().last().is_some_and(char::is_alphanumeric);
                if words.is_empty() || !ends_in_word {
                    return Err(Error::Invalid(format!("{text}*: a prefix must end with a letter or digit")));
                }
                either(prefix_query(f.text, &words)?, prefix_query(f.output, &words)?)
            }
        })
    }

    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer =
            self.index.index().tokenizer_for_field(self.index.fields().text).expect("text has a tokenizer");
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    fn filters(&self, filters: &Filters, must: &mut Vec<(Occur, Box<dyn Query>)>) -> Result<()> {
        let f = self.index.fields();
        let exact = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        for (field, value) in [(f.user, &filters.user), (f.target, &filters.target), (f.account, &filters.account)] {
            if let Some(v) = value {
                must.push((Occur::Must, exact(field, v)));
            }
        }
        if let Some(id) = filters.session {
            must.push((Occur::Must, exact(f.session, &id.to_string())));
        }
        match filters.kind.as_deref() {
            None => {}
            Some("command") => {
                let either = BooleanQuery::new(vec![
                    (Occur::Should, exact(f.kind, "shell")),
                    (Occur::Should, exact(f.kind, "program-input")),
                ]);
                must.push((Occur::Must, Box::new(either)));
            }
            Some(k @ ("shell" | "program-input")) => must.push((Occur::Must, exact(f.kind, k))),
            Some(SCREEN_KIND) => must.push((Occur::Must, exact(f.kind, SCREEN_KIND))),
            Some(FILE_KIND) => must.push((Occur::Must, exact(f.kind, FILE_KIND))),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "unknown kind {other:?}: use command, shell, program-input, screen or file"
                )));
            }
        }
        if filters.since.is_some() || filters.until.is_some() {
            let at = |t: OffsetDateTime| {
                Term::from_field_date(f.time, DateTime::from_timestamp_micros((t.unix_timestamp_nanos() / 1000) as i64))
            };
            let lower = filters.since.map_or(Bound::Unbounded, |t| Bound::Included(at(t)));
            let upper = filters.until.map_or(Bound::Unbounded, |t| Bound::Excluded(at(t)));
            must.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        Ok(())
    }

    fn hit(&self, doc: &TantivyDocument) -> Hit {
        let f = self.index.fields();
        let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str().map(str::to_string));
        let u64_of = |field: Field| doc.get_first(field).and_then(|v| v.as_u64());
        let time = doc
            .get_first(f.time)
            .and_then(|v| v.as_datetime())
            .and_then(|d| OffsetDateTime::from_unix_timestamp_nanos(i128::from(d.into_timestamp_micros()) * 1000).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Hit {
            session: text(f.session).and_then(|s| s.parse().ok()).unwrap_or_default(),
            time,
            offset_us: u64_of(f.offset).unwrap_or(0),
            kind: text(f.kind).unwrap_or_default(),
            text: text(f.text).unwrap_or_default(),
            seq: u64_of(f.seq).unwrap_or(0),
            user: text(f.user),
            account: text(f.account),
            target: text(f.target),
            source_addr: text(f.source_addr),
            end_offset_us: u64_of(f.t_end),
            cwd: text(f.cwd),
            exit: doc.get_first(f.exit).and_then(|v| v.as_i64()),
            output: text(f.output),
        }
    }
}

fn either(a: Box<dyn Query>, b: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Should, a), (Occur::Should, b)]))
}

fn words_query(field: Field, words: &[String]) -> Box<dyn Query> {
    let terms: Vec<Term> = words.iter().map(|w| Term::from_field_text(field, w)).collect();
    if terms.len() == 1 {
        Box::new(TermQuery::new(terms.into_iter().next().expect("one term"), IndexRecordOption::Basic))
    } else {
        Box::new(PhraseQuery::new(terms))
    }
}

fn prefix_query(field: Field, words: &[String]) -> Result<Box<dyn Query>> {
    if words.len() == 1 {
        let pattern = format!("{}.*", regex_escape(&words[0]));
        return Ok(Box::new(RegexQuery::from_pattern(&pattern, field)?));
    }
    let terms: Vec<Term> = words.iter().map(|w| Term::from_field_text(field, w)).collect();
    Ok(Box::new(PhrasePrefixQuery::new(terms)))
}

/// Characters anywhere in a command or screen line (see the indexer's trigram tokenizer).
fn substring(f: &Fields, text: &str) -> Result<Box<dyn Query>> {
    let grams = query_trigrams(text);
    match grams.len() {
        0 => {
            // One or two characters: a prefix of some trigram (texts are padded, so every
            // position starts one).
            let folded: String = text.chars().map(gatehouse_indexer::index::fold).collect();
            let pattern = format!("{}.*", regex_escape(&folded));
            Ok(Box::new(RegexQuery::from_pattern(&pattern, f.grams)?))
        }
        1 => Ok(Box::new(TermQuery::new(Term::from_field_text(f.grams, &grams[0].1), IndexRecordOption::Basic))),
        _ => Ok(Box::new(PhraseQuery::new_with_offset(
            grams.into_iter().map(|(at, g)| (at, Term::from_field_text(f.grams, &g))).collect(),
        ))),
    }
}

/// Escapes every character that is not a letter or digit as `\x{..}` (always valid).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
        }
    }
    out
}
