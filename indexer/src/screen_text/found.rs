//! The distinct screen lines found, stored as one text buffer plus offsets.
//!
//! A long session has hundreds of thousands of distinct lines; a `String` each made their
//! allocation and freeing the largest cost of the screen text after the emulation itself.
//! Appending to one buffer costs a copy; consumers read `&str` slices of it.

use gatehouse_recorder::Micros;

/// One distinct line of screen text (borrowed from its [`ScreenLines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenLine<'a> {
    /// When it was first seen, µs since session start.
    pub t: Micros,
    /// The text, trimmed and non-empty.
    pub text: &'a str,
}

/// Distinct lines of screen text, in the order they were found.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct ScreenLines {
    /// Every line's text, one after the other.
    text: String,
    /// Per line: when it was first seen, and where its text ends in `text`.
    ends: Vec<(Micros, usize)>,
}

impl ScreenLines {
    /// How many lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ScreenLine<'_>> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(t, end)| {
            let text = &self.text[start..end];
            start = end;
            ScreenLine { t, text }
        })
    }

    /// Adds a line seen at `t`, trimmed; an empty line is not added.
    pub fn push(&mut self, t: Micros, text: &str) {
        let start = self.text.len();
        self.text.push_str(text.trim());
        if self.text.len() > start {
            self.ends.push((t, self.text.len()));
        }
    }

    /// Adds a line of raw output bytes (UTF-8 as the program sent it; invalid sequences
    /// become U+FFFD), trimmed; an empty line is not added.
    pub(crate) fn push_bytes(&mut self, t: Micros, line: &[u8]) {
        match std::str::from_utf8(line) {
            Ok(text) => self.push(t, text),
            Err(_) => self.push(t, &String::from_utf8_lossy(line)),
        }
    }

    /// Moves the lines of `other` to the end of these.
    pub fn append(&mut self, other: ScreenLines) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let base = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|&(t, end)| (t, base + end)));
    }

    /// Room for `bytes` more bytes of text.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }
}

impl std::fmt::Debug for ScreenLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a ScreenLines {
    type Item = ScreenLine<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = ScreenLine<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(lines: &ScreenLines) -> Vec<(Micros, &str)> {
        lines.iter().map(|l| (l.t, l.text)).collect()
    }

    #[test]
    fn lines_are_trimmed_and_empty_ones_dropped() {
        let mut lines = ScreenLines::default();
        lines.push(1, "  alpha ");
        lines.push(2, " \u{3000} ");
        lines.push_bytes(3, b"caf\xc3\xa9\xff ");
        lines.push(4, "beta");
        assert_eq!(pairs(&lines), [(1, "alpha"), (3, "café\u{fffd}"), (4, "beta")]);
        assert_eq!(lines.len(), 3);
        assert_eq!((&lines).into_iter().len(), 3);
    }

    #[test]
    fn append_keeps_order_and_times() {
        let mut a = ScreenLines::default();
        a.append({
            let mut first = ScreenLines::default();
            first.push(1, "one");
            first
        });
        let mut b = ScreenLines::default();
        b.push(2, "two");
        b.push(3, "three");
        a.append(b);
        a.append(ScreenLines::default());
        assert_eq!(pairs(&a), [(1, "one"), (2, "two"), (3, "three")]);
        assert_eq!(format!("{a:?}").matches("ScreenLine").count(), 3);
    }
}
