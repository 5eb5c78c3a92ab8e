//! Turning what the pipeline found into index documents, and the writer that adds them.

use gatehouse_recorder::{Manifest, Micros};
use tantivy::schema::Field;
use tantivy::{DateTime, IndexWriter, TantivyDocument, Term};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::{FILE_KIND, transfer_text};
use super::{Fields, SCREEN_KIND};
use crate::command::CommandKind;
use crate::error::Result;
use crate::pipeline::{Batch, SessionCommand};
use crate::screen_text::ScreenLine;

/// The session facts every document of a session carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    /// Session id.
    pub session: Uuid,
    /// Wall-clock start; document times are this plus their offset.
    pub started_at: OffsetDateTime,
    /// The gatehouse user.
    pub user: Option<String>,
    /// The account on the target.
    pub account: Option<String>,
    /// The target's name.
    pub target: Option<String>,
    /// The user's source address.
    pub source_addr: Option<String>,
}

impl SessionContext {
    /// The context of a recorded session.
    pub fn of(manifest: &Manifest) -> SessionContext {
        SessionContext {
            session: manifest.id,
            started_at: manifest.started_at,
            user: manifest.meta.user.clone(),
            account: manifest.meta.account.clone(),
            target: manifest.meta.target.clone(),
            source_addr: manifest.meta.source_addr.clone(),
        }
    }

    /// Wall-clock time of an offset into the session.
    pub fn at(&self, offset: Micros) -> OffsetDateTime {
        self.started_at + time::Duration::microseconds(offset.min(i64::MAX as u64) as i64)
    }
}

/// Kind name as stored in the index and the tables.
pub(crate) fn kind_name(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::Shell => "shell",
        CommandKind::ProgramInput => "program-input",
    }
}

/// Adds documents; commits on demand. Owns the index's single writer.
pub struct IndexSink {
    writer: IndexWriter,
    fields: Fields,
    /// Documents added or deleted since the last commit.
    uncommitted: u64,
}

impl IndexSink {
    pub(super) fn new(writer: IndexWriter, fields: Fields) -> IndexSink {
        IndexSink { writer, fields, uncommitted: 0 }
    }

    /// Adds a batch of one session's findings. `line_seq` numbers its screen lines and
    /// file-transfer events (continue it across batches of a session). Commands replace the session's
    /// provisional command, if any.
    pub fn add(&mut self, ctx: &SessionContext, batch: &Batch, line_seq: &mut u64) -> Result<()> {
        if !batch.commands.is_empty() {
            self.writer.delete_term(Term::from_field_text(self.fields.provisional, &ctx.session.to_string()));
        }
        for command in &batch.commands {
            self.writer.add_document(self.command_doc(ctx, command))?;
        }
        for line in &batch.lines {
            self.writer.add_document(self.line_doc(ctx, line, *line_seq))?;
            *line_seq += 1;
        }
        for event in &batch.events {
            if let Some(text) = transfer_text(&event.event) {
                self.writer.add_document(self.base_doc(ctx, FILE_KIND, &text, event.t, *line_seq))?;
                *line_seq += 1;
                self.uncommitted += 1;
            }
        }
        self.uncommitted += (batch.commands.len() + batch.lines.len()) as u64;
        Ok(())
    }

    /// Shows a command whose record is not final yet (live indexing: a command is
    /// searchable from Enter, not only once the next one starts). It replaces the
    /// session's previous provisional command, and is replaced by the next [`IndexSink::add`]
    /// that brings commands.
    pub fn add_provisional(&mut self, ctx: &SessionContext, command: &SessionCommand) -> Result<()> {
        let session = ctx.session.to_string();
        self.writer.delete_term(Term::from_field_text(self.fields.provisional, &session));
        let mut doc = self.command_doc(ctx, command);
        doc.add_text(self.fields.provisional, &session);
        self.writer.add_document(doc)?;
        self.uncommitted += 1;
        Ok(())
    }

    /// Deletes every document of a session (those added after this call stay).
    pub fn delete_session(&mut self, session: Uuid) {
        self.writer.delete_term(Term::from_field_text(self.fields.session, &session.to_string()));
        self.uncommitted += 1;
    }

    /// Deletes every document (a full rebuild).
    pub fn delete_all(&mut self) -> Result<()> {
        self.writer.delete_all_documents()?;
        self.uncommitted += 1;
        Ok(())
    }

    /// Whether anything was added or deleted since the last commit.
    pub fn has_uncommitted(&self) -> bool {
        self.uncommitted > 0
    }

    /// Makes everything added so far searchable (by readers that reload).
    pub fn commit(&mut self) -> Result<()> {
        self.writer.commit()?;
        self.uncommitted = 0;
        Ok(())
    }

    /// Commits, then waits for background merges to finish (end of a rebuild).
    pub fn finish(mut self) -> Result<()> {
        self.commit()?;
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    fn base_doc(&self, ctx: &SessionContext, kind: &str, text: &str, offset: Micros, seq: u64) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, kind);
        doc.add_text(f.text, text);
        doc.add_text(f.grams, text);
        doc.add_text(f.session, ctx.session.to_string());
        doc.add_u64(f.seq, seq);
        let opt = |doc: &mut TantivyDocument, field: Field, v: &Option<String>| {
            if let Some(v) = v {
                doc.add_text(field, v);
            }
        };
        opt(&mut doc, f.user, &ctx.user);
        opt(&mut doc, f.account, &ctx.account);
        opt(&mut doc, f.target, &ctx.target);
        opt(&mut doc, f.source_addr, &ctx.source_addr);
        let at = ctx.at(offset);
        doc.add_date(f.time, DateTime::from_timestamp_micros((at.unix_timestamp_nanos() / 1000) as i64));
        doc.add_u64(f.offset, offset);
        doc
    }

    fn command_doc(&self, ctx: &SessionContext, command: &SessionCommand) -> TantivyDocument {
        let f = &self.fields;
        let r = &command.record;
        let mut doc = self.base_doc(ctx, kind_name(r.kind), &r.command, r.t, u64::from(command.seq));
        if let Some(t_end) = r.t_end {
            doc.add_u64(f.t_end, t_end);
        }
        if let Some(cwd) = &r.cwd {
            doc.add_text(f.cwd, cwd);
        }
        if let Some(exit) = r.exit {
            doc.add_i64(f.exit, i64::from(exit));
        }
        if let Some(output) = &r.output_excerpt {
            doc.add_text(f.output, output);
        }
        doc
    }

    fn line_doc(&self, ctx: &SessionContext, line: ScreenLine<'_>, seq: u64) -> TantivyDocument {
        self.base_doc(ctx, SCREEN_KIND, line.text, line.t, seq)
    }
}
