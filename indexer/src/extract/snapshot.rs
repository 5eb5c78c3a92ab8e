//! Reading an accepted line off the screen: from the row that starts with its prompt (the
//! line's own, or a known one) through its wrapped and continued rows.

use super::input::LineStart;
use super::prompt::PromptSig;
use super::{Extractor, text};

/// A typed line as read from the screen.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// Logical lines (wrapped rows joined).
    pub(super) lines: Vec<String>,
    /// The prompt the line was typed at, if found.
    pub(super) sig: Option<PromptSig>,
}

impl Extractor {
    pub(super) fn cursor_abs(&self) -> (u64, u16) {
        let (row, col) = self.parser.screen().cursor_position();
        (self.parser.callbacks().scrolled + u64::from(row), col)
    }

    /// Reads the line that ends at the cursor's row, starting after its prompt: the row
    /// (nearest the cursor) that starts with the line's own prompt, else with a known
    /// prompt; typed ahead, also a known prompt drawn mid-row.
    ///
    /// `at`: the absolute row the line ends on (default: the cursor's); `rows_below`: the
    /// line continues that many rows further down.
    pub(super) fn snapshot(&self, hint: Option<&LineStart>, at: Option<u64>, rows_below: u16) -> Snapshot {
        let screen = self.parser.screen();
        let (cursor_row, _) = screen.cursor_position();
        let scrolled = self.parser.callbacks().scrolled;
        let crow = at
            .and_then(|abs| abs.checked_sub(scrolled))
            .and_then(|r| u16::try_from(r).ok())
            .filter(|r| *r <= cursor_row)
            .unwrap_or(cursor_row);
        let last_row = screen.size().0.get() - 1;
        let end = text::wrapped_end(screen, crow.saturating_add(rows_below).min(last_row));
        let hint_sig = hint.and_then(|h| h.sig.as_ref());
        // (row, column where typing starts, prompt, the row's text if read)
        let mut found: Option<(u16, u16, Option<PromptSig>, Option<String>)> = None;
        if let Some(sig) = hint_sig.filter(|s| s.col == 0) {
            // No prompt: the line starts where typing started, if still on screen.
            let row = hint
                .and_then(|h| h.pos)
                .and_then(|(abs, _)| abs.checked_sub(scrolled))
                .and_then(|r| u16::try_from(r).ok())
                .filter(|r| *r <= crow)
                .unwrap_or_else(|| text::wrapped_start(screen, crow));
            found = Some((row, 0, Some(sig.clone()), None));
        }
        let mut rows: Vec<Option<String>> = vec![None; usize::from(crow) + 1];
        let mut row_text =
            |r: u16| -> String { rows[usize::from(r)].get_or_insert_with(|| text::read_row(screen, r)).clone() };
        if let Some(sig) = hint_sig.filter(|s| s.col > 0) {
            found = (0..=crow).rev().find_map(|r| {
                let t = row_text(r);
                text::starts_with(&t, sig).then(|| (r, sig.col, Some(sig.clone()), Some(t)))
            });
        }
        if found.is_none() {
            let typed_ahead = hint_sig.is_none();
            found = (0..=crow).rev().find_map(|r| {
                let t = row_text(r);
                let hit = self.prompts.known().find(|s| text::starts_with(&t, s)).map(|s| (s.col, s.clone()));
                let hit = hit.or_else(|| {
                    // Typed ahead: bash may have drawn its prompt right after the keys the
                    // terminal echoed while a command ran.
                    typed_ahead
                        .then(|| self.prompts.known().find_map(|s| text::find_in_row(&t, s).map(|c| (c, s.clone()))))
                        .flatten()
                });
                hit.map(|(col, sig)| (r, col, Some(sig), Some(t)))
            });
        }
        if found.is_none() && hint_sig.is_none() {
            // Typed ahead at a prompt never seen before: where the editor started, if it
            // drew its prompt first (zsh) and that row is still the line's.
            found = self.editor.on_pos.filter(|(_, col)| *col > 0).and_then(|(abs, col)| {
                let r = u16::try_from(abs.checked_sub(scrolled)?).ok().filter(|r| *r <= crow)?;
                let t = row_text(r);
                let sig = PromptSig::new(text::split_at_col(&t, col).0, col);
                Some((r, col, Some(sig), Some(t)))
            });
        }
        let (row, col, sig, text) = found.unwrap_or((text::wrapped_start(screen, crow), 0, None, None));
        let mut lines = match text {
            Some(t) if end == row => vec![text::split_at_col(&t, col).1.to_string()],
            _ => text::region(screen, row, col, end.max(row)),
        };
        if let (Some(first), Some(rp)) = (lines.first_mut(), hint.and_then(|h| h.rprompt.as_ref())) {
            text::strip_rprompt(first, rp);
        }
        Snapshot { lines, sig }
    }
}
