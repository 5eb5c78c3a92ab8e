//! What the extractor learns about prompts: which prompt texts belong to the shell (so a
//! line typed after `>>> ` or `mysql> ` is program input, not a shell command), which are
//! its continuation prompts, and the working directory a prompt shows.
//!
//! Prompts are learned from the screen, never configured: the first prompt a line is
//! typed at is the shell's; later prompts count as the shell's when they are *similar* to
//! one already known — they share most of their text at both ends, as happens when the
//! directory, an exit status or a clock inside the prompt changes.

/// The text on a prompt row left of where typing starts, as screen cells (an empty cell
/// reads as a space), with its width in cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptSig {
    /// Cell text of columns `0..col`.
    pub text: String,
    /// Where typing starts.
    pub col: u16,
    /// The whole prompt line when it wrapped onto the row from rows above (else `text`):
    /// what is compared to other prompts and where the directory is read.
    pub logical: String,
}

impl PromptSig {
    /// A prompt that fits on its row.
    pub(crate) fn new(text: String, col: u16) -> PromptSig {
        PromptSig { logical: text.clone(), text, col }
    }
}

/// How many prompts of each kind are remembered (most recent first). Prompts change with
/// the directory; a few are enough to recognise the shell and to find a line's start.
const KEEP: usize = 12;

/// The prompts seen so far.
#[derive(Debug, Default)]
pub(crate) struct PromptModel {
    shell: Vec<PromptSig>,
    continuation: Vec<PromptSig>,
    /// Prompts have shown text on the right (zsh `RPROMPT`).
    right: bool,
}

impl PromptModel {
    /// Whether a line typed after `sig` goes to the shell. Before any shell prompt is
    /// known, the first prompt is taken to be the shell's.
    pub(crate) fn is_shell(&self, sig: &PromptSig) -> bool {
        self.shell.is_empty() || self.shell.iter().any(|p| similar(&p.logical, &sig.logical))
    }

    /// Text was seen right of where typing starts (a right prompt).
    pub(crate) fn saw_right_prompt(&mut self) {
        self.right = true;
    }

    /// Whether prompts in this session show text on the right.
    pub(crate) fn has_right_prompt(&self) -> bool {
        self.right
    }

    /// Whether a shell prompt has been seen.
    pub(crate) fn knows_shell(&self) -> bool {
        !self.shell.is_empty()
    }

    /// Whether `sig` is a known continuation prompt (bash `PS2`, zsh `for> `…).
    pub(crate) fn is_continuation(&self, sig: &PromptSig) -> bool {
        self.continuation.iter().any(|p| p.text.trim_end() == sig.text.trim_end())
    }

    /// Whether `sig` reads as a fresh shell prompt rather than a continuation prompt.
    pub(crate) fn is_primary(&self, sig: &PromptSig) -> bool {
        !self.is_continuation(sig) && !self.shell.is_empty() && self.is_shell(sig)
    }

    pub(crate) fn learn_shell(&mut self, sig: &PromptSig) {
        remember(&mut self.shell, sig);
    }

    pub(crate) fn learn_continuation(&mut self, sig: &PromptSig) {
        remember(&mut self.continuation, sig);
    }

    /// Known prompts, most useful first: for finding where a line starts on screen.
    pub(crate) fn known(&self) -> impl Iterator<Item = &PromptSig> + Clone {
        self.shell.iter().chain(self.continuation.iter())
    }
}

fn remember(list: &mut Vec<PromptSig>, sig: &PromptSig) {
    if sig.text.trim().is_empty() {
        return;
    }
    list.retain(|p| p != sig);
    list.insert(0, sig.clone());
    list.truncate(KEEP);
}

/// Whether two prompt texts are the same prompt with a changed part in the middle (or a
/// changed end, like a directory at the end of the prompt): the common prefix and suffix
/// cover at least half of the shorter one. Short prompts (`$ `, `> `) must match exactly.
pub(crate) fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end(), b.trim_end());
    if a == b {
        return true;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let min = a.len().min(b.len());
    if min <= 2 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    let shared = (prefix + suffix).min(min);
    shared * 2 >= min && shared >= 2
}

/// How alike two prompt texts are, from 0 to 1: the share of the longer one covered by
/// their common prefix and suffix (a clock or a directory changing inside a prompt leaves
/// most of it in place).
pub(crate) fn likeness(a: &str, b: &str) -> f64 {
    let (a, b) = (a.trim_end(), b.trim_end());
    if a == b {
        return 1.0;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (min, max) = (a.len().min(b.len()), a.len().max(b.len()));
    if min <= 2 {
        return 0.0;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    (prefix + suffix).min(min) as f64 / max as f64
}

/// Where a prompt like one of `known` ends in a row of text, when no known prompt starts it
/// exactly: the end of the best-matching blank-terminated prefix (its byte index), if it
/// is alike enough.
pub(crate) fn fuzzy_end<'a>(row: &str, known: impl Iterator<Item = &'a PromptSig> + Clone) -> Option<usize> {
    const ALIKE: f64 = 0.75;
    let mut best: Option<(f64, usize)> = None;
    for (i, _) in row.char_indices().filter(|(i, c)| *c == ' ' && *i > 0) {
        let end = i + 1;
        let prefix = &row[..end];
        for p in known.clone() {
            let score = likeness(prefix, &p.logical);
            if score >= ALIKE && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, end));
            }
        }
    }
    best.map(|(_, end)| end)
}

/// Where a prompt most likely ends in a row of text when no prompt is known at all (a line
/// typed before the shell's first prompt): after the first usual prompt terminator
/// (`$ `, `# `, `% `, `> `, `❯ `…) near the start of the row.
pub(crate) fn guess_end(row: &str) -> Option<usize> {
    const ENDS: &[&str] = &["$ ", "# ", "% ", "> ", "❯ ", "» ", "➜ ", "λ "];
    const NEAR: usize = 64;
    ENDS.iter().filter_map(|e| row.find(e).map(|i| i + e.len())).filter(|end| *end <= NEAR).min()
}

/// The working directory a prompt shows, if any: the last word that is a path
/// (`~`, `~/x`, `/x`), after a `user@host:` prefix, without the prompt's punctuation.
pub(crate) fn cwd(prompt: &str) -> Option<String> {
    let mut found = None;
    for word in prompt.split_whitespace() {
        let word = word.trim_start_matches(['[', '(', '{', '<']);
        let word = match word.rfind(':') {
            Some(i) if word[i + 1..].starts_with(['~', '/']) => &word[i + 1..],
            _ => word,
        };
        if !word.starts_with(['~', '/']) {
            continue;
        }
        let path = word.trim_end_matches(['#', '$', '%', '>', ']', ')', '}', ':', '❯', '»', '➜']);
        if path.is_empty() || (path.len() > 1 && path.starts_with("//")) {
            continue;
        }
        found = Some(path.to_string());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("root@box:~# ", "root@box:~# ", true),
            ("root@box:~# ", "root@box:/tmp# ", true),
            ("root@box:~# ", "root@box:/var/log/nginx/old# ", true),
            ("[ops@web01 ~]$ ", "[ops@web01 tmp]$ ", true),
            ("root@jump ~ # ", "root@jump tmp # ", true),
            ("➜  ~ ", "➜  proj ", true),
            ("[0] $ ", "[130] $ ", true),
            ("fooroot@box:~# ", "root@box:~# ", true),
            ("$ ", "$ ", true),
            ("$ ", "> ", false),
            ("$ ", ">>> ", false),
            ("# ", "Password: ", false),
            ("root@box:~# ", ">>> ", false),
            ("root@box:~# ", "sqlite> ", false),
            ("root@box:~# ", "mysql> ", false),
            ("root@box:~# ", "Name: ", false),
            ("❯ ", "sqlite> ", false),
            ("box> ", ">>> ", false),
            ("root@box:~# ", "ops@other:~$ ", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(similar(a, b), *want, "{a:?} vs {b:?}");
            assert_eq!(similar(b, a), *want, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn fuzzy_prompt_table() {
        let known = [PromptSig::new("19:23:48 root:~# ".into(), 17), PromptSig::new("[ops@web01 ~]$ ".into(), 15)];
        let cases: &[(&str, Option<&str>)] = &[
            ("19:23:49 root:~# echo pasted-two", Some("echo pasted-two")),
            ("[ops@web01 tmp]$ ls -la", Some("ls -la")),
            ("echo something else entirely", None),
            ("pasted-one", None),
        ];
        for (row, want) in cases {
            let got = fuzzy_end(row, known.iter()).map(|end| &row[end..]);
            assert_eq!(got, *want, "{row:?}");
        }
    }

    #[test]
    fn guessed_prompt_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("# echo sleep 0.2", Some("echo sleep 0.2")),
            ("root@box:~# ls -la", Some("ls -la")),
            ("ops@h:~$ echo $HOME > out", Some("echo $HOME > out")),
            ("❯ git status", Some("git status")),
            ("plain text", None),
        ];
        for (row, want) in cases {
            assert_eq!(guess_end(row).map(|end| &row[end..]), *want, "{row:?}");
        }
    }

    #[test]
    fn cwd_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("root@box:~# ", Some("~")),
            ("ops@web01:~/src/app$ ", Some("~/src/app")),
            ("root@box:/var/log# ", Some("/var/log")),
            ("[ops@web01 ~]$ ", Some("~")),
            ("[ops@web01 tmp]$ ", None),
            ("root@jump ~ # ", Some("~")),
            ("(venv) ops@h:~/proj$ ", Some("~/proj")),
            ("$ ", None),
            (">>> ", None),
            ("❯ ", None),
        ];
        for (prompt, want) in cases {
            assert_eq!(cwd(prompt).as_deref(), *want, "{prompt:?}");
        }
    }

    #[test]
    fn model_learns_the_first_prompt_as_the_shell() {
        let sig = |t: &str| PromptSig::new(t.to_string(), t.chars().count() as u16);
        let mut m = PromptModel::default();
        assert!(m.is_shell(&sig(">>> ")), "anything goes before the shell is known");
        m.learn_shell(&sig("root@box:~# "));
        assert!(m.is_shell(&sig("root@box:/etc# ")));
        assert!(!m.is_shell(&sig(">>> ")));
        m.learn_continuation(&sig("> "));
        assert!(m.is_continuation(&sig("> ")));
        assert!(!m.is_primary(&sig("> ")));
        assert!(m.is_primary(&sig("root@box:~# ")));
    }
}
