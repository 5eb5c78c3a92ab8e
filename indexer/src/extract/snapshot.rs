//! Reading an accepted line off the screen: from the row that starts with its prompt (the
//! line's own, or a known one) through its wrapped and continued rows.

use super::input::LineStart;
use super::prompt::{self, PromptSig};
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
    /// Where the prompt at the start of `text` ends (a byte index): a known prompt, one
    /// alike, or — with no prompt known yet — a usual prompt ending.
    fn prompt_end_in(&self, text: &str) -> Option<usize> {
        if let Some(p) = self.prompts.known().find(|p| !p.text.trim().is_empty() && text.starts_with(p.text.trim_end()))
        {
            let end = p.text.trim_end().len();
            return Some(if text[end..].starts_with(' ') { end + 1 } else { end });
        }
        prompt::fuzzy_end(text, self.prompts.known())
            .or_else(|| if self.prompts.knows_shell() { None } else { prompt::guess_end(text) })
    }

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
    ///
    /// `from_editor`: the line was ended by the current line editor session (whose start
    /// tells where its prompt is); a cooked-mode line was not.
    pub(super) fn snapshot(
        &self,
        hint: Option<&LineStart>,
        at: Option<u64>,
        rows_below: u16,
        from_editor: bool,
    ) -> Snapshot {
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
        if found.is_none() && hint_sig.is_none() && from_editor {
            // Typed ahead (no key was typed at this prompt): the editor drew its prompt
            // where the cursor was when it started — zsh before starting, so the line
            // begins there; bash right after, so the line begins after the prompt that
            // starts there (known, alike, or guessed; the last row of a multi-row prompt).
            found = self.editor.on_pos.and_then(|(abs, col)| {
                let r0 = u16::try_from(abs.checked_sub(scrolled)?).ok().filter(|r| *r <= crow)?;
                if self.editor.keypad {
                    let t = row_text(r0);
                    return (col > 0)
                        .then(|| (r0, col, Some(PromptSig::new(text::split_at_col(&t, col).0, col)), Some(t)));
                }
                (r0..=crow).find_map(|r| {
                    let t = row_text(r);
                    let from = if r == r0 { col } else { 0 };
                    let (left, rest) = text::split_at_col(&t, from);
                    let end = self.prompt_end_in(rest)?;
                    let col = from + text::width(&rest[..end]);
                    // (What the terminal echoed before the prompt is not part of it.)
                    let sig =
                        PromptSig { text: format!("{left}{}", &rest[..end]), col, logical: rest[..end].to_string() };
                    Some((r, col, Some(sig), Some(t)))
                })
            });
        }
        if found.is_none() {
            let typed_ahead = hint_sig.is_none();
            // A line typed ahead cannot start above where its editor session started.
            let lowest = self
                .editor
                .on_pos
                .filter(|_| typed_ahead && from_editor)
                .and_then(|(abs, _)| u16::try_from(abs.checked_sub(scrolled)?).ok())
                .filter(|r| *r <= crow)
                .unwrap_or(0);
            found = (lowest..=crow).rev().find_map(|r| {
                let t = row_text(r);
                let hit = self.prompts.known().find(|s| text::starts_with(&t, s)).map(|s| (s.col, s.clone()));
                let hit = hit.or_else(|| {
                    if !typed_ahead {
                        return None;
                    }
                    // Typed ahead: bash may have drawn its prompt right after the keys the
                    // terminal echoed while a command ran, and a prompt may have changed
                    // since it was learned (a clock, a directory in it).
                    self.prompts.known().find_map(|s| text::find_in_row(&t, s).map(|c| (c, s.clone()))).or_else(|| {
                        let end = prompt::fuzzy_end(&t, self.prompts.known())?;
                        let col = text::width(&t[..end]);
                        Some((col, PromptSig::new(t[..end].to_string(), col)))
                    })
                });
                hit.map(|(col, sig)| (r, col, Some(sig), Some(t)))
            });
        }
        if found.is_none() && hint_sig.is_none() {
            // Typed ahead at a prompt never seen (before the shell's first prompt, or a
            // program's): guess where the prompt ends.
            let r = text::wrapped_start(screen, crow);
            let t = row_text(r);
            found = prompt::guess_end(&t).map(|end| {
                let col = text::width(&t[..end]);
                (r, col, Some(PromptSig::new(t[..end].to_string(), col)), Some(t))
            });
        }
        let (row, col, sig, text) = found.unwrap_or((text::wrapped_start(screen, crow), 0, None, None));
        let mut lines = match text {
            Some(t) if end == row => vec![text::split_at_col(&t, col).1.to_string()],
            _ => text::region(screen, row, col, end.max(row)),
        };
        let rprompt = hint.and_then(|h| h.rprompt.as_ref()).or(self.editor.on_rprompt.as_ref().filter(|_| from_editor));
        if let (Some(first), Some(rp)) = (lines.first_mut(), rprompt) {
            text::strip_rprompt(first, rp);
        } else if end == row
            && self.prompts.has_right_prompt()
            && let Some(first) = lines.first_mut()
        {
            text::strip_right_aligned(first, col, screen.size().1.get());
        }
        Snapshot { lines, sig }
    }
}
