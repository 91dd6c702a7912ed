//! Wildcard patterns for task names and parameter values: `*`, `?` and `[abc]` / `[a-z]`
//! classes, matched case-insensitively the way PowerShell compares command names.
//!
//! INVARIANT: a [`Glob`] holds lowercase tokens only; callers lowercase the text they match
//! ([`Glob::matches`] does it for them, [`Glob::matches_lower`] expects it done).

use std::fmt;

/// One element of a compiled glob: 8 bytes, so a policy of many literal names stays small.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, including none.
    Star,
    /// `[...]`: one character from the ranges of the glob's class at this index (a single
    /// character is a range of one).
    Class(u32),
}

/// The ranges of one `[...]` class.
type Ranges = Box<[(char, char)]>;

/// A compiled, case-insensitive wildcard pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: Box<str>,
    toks: Box<[Tok]>,
    /// The `[...]` classes, in order of appearance.
    classes: Box<[Ranges]>,
}

/// How a glob can be looked up without trying it against every name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// No wildcard at all: the lowercase literal.
    Exact(String),
    /// `literal*`: the lowercase literal prefix (empty for `*`).
    Prefix(String),
    /// `*literal`: the lowercase literal suffix.
    Suffix(String),
    /// Anything else: the lowercase literal text before the first wildcard.
    Other(String),
}

impl Glob {
    /// Compiles `text`; the error names the problem (the caller adds which pattern).
    pub fn new(text: &str) -> Result<Glob, String> {
        let mut toks = Vec::new();
        let mut classes: Vec<Ranges> = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    // `**` means the same as `*`; keep one so matching stays linear.
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::One),
                '[' => {
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    let mut prev: Option<char> = None;
                    let mut pending_dash = false;
                    for c in chars.by_ref() {
                        match c {
                            ']' => {
                                closed = true;
                                break;
                            }
                            '-' if prev.is_some() && !pending_dash => pending_dash = true,
                            c => {
                                let c = lower_char(c);
                                if pending_dash {
                                    let lo = prev.take().unwrap_or(c);
                                    ranges.pop();
                                    if lo > c {
                                        return Err(format!("reversed range `{lo}-{c}`"));
                                    }
                                    ranges.push((lo, c));
                                    pending_dash = false;
                                } else {
                                    ranges.push((c, c));
                                    prev = Some(c);
                                }
                            }
                        }
                    }
                    if !closed {
                        return Err("unclosed `[`".to_string());
                    }
                    if pending_dash {
                        // A trailing `-` (`[a-]`) is a literal dash.
                        ranges.push(('-', '-'));
                    }
                    if ranges.is_empty() {
                        return Err(format!(
                            "pattern `{text}` has an empty character class `[]`"
                        ));
                    }
                    let Ok(n) = u32::try_from(classes.len()) else {
                        return Err("too many character classes".to_string());
                    };
                    classes.push(ranges.into_boxed_slice());
                    toks.push(Tok::Class(n));
                }
                ']' => return Err("`]` without its `[`".to_string()),
                c => toks.push(Tok::Lit(lower_char(c))),
            }
        }
        Ok(Glob {
            text: text.into(),
            toks: toks.into_boxed_slice(),
            classes: classes.into_boxed_slice(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no wildcard (it matches one name only).
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    /// Case-insensitive match of the whole of `text`.
    pub fn matches(&self, text: &str) -> bool {
        let lower: Vec<char> = text.chars().map(lower_char).collect();
        self.matches_lower(&lower)
    }

    /// Match against text already lowercased with [`lower_char`] and split into chars.
    ///
    /// Classic single-backtrack wildcard matching: O(pattern × text), no recursion.
    pub(crate) fn matches_lower(&self, text: &[char]) -> bool {
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            let tok = self.toks.get(p);
            let ch = text.get(t);
            match (tok, ch) {
                (Some(Tok::Star), _) => {
                    star = Some((p, t));
                    p += 1;
                }
                (Some(&tok), Some(&c)) if self.accepts(tok, c) => {
                    p += 1;
                    t += 1;
                }
                (None, None) => return true,
                _ => match star {
                    // Let the last `*` swallow one more character and retry.
                    Some((sp, st)) if st < text.len() => {
                        star = Some((sp, st + 1));
                        p = sp + 1;
                        t = st + 1;
                    }
                    _ => return false,
                },
            }
        }
    }

    /// The lowercase literal text before the first wildcard.
    fn literal_prefix(&self) -> String {
        self.toks
            .iter()
            .map_while(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn shape(&self) -> Shape {
        let wild: Vec<usize> = self
            .toks
            .iter()
            .enumerate()
            .filter(|(_, t)| !matches!(t, Tok::Lit(_)))
            .map(|(i, _)| i)
            .collect();
        let lits = |toks: &[Tok]| -> String {
            toks.iter()
                .filter_map(|t| match t {
                    Tok::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        match wild.as_slice() {
            [] => Shape::Exact(lits(&self.toks)),
            [i] if *i + 1 == self.toks.len() && self.toks.last() == Some(&Tok::Star) => {
                Shape::Prefix(self.literal_prefix())
            }
            [0] if self.toks.first() == Some(&Tok::Star) => Shape::Suffix(lits(&self.toks)),
            _ => Shape::Other(self.literal_prefix()),
        }
    }

    /// True when every name this glob matches is also matched by `other` (a sound but partial
    /// test, used by lint: it may answer false for some subsumed pairs, never true wrongly).
    pub(crate) fn subsumed_by(&self, other: &Glob) -> bool {
        if self.is_literal() {
            let lit: Vec<char> = self.toks.iter().filter_map(Tok::lit).collect();
            return other.matches_lower(&lit);
        }
        match (self.shape(), other.shape()) {
            (_, Shape::Prefix(p)) if p.is_empty() => true,
            (Shape::Prefix(a), Shape::Prefix(b)) => a.starts_with(&b),
            (Shape::Other(a), Shape::Prefix(b)) => a.starts_with(&b),
            (Shape::Suffix(a), Shape::Suffix(b)) => a.ends_with(&b),
            _ => self.toks == other.toks && self.classes == other.classes,
        }
    }

    fn accepts(&self, tok: Tok, c: char) -> bool {
        match tok {
            Tok::Lit(l) => l == c,
            Tok::One => true,
            Tok::Star => false,
            Tok::Class(i) => self
                .classes
                .get(i as usize)
                .is_some_and(|ranges| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))),
        }
    }
}

impl Tok {
    fn lit(&self) -> Option<char> {
        match self {
            Tok::Lit(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

/// Simple one-to-one lowercase mapping (characters whose lowercase form is several characters
/// keep their first one, so lengths in characters are preserved).
pub(crate) fn lower_char(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// A lowercase name, and its chars when a glob needs them: most lookups are settled by the
/// name's bytes (a hash probe, trie walks), so the chars are split only for the glob matches
/// that happen.
pub(crate) struct LowerName<'a> {
    text: &'a str,
    chars: std::cell::OnceCell<Vec<char>>,
}

impl<'a> LowerName<'a> {
    /// `text` must already be lowercase (see [`lower`]).
    pub(crate) fn new(text: &'a str) -> Self {
        LowerName {
            text,
            chars: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn chars(&self) -> &[char] {
        self.chars.get_or_init(|| self.text.chars().collect())
    }
}

/// Calls `f` with `text` lowercased as [`lower`] does, on the stack for the short ASCII names
/// commands have: a line's decision then lowercases its names without allocating.
pub(crate) fn with_lower<T>(text: &str, f: impl FnOnce(&str) -> T) -> T {
    // ASCII lowercases alike under `lower_char` and `str::to_lowercase`; beyond it they differ,
    // hence this function's own fallback.
    let mut buf = [0u8; 64];
    match crate::catalog::ascii_lower(text, &mut buf).and_then(|l| std::str::from_utf8(l).ok()) {
        Some(l) => f(l),
        None => f(&lower(text)),
    }
}

/// `text` lowercased with [`lower_char`].
pub(crate) fn lower(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    out.extend(text.chars().map(lower_char));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests report failure by panicking")]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn star_question_and_classes() {
        assert!(g("Get-*").matches("get-mailbox"));
        assert!(g("Get-*").matches("Get-"));
        assert!(!g("Get-*").matches("Set-Mailbox"));
        assert!(g("*-Mailbox").matches("Set-MAILBOX"));
        assert!(g("?et-*Request").matches("Set-MoveRequest"));
        assert!(!g("?et-*Request").matches("Set-MoveRequests"));
        assert!(g("[gs]et-mailbox").matches("Set-Mailbox"));
        assert!(!g("[gs]et-mailbox").matches("Net-Mailbox"));
        assert!(g("[a-c]x").matches("Bx"));
        assert!(!g("[a-c]x").matches("dx"));
        assert!(g("*a*b*").matches("xxaxxbxx"));
        assert!(!g("*a*b*").matches("xxbxxaxx"));
        assert!(g("*").matches(""));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        assert!(Glob::new("Get-[abc").unwrap_err().contains("unclosed `[`"));
        assert!(Glob::new("Get-[]")
            .unwrap_err()
            .contains("empty character class"));
        assert!(Glob::new("Get-]").unwrap_err().contains("without its `[`"));
        assert!(Glob::new("[z-a]").unwrap_err().contains("reversed range"));
    }

    #[test]
    fn shapes_drive_indexing() {
        assert_eq!(g("Get-Mailbox").shape(), Shape::Exact("get-mailbox".into()));
        assert_eq!(g("Get-*").shape(), Shape::Prefix("get-".into()));
        assert_eq!(g("*").shape(), Shape::Prefix(String::new()));
        assert_eq!(g("*-Mailbox").shape(), Shape::Suffix("-mailbox".into()));
        assert_eq!(g("Get-*Box").shape(), Shape::Other("get-".into()));
        assert_eq!(g("?et-x").shape(), Shape::Other(String::new()));
    }

    #[test]
    fn subsumption_is_sound() {
        assert!(g("Get-Mailbox").subsumed_by(&g("Get-*")));
        assert!(g("Get-Mail*").subsumed_by(&g("Get-*")));
        assert!(!g("Get-*").subsumed_by(&g("Get-Mail*")));
        assert!(g("*-Mailbox").subsumed_by(&g("*box")));
        assert!(g("Get-*").subsumed_by(&g("*")));
    }
}
