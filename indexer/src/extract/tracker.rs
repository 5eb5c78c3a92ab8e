//! The `vt100` callbacks of the session's parser: counts rows scrolled off the top (so a
//! position stays valid while output scrolls) and, when the caller asks, keeps the text of
//! rows that scroll away.

use vt100::capture::{BasicFormattedCaptureState, RowContents, basic_formatted_to_plain};

/// Scroll bookkeeping, owned by the parser and updated as it scrolls.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Rows of the main screen scrolled off its top so far: screen row `r` is absolute row
    /// `scrolled + r`.
    pub scrolled: u64,
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
        self.scrolled += 1;
        if self.keep_scrolled {
            let mut formatted = String::new();
            let _ = row.write_formatted_basic(&mut formatted, &mut BasicFormattedCaptureState::new());
            let mut text: String = basic_formatted_to_plain(&formatted).collect();
            text.truncate(text.trim_end().len());
            self.scrolled_rows.push(text);
        }
    }
}
