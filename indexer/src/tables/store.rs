//! Writing the tables' Parquet parts to the object store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::TryStreamExt as _;
use gatehouse_recorder::Manifest;
use object_store::ObjectStore;
use object_store::ObjectStoreExt as _;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::Table;
use super::rows::{CommandRow, EventRow, SessionRow, commands_batch, events_batch, sessions_batch};
use super::schema::{TABLES_VERSION, commands_schema, events_schema, sessions_schema};
use crate::error::Result;
use crate::index::SessionContext;
use crate::pipeline::{RecordedEvent, SessionCommand};

/// Rows per Parquet part file written by a rebuild.
const PART_ROWS: usize = 1_000_000;
/// Rows per Arrow batch handed to the writer (and per row group at most).
const BATCH_ROWS: usize = 64 * 1024;

fn date_of(t: OffsetDateTime) -> Date {
    t.to_offset(time::UtcOffset::UTC).date()
}

/// `tables/<table>/date=YYYY-MM-DD/<name>.parquet`.
fn part_path(table: Table, date: Date, name: &str) -> Path {
    Path::from(format!(
        "tables/{}/date={:04}-{:02}-{:02}/{name}.parquet",
        table.name(),
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3 is valid")))
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .set_created_by(format!("gatehouse {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new("gatehouse.tables.version".into(), TABLES_VERSION.to_string())]))
        .build()
}

/// Writes one part file from rows, batch by batch.
async fn write_part<R>(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    table: Table,
    rows: &[R],
    batch: fn(&[R]) -> Result<RecordBatch>,
) -> Result<()> {
    let schema = match table {
        Table::Sessions => sessions_schema(),
        Table::Commands => commands_schema(),
        Table::Events => events_schema(),
    };
    let out = BufWriter::new(store.clone(), path.clone());
    let mut writer = AsyncArrowWriter::try_new(out, schema, Some(props()))?;
    for chunk in rows.chunks(BATCH_ROWS) {
        writer.write(&batch(chunk)?).await?;
    }
    writer.close().await?;
    Ok(())
}

fn session_rows(
    manifest: &Manifest,
    commands: &[SessionCommand],
    events: &[RecordedEvent],
) -> (SessionRow, Vec<CommandRow>, Vec<EventRow>) {
    let ctx = Arc::new(SessionContext::of(manifest));
    let session = SessionRow { manifest: manifest.clone(), commands: commands.len() as u64, events: events.len() as u64 };
    let commands = commands
        .iter()
        .map(|c| CommandRow { ctx: ctx.clone(), client: manifest.meta.client.clone(), command: c.clone() })
        .collect();
    let events = events.iter().map(|e| EventRow::from_recording(manifest, e)).collect();
    (session, commands, events)
}

fn by_date<R>(rows: Vec<R>, time: impl Fn(&R) -> OffsetDateTime) -> BTreeMap<Date, Vec<R>> {
    let mut out: BTreeMap<Date, Vec<R>> = BTreeMap::new();
    for r in rows {
        out.entry(date_of(time(&r))).or_default().push(r);
    }
    out
}

/// Writes one finished session's rows as `s-<session-id>.parquet` parts (live indexing).
/// Running it again for the same session replaces its parts.
pub async fn write_session_tables(
    store: &Arc<dyn ObjectStore>,
    manifest: &Manifest,
    commands: &[SessionCommand],
    events: &[RecordedEvent],
) -> Result<()> {
    let name = format!("s-{}", manifest.id);
    let (session, commands, events) = session_rows(manifest, commands, events);
    let date = date_of(manifest.started_at);
    write_part(store, &part_path(Table::Sessions, date, &name), Table::Sessions, &[session], sessions_batch).await?;
    for (date, rows) in by_date(commands, CommandRow::time) {
        write_part(store, &part_path(Table::Commands, date, &name), Table::Commands, &rows, commands_batch).await?;
    }
    for (date, rows) in by_date(events, |e| e.time) {
        write_part(store, &part_path(Table::Events, date, &name), Table::Events, &rows, events_batch).await?;
    }
    Ok(())
}

/// Writes a batch of control-plane events as `cp-<id>.parquet` parts (live indexing).
pub async fn write_control_plane_events(store: &Arc<dyn ObjectStore>, events: Vec<EventRow>) -> Result<()> {
    let name = format!("cp-{}", Uuid::now_v7());
    for (date, rows) in by_date(events, |e| e.time) {
        write_part(store, &part_path(Table::Events, date, &name), Table::Events, &rows, events_batch).await?;
    }
    Ok(())
}

/// What a rebuild of the tables wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TablesReport {
    /// Rows written to `sessions`.
    pub sessions: u64,
    /// Rows written to `commands`.
    pub commands: u64,
    /// Rows written to `events`.
    pub events: u64,
    /// Part files written.
    pub parts_written: u64,
    /// Stale part files removed.
    pub parts_removed: u64,
}

/// A full rebuild of the tables (`gatehouse reindex`): rows are gathered per date
/// partition and each partition is written once, as `part-NNNNN.parquet`, as soon as no
/// later session can add to it (sessions come in start order); at the end every other
/// part file is removed.
pub struct TablesRebuild {
    store: Arc<dyn ObjectStore>,
    started: OffsetDateTime,
    sessions: BTreeMap<Date, Vec<SessionRow>>,
    commands: BTreeMap<Date, Vec<CommandRow>>,
    events: BTreeMap<Date, Vec<EventRow>>,
    written: HashSet<Path>,
    /// Next part number per partition (a partition is normally written once; if rows for
    /// it arrive after it was written, they go to a further part instead of replacing it).
    next_part: HashMap<(Table, Date), usize>,
    report: TablesReport,
}

impl TablesRebuild {
    /// A rebuild into `store`, including the given control-plane events.
    pub fn new(store: Arc<dyn ObjectStore>, control_plane_events: Vec<EventRow>) -> TablesRebuild {
        TablesRebuild {
            store,
            started: OffsetDateTime::now_utc(),
            sessions: BTreeMap::new(),
            commands: BTreeMap::new(),
            events: by_date(control_plane_events, |e| e.time),
            written: HashSet::new(),
            next_part: HashMap::new(),
            report: TablesReport::default(),
        }
    }

    /// Adds one session's rows. Call in order of session start: partitions of earlier
    /// dates are written out first.
    pub async fn add_session(
        &mut self,
        manifest: &Manifest,
        commands: &[SessionCommand],
        events: &[RecordedEvent],
    ) -> Result<()> {
        self.flush_before(Some(date_of(manifest.started_at))).await?;
        let (session, commands, events) = session_rows(manifest, commands, events);
        self.sessions.entry(date_of(manifest.started_at)).or_default().push(session);
        for (date, rows) in by_date(commands, CommandRow::time) {
            self.commands.entry(date).or_default().extend(rows);
        }
        for (date, rows) in by_date(events, |e| e.time) {
            self.events.entry(date).or_default().extend(rows);
        }
        Ok(())
    }

    /// Writes everything left and removes part files this rebuild did not write (those
    /// modified after it started are kept: they were added meanwhile).
    pub async fn finish(mut self) -> Result<TablesReport> {
        self.flush_before(None).await?;
        let started_us = (self.started.unix_timestamp_nanos() / 1000) as i64;
        let listed: Vec<_> = self.store.list(Some(&Path::from("tables"))).try_collect().await?;
        for meta in listed {
            let name = meta.location.as_ref();
            let ours = ["sessions", "commands", "events"].iter().any(|t| name.starts_with(&format!("tables/{t}/date=")));
            if ours
                && name.ends_with(".parquet")
                && !self.written.contains(&meta.location)
                && meta.last_modified.timestamp_micros() < started_us
            {
                self.store.delete(&meta.location).await?;
                self.report.parts_removed += 1;
            }
        }
        Ok(self.report)
    }

    async fn flush_before(&mut self, date: Option<Date>) -> Result<()> {
        let due = |d: &Date| date.is_none_or(|limit| *d < limit);
        let sessions: Vec<Date> = self.sessions.keys().copied().filter(due).collect();
        for d in sessions {
            let rows = self.sessions.remove(&d).unwrap_or_default();
            self.report.sessions += rows.len() as u64;
            self.write_parts(Table::Sessions, d, &rows, sessions_batch).await?;
        }
        let commands: Vec<Date> = self.commands.keys().copied().filter(due).collect();
        for d in commands {
            let rows = self.commands.remove(&d).unwrap_or_default();
            self.report.commands += rows.len() as u64;
            self.write_parts(Table::Commands, d, &rows, commands_batch).await?;
        }
        let events: Vec<Date> = self.events.keys().copied().filter(due).collect();
        for d in events {
            let mut rows = self.events.remove(&d).unwrap_or_default();
            rows.sort_by_key(|e| e.time);
            self.report.events += rows.len() as u64;
            self.write_parts(Table::Events, d, &rows, events_batch).await?;
        }
        Ok(())
    }

    async fn write_parts<R>(
        &mut self,
        table: Table,
        date: Date,
        rows: &[R],
        batch: fn(&[R]) -> Result<RecordBatch>,
    ) -> Result<()> {
        for chunk in rows.chunks(PART_ROWS) {
            let n = self.next_part.entry((table, date)).or_default();
            let path = part_path(table, date, &format!("part-{n:05}"));
            *n += 1;
            write_part(&self.store, &path, table, chunk, batch).await?;
            self.written.insert(path);
            self.report.parts_written += 1;
        }
        Ok(())
    }
}
