//! The `vt100` callbacks of the session's parser: counts rows scrolled off the top (so a
//! position stays valid while output scrolls) and keeps the text of rows that scroll away
//! while a command's output excerpt is being collected, or for the pipeline when asked.

use vt100::capture::{BasicFormattedCaptureState, RowContents, basic_formatted_to_plain};

/// Lines kept for a command's output excerpt.
pub(crate) const EXCERPT_LINES: usize = 10;

/// Scroll bookkeeping, owned by the parser and updated as it scrolls.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Rows of the main screen scrolled off its top so far: screen row `r` is absolute row
    /// `scrolled + r`.
    pub scrolled: u64,
    /// Scrolled rows from this absolute row on are kept for an excerpt.
    pub excerpt_from: Option<u64>,
    /// Kept rows (at most [`EXCERPT_LINES`]).
    pub excerpt: Vec<String>,
    /// Keep every scrolled-off row for the caller (the indexing pipeline).
    pub keep_scrolled: bool,
    /// Rows kept for the caller, oldest first.
    pub scrolled_rows: Vec<String>,
}

impl vt100::Callbacks for Tracker {
    fn on_scroll(&mut self, row: RowContents<'_>, alternate_screen: bool) {
        if alternate_screen {
            return;
        }
        let abs = self.scrolled;
        self.scrolled += 1;
        let for_excerpt = self.excerpt_from.is_some_and(|from| abs >= from) && self.excerpt.len() < EXCERPT_LINES;
        if !for_excerpt && !self.keep_scrolled {
            return;
        }
        let mut formatted = String::new();
        let _ = row.write_formatted_basic(&mut formatted, &mut BasicFormattedCaptureState::new());
        let mut text: String = basic_formatted_to_plain(&formatted).collect();
        text.truncate(text.trim_end().len());
        if for_excerpt {
            self.excerpt.push(text.clone());
        }
        if self.keep_scrolled {
            self.scrolled_rows.push(text);
        }
    }
}
