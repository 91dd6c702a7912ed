//! A fast reader for the plain TOML that policy files are written in, straight into the raw
//! rule shapes: no document tree, no copies of keys, a few allocations per rule.
//!
//! It accepts only a strict subset (`version`, `[defaults]`, `[roles."NAME"]`, `[[rule]]`;
//! bare or quoted keys, dotted `when.*` and `params.*` keys; single-line basic and literal
//! strings, decimal integers, arrays of strings, inline constraint tables; comments) and
//! answers `None` for anything else: unknown or repeated keys, other value types, missing
//! required fields, control characters, multi-line strings. A `None` sends the file to the full
//! TOML parser, which gives the same result or the precise error, so this reader never has to
//! produce an error itself. Spans follow the full parser's (a string's includes its quotes, an
//! array's its brackets), and a load that finds any error is redone with the full parser, so
//! messages and positions never depend on which reader ran.

use std::collections::BTreeMap;

use toml::Spanned;

use super::load::{RawConstraint, RawDefaults, RawFile, RawParams, RawRole, RawRule, RawWhen};

/// The file as the full parser would deserialise it, or `None` when it is outside the subset.
pub(crate) fn parse(text: &str) -> Option<RawFile> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.file()
}

/// A `[roles."NAME"]` table being read: its name, `tasks` and `description`.
type RolePart = (
    Spanned<String>,
    Option<Spanned<Vec<Spanned<String>>>>,
    Option<String>,
);

/// Which table the following `key = value` lines belong to.
enum Table {
    Root,
    Defaults,
    Role(Spanned<String>),
    Rule(usize),
}

/// A rule under construction: the required fields are checked when the file ends.
#[derive(Default)]
struct PartRule {
    start: usize,
    end: usize,
    id: Option<Spanned<String>>,
    effect: Option<Spanned<String>>,
    tasks: Option<Spanned<Vec<Spanned<String>>>>,
    except: Option<Vec<Spanned<String>>>,
    approval: Option<Spanned<String>>,
    approvers: Option<Spanned<Vec<Spanned<String>>>>,
    requesters: Option<Spanned<Vec<Spanned<String>>>>,
    max_duration: Option<Spanned<String>>,
    min_approvals: Option<Spanned<i64>>,
    offline: Option<Spanned<String>>,
    any_param: Option<Spanned<Vec<Spanned<String>>>>,
    no_param: Option<Spanned<Vec<Spanned<String>>>>,
    has_when: bool,
    only: Option<Spanned<Vec<Spanned<String>>>>,
    values: Vec<(Spanned<String>, Spanned<RawConstraint>)>,
    has_params: bool,
    description: Option<String>,
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

/// Sets `slot` once; a second value for the same key is outside the subset.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn file(&mut self) -> Option<RawFile> {
        let mut version: Option<Spanned<i64>> = None;
        let mut defaults: Option<RawDefaults> = None;
        let mut roles: BTreeMap<Spanned<String>, RawRole> = BTreeMap::new();
        let mut role_parts: Vec<RolePart> = Vec::new();
        let mut rules: Vec<PartRule> = Vec::new();
        let mut table = Table::Root;
        if self.text.starts_with('\u{feff}') {
            return None;
        }
        loop {
            self.blank_lines()?;
            let Some(c) = self.peek() else { break };
            if c == b'[' {
                let start = self.i;
                if self.s.get(self.i + 1) == Some(&b'[') {
                    self.i += 2;
                    self.ws();
                    let key = self.key()?;
                    self.ws();
                    if key.get_ref() != "rule" || !self.eat(b']') || !self.eat(b']') {
                        return None;
                    }
                    if let Some(last) = rules.last_mut() {
                        last.end = start;
                    }
                    rules.push(PartRule {
                        start,
                        ..PartRule::default()
                    });
                    table = Table::Rule(rules.len() - 1);
                } else {
                    self.i += 1;
                    self.ws();
                    let first = self.key()?;
                    self.ws();
                    match first.get_ref().as_str() {
                        "defaults" if self.eat(b']') => {
                            if defaults.is_some() {
                                return None;
                            }
                            defaults = Some(RawDefaults {
                                unmatched: None,
                                dynamic: None,
                                platform: None,
                            });
                            table = Table::Defaults;
                        }
                        "roles" if self.eat(b'.') => {
                            self.ws();
                            let name = self.key()?;
                            self.ws();
                            if !self.eat(b']') {
                                return None;
                            }
                            if role_parts
                                .iter()
                                .any(|(n, _, _)| n.get_ref() == name.get_ref())
                            {
                                return None;
                            }
                            role_parts.push((name.clone(), None, None));
                            table = Table::Role(name);
                        }
                        _ => return None,
                    }
                    if let Some(last) = rules.last_mut() {
                        if last.end == 0 {
                            last.end = start;
                        }
                    }
                }
                self.line_end()?;
                continue;
            }
            // key = value
            let key = self.key()?;
            self.ws();
            let sub = if self.eat(b'.') {
                self.ws();
                let k = self.key()?;
                self.ws();
                Some(k)
            } else {
                None
            };
            if !self.eat(b'=') {
                return None;
            }
            self.ws();
            let k = key.get_ref().as_str();
            match &table {
                Table::Root => match (k, &sub) {
                    ("version", None) => once(&mut version, self.int()?)?,
                    _ => return None,
                },
                Table::Defaults => {
                    let d = defaults.as_mut()?;
                    let slot = match (k, &sub) {
                        ("unmatched", None) => &mut d.unmatched,
                        ("dynamic", None) => &mut d.dynamic,
                        ("platform", None) => &mut d.platform,
                        _ => return None,
                    };
                    once(slot, self.string()?)?;
                }
                Table::Role(name) => {
                    let (_, tasks, description) = role_parts
                        .iter_mut()
                        .find(|(n, _, _)| n.get_ref() == name.get_ref())?;
                    match (k, &sub) {
                        ("tasks", None) => once(tasks, self.strings()?)?,
                        ("description", None) => once(description, self.string()?.into_inner())?,
                        _ => return None,
                    }
                }
                Table::Rule(n) => {
                    let r = rules.get_mut(*n)?;
                    match (k, sub) {
                        ("id", None) => once(&mut r.id, self.string()?)?,
                        ("effect", None) => once(&mut r.effect, self.string()?)?,
                        ("tasks", None) => once(&mut r.tasks, self.strings()?)?,
                        ("except", None) => once(&mut r.except, self.strings()?.into_inner())?,
                        ("approval", None) => once(&mut r.approval, self.string()?)?,
                        ("approvers", None) => once(&mut r.approvers, self.strings()?)?,
                        ("requesters", None) => once(&mut r.requesters, self.strings()?)?,
                        ("max_duration", None) => once(&mut r.max_duration, self.string()?)?,
                        ("min_approvals", None) => once(&mut r.min_approvals, self.int()?)?,
                        ("offline", None) => once(&mut r.offline, self.string()?)?,
                        ("description", None) => {
                            once(&mut r.description, self.string()?.into_inner())?
                        }
                        ("when", Some(w)) => {
                            r.has_when = true;
                            match w.get_ref().as_str() {
                                "any_param" => once(&mut r.any_param, self.strings()?)?,
                                "no_param" => once(&mut r.no_param, self.strings()?)?,
                                _ => return None,
                            }
                        }
                        ("params", Some(name)) => {
                            r.has_params = true;
                            if name.get_ref() == "only" {
                                once(&mut r.only, self.strings()?)?;
                            } else {
                                if r.values.iter().any(|(k, _)| k.get_ref() == name.get_ref()) {
                                    return None;
                                }
                                let c = self.constraint()?;
                                r.values.push((name, c));
                            }
                        }
                        _ => return None,
                    }
                }
            }
            self.line_end()?;
        }
        if let Some(last) = rules.last_mut() {
            if last.end == 0 {
                last.end = self.s.len();
            }
        }
        for (name, tasks, description) in role_parts {
            roles.insert(
                name,
                RawRole {
                    tasks: tasks?,
                    description,
                },
            );
        }
        let mut rule = Vec::with_capacity(rules.len());
        for r in rules {
            let span = r.start..r.end;
            let raw = RawRule {
                id: r.id?,
                effect: r.effect?,
                tasks: r.tasks?,
                except: r.except.unwrap_or_default(),
                approval: r.approval,
                approvers: r.approvers,
                requesters: r.requesters,
                max_duration: r.max_duration,
                min_approvals: r.min_approvals,
                offline: r.offline,
                when: r.has_when.then_some(RawWhen {
                    any_param: r.any_param,
                    no_param: r.no_param,
                }),
                params: r.has_params.then_some(RawParams {
                    only: r.only,
                    values: r.values,
                }),
                description: r.description,
            };
            rule.push(Spanned::new(span, raw));
        }
        Some(RawFile {
            version,
            defaults,
            roles,
            rule,
        })
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Spaces and tabs.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// A comment to the end of the line (not its newline); control characters other than tab
    /// are refused, as TOML does.
    fn comment(&mut self) -> Option<()> {
        if !self.eat(b'#') {
            return Some(());
        }
        while let Some(c) = self.peek() {
            if c == b'\n' || c == b'\r' {
                break;
            }
            if (c < 0x20 && c != b'\t') || c == 0x7f {
                return None;
            }
            self.i += 1;
        }
        Some(())
    }

    /// A newline (LF or CRLF), or the end of the text.
    fn newline(&mut self) -> Option<()> {
        match self.peek() {
            None => Some(()),
            Some(b'\n') => {
                self.i += 1;
                Some(())
            }
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                self.i += 2;
                Some(())
            }
            _ => None,
        }
    }

    /// What may follow a value or a header: spaces, a comment, the end of the line.
    fn line_end(&mut self) -> Option<()> {
        self.ws();
        self.comment()?;
        self.newline()
    }

    /// Blank and comment-only lines.
    fn blank_lines(&mut self) -> Option<()> {
        loop {
            let at = self.i;
            self.ws();
            self.comment()?;
            if self.peek().is_none() {
                return Some(());
            }
            if matches!(self.peek(), Some(b'\n' | b'\r')) {
                self.newline()?;
                continue;
            }
            self.i = at;
            self.ws();
            return Some(());
        }
    }

    /// Whitespace, newlines and comments inside an array.
    fn array_space(&mut self) -> Option<()> {
        loop {
            self.ws();
            self.comment()?;
            match self.peek() {
                Some(b'\n' | b'\r') => self.newline()?,
                _ => return Some(()),
            }
        }
    }

    /// A bare or quoted key.
    fn key(&mut self) -> Option<Spanned<String>> {
        match self.peek()? {
            b'"' | b'\'' => {
                let k = self.string()?;
                // An empty quoted key is legal TOML but never a policy key; let the full
                // parser deal with it.
                (!k.get_ref().is_empty()).then_some(k)
            }
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                let k = self.text.get(start..self.i)?;
                Some(Spanned::new(start..self.i, k.to_owned()))
            }
        }
    }

    /// A one-line basic (`"..."`) or literal (`'...'`) string; its span includes the quotes.
    fn string(&mut self) -> Option<Spanned<String>> {
        let start = self.i;
        let quote = self.peek()?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        // Multi-line strings are left to the full parser.
        if self.s.get(self.i + 1) == Some(&quote) && self.s.get(self.i + 2) == Some(&quote) {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let c = self.peek()?;
            match c {
                _ if c == quote => {
                    out.push_str(self.text.get(run..self.i)?);
                    self.i += 1;
                    return Some(Spanned::new(start..self.i, out));
                }
                b'\\' if quote == b'"' => {
                    out.push_str(self.text.get(run..self.i)?);
                    self.i += 1;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'b' => out.push('\u{8}'),
                        b't' => out.push('\t'),
                        b'n' => out.push('\n'),
                        b'f' => out.push('\u{c}'),
                        b'r' => out.push('\r'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'u' | b'U' => {
                            let n = if e == b'u' { 4 } else { 8 };
                            let hex = self.text.get(self.i..self.i + n)?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                            self.i += n;
                        }
                        _ => return None,
                    }
                    run = self.i;
                }
                _ if (c < 0x20 && c != b'\t') || c == 0x7f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// A decimal integer without underscores or leading zeros.
    fn int(&mut self) -> Option<Spanned<i64>> {
        let start = self.i;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let digits = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.i += 1;
        }
        let d = self.text.get(digits..self.i)?;
        if d.is_empty() || (d.len() > 1 && d.starts_with('0')) {
            return None;
        }
        // Anything glued on (`1.5`, `1_000`, `0x10`, `1e3`) is not a plain integer.
        if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'.' || c == b'_') {
            return None;
        }
        let v: i64 = self
            .text
            .get(start..self.i)?
            .trim_start_matches('+')
            .parse()
            .ok()?;
        Some(Spanned::new(start..self.i, v))
    }

    /// An array of strings, over several lines if need be; trailing comma allowed.
    fn strings(&mut self) -> Option<Spanned<Vec<Spanned<String>>>> {
        let start = self.i;
        if !self.eat(b'[') {
            return None;
        }
        let mut items = Vec::new();
        loop {
            self.array_space()?;
            if self.eat(b']') {
                break;
            }
            items.push(self.string()?);
            self.array_space()?;
            if self.eat(b',') {
                continue;
            }
            self.array_space()?;
            if !self.eat(b']') {
                return None;
            }
            break;
        }
        Some(Spanned::new(start..self.i, items))
    }

    /// `{ glob = "..." }`, `{ regex = "..." }`, `{ one_of = [...] }` (on one line, as TOML's
    /// inline tables are).
    fn constraint(&mut self) -> Option<Spanned<RawConstraint>> {
        let start = self.i;
        if !self.eat(b'{') {
            return None;
        }
        let mut c = RawConstraint {
            glob: None,
            regex: None,
            one_of: None,
        };
        self.ws();
        if !self.eat(b'}') {
            loop {
                self.ws();
                let k = self.key()?;
                self.ws();
                if !self.eat(b'=') {
                    return None;
                }
                self.ws();
                match k.get_ref().as_str() {
                    "glob" => once(&mut c.glob, self.string()?)?,
                    "regex" => once(&mut c.regex, self.string()?)?,
                    "one_of" => {
                        let list = self.inline_strings()?;
                        once(&mut c.one_of, list)?;
                    }
                    _ => return None,
                }
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b'}') {
                    break;
                }
                return None;
            }
        }
        Some(Spanned::new(start..self.i, c))
    }

    /// An array of strings inside an inline table (the array itself may span lines).
    fn inline_strings(&mut self) -> Option<Spanned<Vec<String>>> {
        let list = self.strings()?;
        let span = list.span();
        Some(Spanned::new(
            span,
            list.into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
        ))
    }
}
