//! The slice of PowerShell syntax the simulated runspace understands: statements separated by
//! `;`, pipelines joined by `|`, commands with named (`-Name value`, `-Name:value`), switch and
//! positional arguments, quoted strings, comma lists, `{ script blocks }` (for `Where-Object`)
//! and `( subexpressions )` (kept as text). Parameter names match case-insensitively and by
//! unique prefix, as in PowerShell.

use std::collections::BTreeMap;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    List(Vec<Value>),
    /// The text inside `{ }`.
    Block(String),
}

impl Value {
    /// The value as PowerShell would print it in a table cell.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) | Value::Block(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Null => String::new(),
            Value::List(items) => {
                let inner: Vec<String> = items.iter().map(Value::display).collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// Flatten to strings (a single value becomes a one-element list).
    pub fn strings(&self) -> Vec<String> {
        match self {
            Value::List(items) => items.iter().map(Value::display).collect(),
            Value::Null => Vec::new(),
            other => vec![other.display()],
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) | Value::Block(s) => !s.is_empty(),
            Value::Int(n) => *n != 0,
            Value::Bool(b) => *b,
            Value::Null => false,
            Value::List(items) => !items.is_empty(),
        }
    }
}

/// One command: its name and arguments in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `-Name` (value `None`) or `-Name:value`.
    Named(String, Option<Value>),
    Positional(Value),
}

/// Statements (`;`-separated), each a pipeline of commands.
pub type Script = Vec<Vec<Command>>;

/// Deepest `{ ( ) }` nesting accepted.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Param(String, Option<Value>),
    Pipe,
    Semi,
    Comma,
    Block(String),
    Paren(String),
}

/// Parse a line into statements. Errors carry PowerShell's wording.
pub fn parse(line: &str) -> Result<Script, String> {
    let toks = tokenize(line)?;
    let mut script = Vec::new();
    for statement in toks.split(|t| *t == Tok::Semi) {
        if statement.is_empty() {
            continue;
        }
        let mut pipeline = Vec::new();
        for part in statement.split(|t| *t == Tok::Pipe) {
            pipeline.push(command(part)?);
        }
        script.push(pipeline);
    }
    Ok(script)
}

fn command(toks: &[Tok]) -> Result<Command, String> {
    let (name, rest) = match toks.split_first() {
        Some((Tok::Word(w) | Tok::Quoted(w), rest)) => (w.clone(), rest),
        Some((Tok::Param(p, _), _)) => {
            return Err(format!(
                "The term '-{p}' is not recognized as a name of a cmdlet."
            ))
        }
        _ => return Err("An empty pipe element is not allowed.".into()),
    };
    let mut args: Vec<Arg> = Vec::new();
    let mut join_next = false;
    for tok in rest {
        let value = match tok {
            Tok::Param(name, attached) => {
                args.push(Arg::Named(name.clone(), attached.clone()));
                continue;
            }
            Tok::Comma => {
                join_next = true;
                continue;
            }
            Tok::Word(w) => word_value(w),
            Tok::Quoted(s) | Tok::Paren(s) => Value::Str(s.clone()),
            Tok::Block(b) => Value::Block(b.clone()),
            Tok::Pipe | Tok::Semi => continue,
        };
        if std::mem::take(&mut join_next) {
            if let Some(Arg::Positional(previous)) = args.last_mut() {
                let mut items = match std::mem::replace(previous, Value::Null) {
                    Value::List(items) => items,
                    single => vec![single],
                };
                items.push(value);
                *previous = Value::List(items);
                continue;
            }
            if let Some(Arg::Named(_, Some(previous))) = args.last_mut() {
                let mut items = match std::mem::replace(previous, Value::Null) {
                    Value::List(items) => items,
                    single => vec![single],
                };
                items.push(value);
                *previous = Value::List(items);
                continue;
            }
        }
        args.push(Arg::Positional(value));
    }
    if join_next {
        return Err("Missing expression after ','.".into());
    }
    Ok(Command { name, args })
}

fn word_value(word: &str) -> Value {
    match word.to_ascii_lowercase().as_str() {
        "$true" => Value::Bool(true),
        "$false" => Value::Bool(false),
        "$null" => Value::Null,
        _ => word
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Str(word.to_owned())),
    }
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => break,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ';' => {
                toks.push(Tok::Semi);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '{' | '(' => {
                let (inner, next) = balanced(&chars, i)?;
                toks.push(if c == '{' {
                    Tok::Block(inner)
                } else {
                    Tok::Paren(inner)
                });
                i = next;
            }
            '}' | ')' => {
                return Err(format!(
                    "Unexpected token '{c}' in expression or statement."
                ))
            }
            '\'' | '"' => {
                let (text, next) = quoted(&chars, i)?;
                toks.push(Tok::Quoted(text));
                i = next;
            }
            _ => {
                let (tok, next) = bare(&chars, i)?;
                toks.push(tok);
                i = next;
            }
        }
    }
    Ok(toks)
}

/// A quoted string starting at `start`; returns its text and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars.get(start).copied().unwrap_or('\'');
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("The string is missing the terminator: {quote}.")),
            Some(&c) if c == quote => {
                // A doubled quote stands for one quote character.
                if chars.get(i + 1) == Some(&quote) {
                    text.push(quote);
                    i += 2;
                } else {
                    return Ok((text, i + 1));
                }
            }
            Some('`') if quote == '"' => {
                match chars.get(i + 1) {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some(&other) => text.push(other),
                    None => {}
                }
                i += 2;
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// The text between a `{`/`(` at `start` and its partner; returns it and the index after.
fn balanced(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut stack = Vec::new();
    let mut i = start;
    let mut text = String::new();
    while let Some(&c) = chars.get(i) {
        match c {
            '{' | '(' => {
                stack.push(if c == '{' { '}' } else { ')' });
                if stack.len() > MAX_DEPTH {
                    return Err("The expression is nested too deeply.".into());
                }
            }
            '}' | ')' => {
                if stack.pop() != Some(c) {
                    return Err(format!(
                        "Unexpected token '{c}' in expression or statement."
                    ));
                }
                if stack.is_empty() {
                    return Ok((text, i + 1));
                }
            }
            '\'' | '"' => {
                let (_, next) = quoted(chars, i)?;
                text.extend(chars.get(i..next).unwrap_or_default());
                i = next;
                continue;
            }
            _ => {}
        }
        if i > start {
            text.push(c);
        }
        i += 1;
    }
    Err(match stack.first() {
        Some('}') => "Missing closing '}' in statement block or type definition.".into(),
        _ => "Missing closing ')' in expression.".into(),
    })
}

/// A bare word (with quoted parts glued on, as `-Name:'x y'`), or a parameter token.
fn bare(chars: &[char], start: usize) -> Result<(Tok, usize), String> {
    let is_param = chars.get(start).copied().is_some_and(is_dash)
        && chars
            .get(start + 1)
            .is_some_and(|c| c.is_alphabetic() || *c == '_');
    let mut text = String::new();
    let mut colon: Option<usize> = None;
    let mut quoted_value = false;
    let mut i = start;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() || matches!(c, '|' | ';' | ',' | '(' | ')' | '{' | '}') {
            break;
        }
        if c == '\'' || c == '"' {
            let (part, next) = quoted(chars, i)?;
            text.push_str(&part);
            quoted_value = true;
            i = next;
            continue;
        }
        if c == ':' && is_param && colon.is_none() {
            colon = Some(text.len());
        }
        text.push(c);
        i += 1;
    }
    if !is_param {
        return Ok((Tok::Word(text), i));
    }
    // Drop the dash (which may be a multi-byte Unicode dash).
    let body: String = text.chars().skip(1).collect();
    let Some(at) = colon else {
        return Ok((Tok::Param(body, None), i));
    };
    let dash_len = text.chars().next().map(char::len_utf8).unwrap_or(1);
    let name = text.get(dash_len..at).unwrap_or_default().to_owned();
    let raw = text.get(at + 1..).unwrap_or_default();
    let value = if raw.is_empty() {
        // `-Name: value` and `-Name:(expr)`: the value is the next token.
        None
    } else if quoted_value {
        Some(Value::Str(raw.to_owned()))
    } else {
        Some(word_value(raw))
    };
    Ok((Tok::Param(name, value), i))
}

/// How a cmdlet parameter takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Switch,
    Value,
}

/// Parameters every cmdlet accepts.
const COMMON: &[(&str, Kind)] = &[
    ("Confirm", Kind::Switch),
    ("WhatIf", Kind::Switch),
    ("Verbose", Kind::Switch),
    ("Debug", Kind::Switch),
    ("ErrorAction", Kind::Value),
    ("DomainController", Kind::Value),
];

/// Arguments bound to parameter names (canonical spelling).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bound {
    values: BTreeMap<String, Value>,
}

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn str(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::Null => None,
            v => Some(v.display()),
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .map(Value::strings)
            .unwrap_or_default()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(Value::truthy)
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_owned(), value);
    }

    /// `-Name value` pairs as Search-AdminAuditLog shows them.
    pub fn describe(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, v)| format!("-{k} {}", v.display()))
            .collect()
    }
}

/// Bind `args` to a cmdlet's parameters (PowerShell's rules, simplified): named first, by
/// unique prefix; a value parameter without `:value` takes the next positional argument; the
/// remaining positionals fill `positional` in order.
pub fn bind(
    params: &[(&'static str, Kind)],
    positional: &[&'static str],
    args: &[Arg],
) -> Result<Bound, String> {
    let mut bound = Bound::default();
    let mut loose = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        match arg {
            Arg::Positional(v) => loose.push(v.clone()),
            Arg::Named(given, attached) => {
                let (name, kind) = resolve(params, given)?;
                let value = match (attached, kind) {
                    (Some(v), _) => v.clone(),
                    (None, Kind::Switch) => Value::Bool(true),
                    (None, Kind::Value) => match iter.next_if(|a| matches!(a, Arg::Positional(_))) {
                        Some(Arg::Positional(v)) => v.clone(),
                        _ => {
                            return Err(format!(
                                "Missing an argument for parameter '{name}'. Specify a parameter of type 'System.String' and try again."
                            ))
                        }
                    },
                };
                if bound.has(name) {
                    return Err(format!(
                        "Cannot bind parameter because parameter '{name}' is specified more than once."
                    ));
                }
                bound.set(name, value);
            }
        }
    }
    let mut slots = positional
        .iter()
        .filter(|p| !bound.has(p))
        .copied()
        .collect::<Vec<_>>()
        .into_iter();
    for value in loose {
        match slots.next() {
            Some(slot) => bound.set(slot, value),
            None => {
                return Err(format!(
                    "A positional parameter cannot be found that accepts argument '{}'.",
                    value.display()
                ))
            }
        }
    }
    Ok(bound)
}

fn resolve(params: &[(&'static str, Kind)], given: &str) -> Result<(&'static str, Kind), String> {
    let all = || params.iter().chain(COMMON.iter());
    if let Some(exact) = all().find(|(n, _)| n.eq_ignore_ascii_case(given)) {
        return Ok(*exact);
    }
    let lower = given.to_ascii_lowercase();
    let matches: Vec<_> = all()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(format!(
            "A parameter cannot be found that matches parameter name '{given}'."
        )),
        many => {
            let names: Vec<String> = many.iter().map(|(n, _)| format!("-{n}")).collect();
            Err(format!(
                "Parameter cannot be processed because the parameter name '{given}' is ambiguous. Possible matches include: {}.",
                names.join(" ")
            ))
        }
    }
}

/// A `Where-Object` filter: `$_.Prop -op value`, joined by `-and`/`-or` (left to right,
/// `-and` binding tighter).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Alternatives (`-or`), each a conjunction (`-and`) of comparisons.
    any: Vec<Vec<Comparison>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    property: String,
    op: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Like,
    NotLike,
    Match,
    NotMatch,
    Gt,
    Lt,
    Ge,
    Le,
}

impl Filter {
    pub fn parse(block: &str) -> Result<Self, String> {
        let toks = tokenize(block)?;
        let mut any = vec![Vec::new()];
        let mut iter = toks.into_iter().peekable();
        while let Some(tok) = iter.next() {
            let property = match tok {
                Tok::Word(w) => {
                    let lower = w.to_ascii_lowercase();
                    let prop = lower
                        .strip_prefix("$_.")
                        .or_else(|| lower.strip_prefix("$psitem."))
                        .map(|_| {
                            w.split_once('.')
                                .map(|(_, p)| p.to_owned())
                                .unwrap_or_default()
                        });
                    prop.ok_or_else(|| {
                        format!("Unsupported filter operand '{w}'; use $_.Property.")
                    })?
                }
                other => {
                    return Err(format!(
                        "Unexpected token '{}' in the filter.",
                        tok_text(&other)
                    ))
                }
            };
            let op = match iter.peek() {
                Some(Tok::Param(p, None)) => op_named(p),
                _ => None,
            };
            let op = match op {
                Some(op) => {
                    iter.next();
                    let value = match iter.next() {
                        Some(Tok::Word(w)) => word_value(&w),
                        Some(Tok::Quoted(q)) => Value::Str(q),
                        _ => {
                            return Err(
                                "You must provide a value expression following the operator."
                                    .into(),
                            )
                        }
                    };
                    Some((op, value))
                }
                None => None,
            };
            if let Some(last) = any.last_mut() {
                last.push(Comparison { property, op });
            }
            match iter.next() {
                None => break,
                Some(Tok::Param(p, None)) if p.eq_ignore_ascii_case("and") => {}
                Some(Tok::Param(p, None)) if p.eq_ignore_ascii_case("or") => any.push(Vec::new()),
                Some(other) => {
                    return Err(format!(
                        "Unexpected token '{}' in the filter.",
                        tok_text(&other)
                    ))
                }
            }
        }
        if any.iter().any(Vec::is_empty) {
            return Err("The filter is empty or ends with an operator.".into());
        }
        Ok(Filter { any })
    }

    /// Does an object with these properties pass? `lookup` returns a property's value.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> bool {
        self.any.iter().any(|all| {
            all.iter().all(|c| {
                let left = lookup(&c.property).unwrap_or(Value::Null);
                match &c.op {
                    None => left.truthy(),
                    Some((op, right)) => compare(*op, &left, right),
                }
            })
        })
    }
}

fn tok_text(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) | Tok::Quoted(w) => w.clone(),
        Tok::Param(p, _) => format!("-{p}"),
        Tok::Pipe => "|".into(),
        Tok::Semi => ";".into(),
        Tok::Comma => ",".into(),
        Tok::Block(_) => "{".into(),
        Tok::Paren(_) => "(".into(),
    }
}

fn op_named(name: &str) -> Option<Op> {
    Some(match name.to_ascii_lowercase().as_str() {
        "eq" | "ieq" => Op::Eq,
        "ne" | "ine" => Op::Ne,
        "like" | "ilike" => Op::Like,
        "notlike" => Op::NotLike,
        "match" | "imatch" => Op::Match,
        "notmatch" => Op::NotMatch,
        "gt" => Op::Gt,
        "lt" => Op::Lt,
        "ge" => Op::Ge,
        "le" => Op::Le,
        _ => return None,
    })
}

fn compare(op: Op, left: &Value, right: &Value) -> bool {
    let l = left.display();
    let r = right.display();
    let numbers = l.parse::<i64>().ok().zip(r.parse::<i64>().ok());
    let order = match numbers {
        Some((a, b)) => a.cmp(&b),
        None => l.to_lowercase().cmp(&r.to_lowercase()),
    };
    match op {
        Op::Eq => order.is_eq(),
        Op::Ne => !order.is_eq(),
        Op::Like => wildcard(&l, &r),
        Op::NotLike => !wildcard(&l, &r),
        Op::Match => regex_match(&l, &r),
        Op::NotMatch => !regex_match(&l, &r),
        Op::Gt => order.is_gt(),
        Op::Lt => order.is_lt(),
        Op::Ge => !order.is_lt(),
        Op::Le => !order.is_gt(),
    }
}

fn regex_match(text: &str, pattern: &str) -> bool {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .is_ok_and(|re| re.is_match(text))
}

/// PowerShell `-like`: `*` any run, `?` one character, case-insensitive.
pub fn wildcard(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear-ish, no recursion.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn one(line: &str) -> Command {
        let mut script = parse(line).unwrap();
        assert_eq!(script.len(), 1);
        let mut pipeline = script.remove(0);
        assert_eq!(pipeline.len(), 1);
        pipeline.remove(0)
    }

    #[test]
    fn named_colon_switch_positional_and_list_arguments() {
        let cmd = one(
            r#"Set-Mailbox alice -DisplayName "Alice J" -Forw:'a b@x' -Confirm:$false -AccessRights Full,Send -Verbose"#,
        );
        assert_eq!(cmd.name, "Set-Mailbox");
        assert_eq!(
            cmd.args,
            vec![
                Arg::Positional(Value::Str("alice".into())),
                Arg::Named("DisplayName".into(), None),
                Arg::Positional(Value::Str("Alice J".into())),
                Arg::Named("Forw".into(), Some(Value::Str("a b@x".into()))),
                Arg::Named("Confirm".into(), Some(Value::Bool(false))),
                Arg::Named("AccessRights".into(), None),
                Arg::Positional(Value::List(vec![
                    Value::Str("Full".into()),
                    Value::Str("Send".into())
                ])),
                Arg::Named("Verbose".into(), None),
            ]
        );
    }

    #[test]
    fn pipelines_statements_and_blocks() {
        let script =
            parse("Get-Mailbox | Where-Object { $_.Name -eq 'x' } | Format-List; Get-Date # c")
                .unwrap();
        assert_eq!(script.len(), 2);
        assert_eq!(script[0].len(), 3);
        assert_eq!(
            script[0][1].args,
            vec![Arg::Positional(Value::Block(" $_.Name -eq 'x' ".into()))]
        );
        assert!(parse("Get-Mailbox 'x")
            .unwrap_err()
            .contains("missing the terminator"));
        assert!(parse("Where-Object { $_.x")
            .unwrap_err()
            .contains("Missing closing '}'"));
        assert!(parse("Get-Mailbox |").is_err());
    }

    #[test]
    fn binding_uses_prefixes_switches_and_positions() {
        let params = [
            ("Identity", Kind::Value),
            ("DisplayName", Kind::Value),
            ("Database", Kind::Value),
            ("Force", Kind::Switch),
        ];
        let cmd = one("X bob -disp 'B' -Force -Conf:$false");
        let b = bind(&params, &["Identity"], &cmd.args).unwrap();
        assert_eq!(b.str("Identity").as_deref(), Some("bob"));
        assert_eq!(b.str("DisplayName").as_deref(), Some("B"));
        assert!(b.flag("Force"));
        assert!(b.has("Confirm") && !b.flag("Confirm"));
        let err = bind(&params, &["Identity"], &one("X -D y").args).unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("-DisplayName -Database"),
            "{err}"
        );
        let err = bind(&params, &["Identity"], &one("X a b").args).unwrap_err();
        assert!(err.contains("positional parameter cannot be found that accepts argument 'b'"));
        let err = bind(&params, &["Identity"], &one("X -Nope 1").args).unwrap_err();
        assert!(err.contains("'Nope'"));
        let err = bind(&params, &["Identity"], &one("X -Database").args).unwrap_err();
        assert!(err.contains("Missing an argument for parameter 'Database'"));
    }

    #[test]
    fn filters_compare_like_and_combine() {
        let f =
            Filter::parse("$_.Database -eq 'db01' -and $_.Name -like 'a*' -or $_.Alias -eq bob")
                .unwrap();
        let obj = |db: &str, name: &str, alias: &str| {
            let (db, name, alias) = (db.to_owned(), name.to_owned(), alias.to_owned());
            move |p: &str| -> Option<Value> {
                Some(Value::Str(match p.to_ascii_lowercase().as_str() {
                    "database" => db.clone(),
                    "name" => name.clone(),
                    "alias" => alias.clone(),
                    _ => return None,
                }))
            }
        };
        assert!(f.matches(&obj("DB01", "Alice", "alice")));
        assert!(!f.matches(&obj("DB02", "Alice", "alice")));
        assert!(f.matches(&obj("DB02", "Bob", "BOB")));
        assert!(Filter::parse("$_.Name -eq").is_err());
        assert!(Filter::parse("Name -eq 1").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("Alice Johnson", "a*son"));
        assert!(wildcard("abc", "a?c"));
        assert!(!wildcard("abc", "a?d"));
        assert!(wildcard("", "*"));
        assert!(!wildcard("ab", "a"));
    }
}
