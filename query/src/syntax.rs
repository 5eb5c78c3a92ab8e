//! The search syntax. A query is clauses separated by spaces; every clause must match:
//!
//! | clause | matches |
//! |---|---|
//! | `nginx` | the word `nginx` (case-insensitive) |
//! | `/etc/shadow` | the words `etc`, `shadow` in sequence (punctuation splits words) |
//! | `"systemctl restart nginx"` | the phrase |
//! | `restart*`, `/etc/sha*` | a word starting with `restart`; `etc` then a word starting with `sha` |
//! | `*nginx/sites*`, `*ginx` | the characters anywhere (substring, case-insensitive, any characters) |
//! | `-clause` | excludes what the clause matches |
//!
//! Words and phrases match a command, its output excerpt, or a screen line; substrings
//! match a command or a screen line. A backslash escapes a quote inside a phrase.

use crate::error::{Error, Result};

/// One parsed clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// Words in sequence (one word is a term query).
    Words(String),
    /// Words in sequence, the last one a prefix.
    Prefix(String),
    /// Characters anywhere.
    Substring(String),
}

/// A clause and whether it excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What to match.
    pub clause: Clause,
    /// `-clause`: documents matching it are left out.
    pub exclude: bool,
}

/// Parses a query string.
pub fn parse(query: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut chars = query.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let exclude = first == '-' && {
            chars.next();
            true
        };
        let clause = if chars.peek() == Some(&'"') {
            chars.next();
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    None => return Err(Error::Invalid(format!("unclosed quote in {query:?}"))),
                    Some('"') => break,
                    Some('\\') => phrase.extend(chars.next()),
                    Some(c) => phrase.push(c),
                }
            }
            Clause::Words(phrase)
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
            if exclude && word.is_empty() {
                return Err(Error::Invalid("a lone '-' excludes nothing: write -word".into()));
            }
            classify(&word)?
        };
        parts.push(Part { clause, exclude });
    }
    if parts.is_empty() {
        return Err(Error::Invalid("empty query".into()));
    }
    if parts.iter().all(|p| p.exclude) {
        return Err(Error::Invalid("a query needs at least one clause that is not excluded".into()));
    }
    Ok(parts)
}

fn classify(word: &str) -> Result<Clause> {
    if let Some(inner) = word.strip_prefix('*') {
        let inner = inner.strip_suffix('*').unwrap_or(inner);
        if inner.is_empty() {
            return Err(Error::Invalid("'*' alone matches everything: give some characters".into()));
        }
        return Ok(Clause::Substring(inner.to_string()));
    }
    if let Some(inner) = word.strip_suffix('*') {
        return Ok(Clause::Prefix(inner.to_string()));
    }
    Ok(Clause::Words(word.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Part {
        Part { clause: Clause::Words(s.into()), exclude: false }
    }

    #[test]
    fn table() {
        assert_eq!(parse("nginx").unwrap(), vec![w("nginx")]);
        assert_eq!(parse("  a  b ").unwrap(), vec![w("a"), w("b")]);
        assert_eq!(parse("\"systemctl restart nginx\"").unwrap(), vec![w("systemctl restart nginx")]);
        assert_eq!(parse(r#""say \"hi\"""#).unwrap(), vec![w("say \"hi\"")]);
        assert_eq!(
            parse("restart* *ginx/si* *tail -x").unwrap(),
            vec![
                Part { clause: Clause::Prefix("restart".into()), exclude: false },
                Part { clause: Clause::Substring("ginx/si".into()), exclude: false },
                Part { clause: Clause::Substring("tail".into()), exclude: false },
                Part { clause: Clause::Words("x".into()), exclude: true },
            ]
        );
        assert_eq!(parse("-\"rm -rf\" ls").unwrap()[0], Part { clause: Clause::Words("rm -rf".into()), exclude: true });
        for bad in ["", "   ", "\"open", "-x", "*", "**", "a -"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
