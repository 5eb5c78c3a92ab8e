//! The two tokenizers of the search index.
//!
//! - **words** ([`WORDS`]): runs of letters and digits, lowercased (tantivy's simple
//!   tokenizer). `/etc/shadow` is `etc`, `shadow`; a query is tokenized the same way and
//!   matched as a phrase, so `/etc/shadow` finds exactly that sequence.
//! - **trigrams** ([`TRIGRAMS`]): every run of three characters, case-folded, at its
//!   character position, plus two end-padding characters so every position starts a
//!   trigram. A substring of three characters or more is the phrase of its trigrams
//!   (positions fixed, so the match is exact: no false positives); one or two
//!   characters are a prefix of a trigram. Only the first [`MAX_GRAM_CHARS`] characters of
//!   a text are indexed this way.

use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Name of the word tokenizer.
pub const WORDS: &str = "gh_words";
/// Name of the trigram tokenizer.
pub const TRIGRAMS: &str = "gh_trigrams";
/// Texts are trigram-indexed up to this many characters (bounds index size on huge lines).
pub const MAX_GRAM_CHARS: usize = 4096;
/// The end-padding character: never typed, so no query trigram contains it.
pub const PAD: char = '\u{1}';

/// The word analyzer.
pub(crate) fn words() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(100)).filter(LowerCaser).build()
}

/// Case folding shared by the index and queries: one character in, one out, so character
/// positions stay aligned.
pub fn fold(c: char) -> char {
    if c.is_ascii() { c.to_ascii_lowercase() } else { c.to_lowercase().next().unwrap_or(c) }
}

/// The trigrams of a query substring with their character offsets: every one of them, so
/// the rarest (which drives the postings intersection) is as rare as the text allows.
/// Empty for fewer than three characters.
pub fn query_trigrams(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().map(fold).collect();
    if chars.len() < 3 {
        return Vec::new();
    }
    (0..=chars.len() - 3).map(|i| (i, chars[i..i + 3].iter().collect())).collect()
}

/// Tokenizer emitting padded, case-folded character trigrams.
#[derive(Clone, Default)]
pub struct TrigramTokenizer {
    chars: Vec<char>,
    offsets: Vec<usize>,
}

impl Tokenizer for TrigramTokenizer {
    type TokenStream<'a> = TrigramStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> TrigramStream<'a> {
        self.chars.clear();
        self.offsets.clear();
        for (offset, c) in text.char_indices().take(MAX_GRAM_CHARS) {
            self.chars.push(fold(c));
            self.offsets.push(offset);
        }
        let end = self.offsets.last().map_or(0, |&o| o + text[o..].chars().next().map_or(0, char::len_utf8));
        if !self.chars.is_empty() {
            self.chars.extend([PAD, PAD]);
            self.offsets.extend([end, end]);
        }
        TrigramStream { chars: &self.chars, offsets: &self.offsets, end, next: 0, token: Token::default() }
    }
}

/// The token stream of [`TrigramTokenizer`].
pub struct TrigramStream<'a> {
    chars: &'a [char],
    offsets: &'a [usize],
    end: usize,
    next: usize,
    token: Token,
}

impl TokenStream for TrigramStream<'_> {
    fn advance(&mut self) -> bool {
        let i = self.next;
        if i + 3 > self.chars.len() {
            return false;
        }
        self.next += 1;
        self.token.text.clear();
        self.token.text.extend(&self.chars[i..i + 3]);
        self.token.position = i;
        self.token.offset_from = self.offsets[i];
        self.token.offset_to = self.offsets.get(i + 3).copied().unwrap_or(self.end);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(text: &str) -> Vec<(usize, String)> {
        let mut t = TrigramTokenizer::default();
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while let Some(tok) = s.next() {
            out.push((tok.position, tok.text.clone()));
        }
        out
    }

    #[test]
    fn trigrams_are_padded_folded_and_positioned() {
        let p = PAD;
        assert_eq!(
            grams("Ls -A"),
            vec![
                (0, "ls ".into()),
                (1, "s -".into()),
                (2, " -a".into()),
                (3, format!("-a{p}")),
                (4, format!("a{p}{p}")),
            ]
        );
        assert_eq!(grams("日本語"), vec![(0, "日本語".into()), (1, format!("本語{p}")), (2, format!("語{p}{p}"))]);
        assert!(grams("").is_empty());
        assert_eq!(grams("x"), vec![(0, format!("x{p}{p}"))]);
    }

    #[test]
    fn query_trigrams_cover_the_substring() {
        assert_eq!(query_trigrams("ab"), vec![]);
        assert_eq!(query_trigrams("abc"), vec![(0, "abc".into())]);
        assert_eq!(query_trigrams("abcd"), vec![(0, "abc".into()), (1, "bcd".into())]);
        let grams: Vec<String> = query_trigrams("/etc/NGINX").into_iter().map(|(_, g)| g).collect();
        assert_eq!(grams, ["/et", "etc", "tc/", "c/n", "/ng", "ngi", "gin", "inx"]);
    }
}
