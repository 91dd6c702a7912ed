//! Expressions (expression mode): operators by precedence, unary operators and casts, postfix
//! member access / method calls / indexing, and primary expressions.

use smol_str::SmolStr;

use super::ast::*;
use super::lex::{ends_token, is_dash, is_name_char, is_newline, is_quote};
use super::parser::{PResult, Parser};

/// Binary operator levels, loosest first. Dash operators are listed without their dash.
const LOGICAL: &[&str] = &["and", "or", "xor"];
const COMPARISON: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "notlike",
    "match",
    "notmatch",
    "contains",
    "notcontains",
    "in",
    "notin",
    "replace",
    "split",
    "join",
    "is",
    "isnot",
    "as",
    "band",
    "bor",
    "bxor",
    "shl",
    "shr",
];
/// Comparison operators that take a `c` (case-sensitive) or `i` (insensitive) prefix.
const CASE_PREFIXABLE: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "notlike",
    "match",
    "notmatch",
    "contains",
    "notcontains",
    "in",
    "notin",
    "replace",
    "split",
];
const UNARY_WORDS: &[&str] = &["not", "bnot", "split", "join"];

/// Precedence levels of binary operators: 1 (`-and`) is the loosest, 6 (`..`) the tightest.
const TIGHTEST: u8 = 6;

/// Groups `first (op e)*` into left-associative chains, loosest level outermost. Recursion is
/// bounded by the number of levels, not by the input.
fn group_by_level(level: u8, first: Expr, rest: Vec<OperatorOperand>) -> Expr {
    if rest.is_empty() {
        return first;
    }
    if level > TIGHTEST {
        // Unreachable with the operator table above; kept total so no operand is ever lost.
        let tail = rest.into_iter().map(|(_, op, e)| (op, e)).collect();
        return binary(first, tail);
    }
    // Split at operators of this level; each segment is grouped at the next tighter level.
    let mut segments: Vec<(Option<String>, Expr, Vec<OperatorOperand>)> = Vec::new();
    let mut current = (None, first, Vec::new());
    for (op_level, op, e) in rest {
        if op_level == level {
            segments.push(current);
            current = (Some(op), e, Vec::new());
        } else {
            current.2.push((op_level, op, e));
        }
    }
    segments.push(current);
    let mut grouped = segments
        .into_iter()
        .map(|(op, first, rest)| (op, group_by_level(level + 1, first, rest)));
    let Some((_, head)) = grouped.next() else {
        return Expr {
            kind: ExprKind::List(Vec::new()),
            span: crate::span::Span::default(),
        };
    };
    let tail: Vec<(String, Expr)> = grouped.map(|(op, e)| (op.unwrap_or_default(), e)).collect();
    binary(head, tail)
}

/// `(precedence level, operator, right operand)` as read by `binary_level`.
type OperatorOperand = (u8, String, Expr);

fn binary(head: Expr, tail: Vec<(String, Expr)>) -> Expr {
    if tail.is_empty() {
        return head;
    }
    let end = tail.last().map_or(head.span.end, |(_, e)| e.span.end);
    let span = crate::span::Span::new(head.span.start, end);
    Expr {
        kind: ExprKind::Binary {
            first: Box::new(head),
            rest: tail,
        },
        span,
    }
}

impl<'a> Parser<'a> {
    /// `expression := logical-expression`
    pub(crate) fn expression(&mut self) -> PResult<Expr> {
        self.binary_level(1, None, true)
    }

    /// An expression that does not take a top-level comma list (method arguments, defaults).
    pub(crate) fn expression_no_comma(&mut self) -> PResult<Expr> {
        self.binary_level(1, None, false)
    }

    /// An expression whose leftmost operand was already parsed.
    pub(crate) fn expression_from(&mut self, seed: Option<Expr>) -> PResult<Expr> {
        self.binary_level(1, seed, true)
    }

    /// `logical-expression := comparison-expression (dash ('and'|'or'|'xor') ws-nl comparison-expression)*`
    /// `comparison-expression := additive-expression (comparison-op ws-nl additive-expression)*`
    /// `additive-expression := multiplicative-expression (('+'|dash) ws-nl multiplicative-expression)*`
    /// `multiplicative-expression := format-expression (('*'|'/'|'%') ws-nl format-expression)*`
    /// `format-expression := range-expression (dash 'f' ws-nl range-expression)*`
    /// `range-expression := comma-list ('..' ws-nl comma-list)*`
    ///
    /// The operands and operators are read in one loop, then grouped by precedence
    /// (`group_by_level`): one parser frame per nesting level instead of one per precedence level.
    fn binary_level(&mut self, level: u8, seed: Option<Expr>, comma: bool) -> PResult<Expr> {
        let first = self.comma_list(seed, comma)?;
        let mut rest: Vec<OperatorOperand> = Vec::new();
        loop {
            let save = self.pos;
            self.skip_ws()?;
            let Some((op_level, op)) = self.binary_operator()? else {
                self.pos = save;
                break;
            };
            self.skip_ws_nl()?;
            if self.at_end() {
                return self.incomplete(format!("an operand is missing after `{op}`"));
            }
            let rhs = self.comma_list(None, comma)?;
            rest.push((op_level, op, rhs));
        }
        Ok(group_by_level(level, first, rest))
    }

    /// Consumes a binary operator at the cursor and returns it with its precedence level.
    fn binary_operator(&mut self) -> PResult<Option<(u8, String)>> {
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let next = self.peek2();
        let symbol = match c {
            '+' if next != Some('+') && next != Some('=') => Some((3, "+")),
            d if is_dash(d)
                && next.is_none_or(|n| !n.is_alphabetic() && !is_dash(n) && n != '=') =>
            {
                Some((3, "-"))
            }
            '*' if next != Some('=') => Some((4, "*")),
            '/' if next != Some('=') => Some((4, "/")),
            '%' if next != Some('=') => Some((4, "%")),
            '.' if next == Some('.') => Some((6, "..")),
            _ => None,
        };
        if let Some((level, s)) = symbol {
            self.pos += c.len_utf8();
            if s == ".." {
                self.pos += 1;
            }
            return Ok(Some((level, s.to_string())));
        }
        if !is_dash(c) || !next.is_some_and(|n| n.is_ascii_alphabetic()) {
            return Ok(None);
        }
        let word_start = self.pos + c.len_utf8();
        let word: String = self
            .src
            .get(word_start..)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let lower = word.to_ascii_lowercase();
        let base = match lower.strip_prefix(['c', 'i']) {
            Some(b) if CASE_PREFIXABLE.contains(&b) => b,
            _ => lower.as_str(),
        };
        let level = if LOGICAL.contains(&base) {
            1
        } else if COMPARISON.contains(&base) {
            2
        } else if base == "f" {
            5
        } else {
            return self.invalid(format!("unknown operator `-{word}`"));
        };
        self.pos = word_start + word.len();
        Ok(Some((level, format!("-{lower}"))))
    }

    /// `comma-list := unary-expression (',' ws-nl unary-expression)*`
    fn comma_list(&mut self, seed: Option<Expr>, comma: bool) -> PResult<Expr> {
        let first = match seed {
            Some(e) => e,
            None => self.unary_expression()?,
        };
        if !comma {
            return Ok(first);
        }
        let start = first.span.start;
        let mut items = vec![first];
        loop {
            let save = self.pos;
            self.skip_ws()?;
            if !self.eat(',') {
                self.pos = save;
                break;
            }
            self.skip_ws_nl()?;
            if self.at_end() {
                return self.incomplete("a list ends with `,`");
            }
            items.push(self.unary_expression()?);
        }
        if items.len() == 1 {
            if let Some(only) = items.pop() {
                return Ok(only);
            }
        }
        Ok(Expr {
            kind: ExprKind::List(items),
            span: crate::span::Span::new(start, self.pos),
        })
    }

    /// `unary-expression := ('!' | dash ('not'|'bnot'|'split'|'join') | dash | '+' | '++' | '--' | ',') ws unary-expression
    ///                    | type-literal ws? unary-expression      (a cast)
    ///                    | primary postfix*`
    pub(crate) fn unary_expression(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return self.expected("an expression");
        };
        let next = self.peek2();
        let op: Option<String> = if c == '!' {
            self.bump();
            Some("!".into())
        } else if c == ',' {
            self.bump();
            Some(",".into())
        } else if c == '+' {
            self.bump();
            Some(if self.eat('+') { "++" } else { "+" }.into())
        } else if is_dash(c) {
            if next.is_some_and(|n| n.is_ascii_alphabetic()) {
                let word: String = self
                    .rest()
                    .chars()
                    .skip(1)
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                let lower = word.to_ascii_lowercase();
                if UNARY_WORDS.contains(&lower.as_str()) {
                    self.pos += c.len_utf8() + word.len();
                    Some(format!("-{lower}"))
                } else {
                    return self.invalid(format!(
                        "unexpected `-{word}` where an expression was expected"
                    ));
                }
            } else {
                self.bump();
                if self.peek_is(is_dash) {
                    self.bump();
                    Some("--".into())
                } else {
                    Some("-".into())
                }
            }
        } else {
            None
        };
        if let Some(op) = op {
            self.skip_ws()?;
            if self.at_end() {
                return self.expected(&format!("an operand after `{op}`"));
            }
            let operand = self.nested(|p| p.unary_expression())?;
            return Ok(Expr {
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(operand),
                },
                span: self.span_from(start),
            });
        }
        if c == '[' {
            let ty = self.type_literal()?;
            if self.rest().starts_with("::") || self.peek() == Some('.') {
                return self.postfix(ty, true);
            }
            let save = self.pos;
            self.skip_ws()?;
            let starts_operand = self.peek().is_some_and(|n| {
                matches!(n, '$' | '(' | '@' | '[') || is_quote(n) || n.is_ascii_digit()
            }) || (self.peek().is_some_and(is_dash)
                && self.peek2().is_some_and(|n| n.is_ascii_digit()));
            if starts_operand {
                let ExprKind::Type(type_name) = ty.kind else {
                    return self.invalid("a cast needs a type name");
                };
                let operand = self.nested(|p| p.unary_expression())?;
                return Ok(Expr {
                    kind: ExprKind::Cast {
                        type_name,
                        operand: Box::new(operand),
                    },
                    span: self.span_from(start),
                });
            }
            self.pos = save;
            return Ok(ty);
        }
        let e = self.primary()?;
        self.postfix(e, true)
    }

    /// `postfix := ('.' | '::') member-name ('(' arguments? ')')? | '[' ws-nl expression ws-nl ']' | '++' | '--'`
    /// `member-name := name | variable | quoted-string | '(' expression ')'`
    /// `arguments := expression-no-comma (',' ws-nl expression-no-comma)*`
    ///
    /// Postfix operators bind only without white space before them.
    pub(crate) fn postfix(&mut self, base: Expr, allow_step: bool) -> PResult<Expr> {
        let start = base.span.start;
        let mut ops = Vec::new();
        loop {
            let op_start = self.pos;
            let is_static = self.rest().starts_with("::");
            let is_member = is_static
                || (self.peek() == Some('.')
                    && self.peek2().is_some_and(|n| {
                        n.is_alphabetic() || n == '_' || n == '$' || n == '(' || is_quote(n)
                    }));
            // `Parser.MemberAccessRule`: in expression mode a `.` with nothing after it waits
            // for the member name (`$a.` is incomplete input).
            if allow_step
                && !is_member
                && self.peek() == Some('.')
                && self.peek2() != Some('.')
                && self.rest_blank_after(1)
            {
                self.pos += 1;
                return self.incomplete("a member name is missing after `.`");
            }
            if is_member {
                self.pos += if is_static { 2 } else { 1 };
                let name = self.member_name()?;
                let args = if self.peek() == Some('(') {
                    Some(self.call_arguments()?)
                } else {
                    None
                };
                ops.push(PostfixOp {
                    kind: PostfixKind::Member {
                        name,
                        is_static,
                        args,
                    },
                    span: self.span_from(op_start),
                });
            } else if self.peek() == Some('[') {
                self.bump();
                let index = self.nested(|p| {
                    p.skip_ws_nl()?;
                    let e = p.expression()?;
                    p.skip_ws_nl()?;
                    Ok(e)
                })?;
                self.expect_char(']', "`]`")?;
                ops.push(PostfixOp {
                    kind: PostfixKind::Index(Box::new(index)),
                    span: self.span_from(op_start),
                });
            } else if allow_step && (self.rest().starts_with("++") || self.rest().starts_with("--"))
            {
                let op = if self.rest().starts_with("++") {
                    "++"
                } else {
                    "--"
                };
                self.pos += 2;
                ops.push(PostfixOp {
                    kind: PostfixKind::Step(op.to_string()),
                    span: self.span_from(op_start),
                });
            } else {
                break;
            }
        }
        if ops.is_empty() {
            return Ok(base);
        }
        Ok(Expr {
            kind: ExprKind::Postfix {
                base: Box::new(base),
                ops,
            },
            span: crate::span::Span::new(start, self.pos),
        })
    }

    fn member_name(&mut self) -> PResult<MemberName> {
        let Some(c) = self.peek() else {
            return self.expected("a member name");
        };
        if c.is_alphabetic() || c == '_' {
            let name = self.recognise(super::lex::simple_name).unwrap_or("");
            return Ok(MemberName::Name(name.to_string()));
        }
        let e = if c == '(' || c == '$' {
            self.primary()?
        } else if is_quote(c) {
            let e = self.quoted_string()?;
            if let ExprKind::String(s) = &e.kind {
                if let Some(v) = s.static_value() {
                    return Ok(MemberName::Name(v.into_owned()));
                }
            }
            e
        } else {
            return self.expected("a member name");
        };
        Ok(MemberName::Dynamic(Box::new(e)))
    }

    fn call_arguments(&mut self) -> PResult<Vec<Expr>> {
        self.expect_char('(', "`(`")?;
        let args = self.nested(|p| {
            let mut args = Vec::new();
            p.skip_ws_nl()?;
            if p.peek() == Some(')') {
                return Ok(args);
            }
            loop {
                p.skip_ws_nl()?;
                args.push(p.expression_no_comma()?);
                p.skip_ws_nl()?;
                if !p.eat(',') {
                    return Ok(args);
                }
            }
        })?;
        self.expect_char(')', "`)` to close the argument list")?;
        Ok(args)
    }

    /// `primary := '(' ws-nl pipeline-statement ws-nl ')' | subexpression | array-subexpression
    ///           | hashtable | block | here-string | variable | quoted-string | number | type-literal`
    pub(crate) fn primary(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return self.expected("an expression");
        };
        let next = self.peek2();
        let kind = match c {
            '(' => {
                self.bump();
                let st = self.nested(|p| {
                    p.skip_ws_nl()?;
                    if p.peek() == Some(')') {
                        return p.invalid("empty parentheses");
                    }
                    let st = p.pipeline_statement()?;
                    p.skip_ws_nl()?;
                    Ok(st)
                })?;
                self.expect_char(')', "`)`")?;
                ExprKind::Paren(Box::new(st))
            }
            '$' if next == Some('(') => {
                self.bump();
                ExprKind::Subexpression(self.subexpression_body()?)
            }
            '$' => ExprKind::Variable(self.variable()?),
            '@' if next == Some('(') => {
                self.bump();
                self.bump();
                let stmts = self.nested(|p| p.statement_list(Some(')')))?;
                self.expect_char(')', "`)`")?;
                ExprKind::ArraySubexpression(stmts)
            }
            '@' if next == Some('{') => ExprKind::Hashtable(self.hashtable()?),
            '@' if next.is_some_and(is_quote) => return self.here_string(),
            '@' if next.is_some_and(|n| is_name_char(n) || n == '{') => {
                self.bump();
                ExprKind::Splat(self.variable_name()?)
            }
            '{' => ExprKind::ScriptBlock(Box::new(self.block()?)),
            '[' => return self.type_literal(),
            c if is_quote(c) => return self.quoted_string(),
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let word = self.rest();
                let text = self.recognise(super::number::number).filter(|_| {
                    self.peek()
                        .is_none_or(super::number::ends_number_in_expression)
                });
                let Some(text) = text else {
                    // PowerShell reads the whole word as a generic token: at the start of a
                    // pipeline, a command's name (`5.ps1`, `(1.exe)`), run by that name.
                    self.pos = start;
                    let word = word.split(ends_token).next().unwrap_or(word);
                    return self.invalid(format!(
                        "`{word}` is not a number to PowerShell but a command name; call a command so named with `&` and its name in quotes"
                    ));
                };
                ExprKind::Number(text.to_string())
            }
            _ => return self.expected("an expression"),
        };
        Ok(Expr {
            kind,
            span: self.span_from(start),
        })
    }

    /// `subexpression := '$(' statement-list ')'` (the cursor is on the `(`)
    pub(crate) fn subexpression_body(&mut self) -> PResult<Vec<Statement>> {
        self.expect_char('(', "`(`")?;
        let stmts = self.nested(|p| p.statement_list(Some(')')))?;
        self.expect_char(')', "`)`")?;
        Ok(stmts)
    }

    /// `hashtable := '@{' separators (hash-entry (statement-end hash-entry)*)? separators '}'`
    /// `hash-entry := hash-key ws '=' ws-nl statement`
    /// `hash-key := (name-char | dash | '.')+ | quoted-string | number | '(' ... ')' | variable`
    fn hashtable(&mut self) -> PResult<Vec<HashEntry>> {
        self.pos += 2;
        let entries = self.nested(|p| {
            let mut entries = Vec::new();
            loop {
                p.skip_separators()?;
                match p.peek() {
                    None => return p.incomplete("a `}` is missing after `@{`"),
                    Some('}') => return Ok(entries),
                    _ => {}
                }
                let start = p.pos;
                let key = match p.peek() {
                    Some(c) if is_name_char(c) => {
                        while p.peek_is(|c| is_name_char(c) || is_dash(c) || c == '.') {
                            p.bump();
                        }
                        let text = SmolStr::new(p.text(p.span_from(start)));
                        Expr {
                            kind: ExprKind::String(StringLit {
                                quoting: Quoting::Bare,
                                parts: vec![StringPart::Text(text)],
                            }),
                            span: p.span_from(start),
                        }
                    }
                    _ => p.unary_expression()?,
                };
                p.skip_ws()?;
                p.expect_char('=', "`=` after a hashtable key")?;
                p.skip_ws_nl()?;
                if p.at_end() {
                    return p.incomplete("a hashtable value is missing");
                }
                let value = p.statement()?;
                entries.push(HashEntry {
                    key,
                    value,
                    span: p.span_from(start),
                });
                p.skip_ws()?;
                match p.peek() {
                    None => return p.incomplete("a `}` is missing after `@{`"),
                    Some(c) if is_newline(c) || c == ';' || c == '}' => {}
                    Some(c) => return p.invalid(format!("unexpected `{c}` in a hashtable")),
                }
            }
        })?;
        self.expect_char('}', "`}`")?;
        Ok(entries)
    }

    /// `type-literal := '[' type-name ']'`
    pub(crate) fn type_literal(&mut self) -> PResult<Expr> {
        let start = self.pos;
        self.expect_char('[', "`[`")?;
        let name = self.type_name()?;
        if self.peek() == Some('(') {
            return self.invalid("attributes are only accepted in `param()` blocks");
        }
        self.expect_char(']', "`]` to close the type name")?;
        Ok(Expr {
            kind: ExprKind::Type(name),
            span: self.span_from(start),
        })
    }

    /// `type-name := type-name-chars ('[' type-name? ']' type-name-chars)*` (generic and array types)
    pub(crate) fn type_name(&mut self) -> PResult<String> {
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            self.recognise(super::lex::type_name_chars);
            match self.peek() {
                Some('[') => {
                    depth += 1;
                    self.bump();
                }
                Some(']') if depth > 0 => {
                    depth -= 1;
                    self.bump();
                }
                Some(']') | Some('(') => break,
                None => return self.incomplete("a `]` is missing"),
                Some(c) => return self.invalid(format!("unexpected `{c}` in a type name")),
            }
        }
        let name = self.text(self.span_from(start)).trim().to_string();
        if name.is_empty() {
            return self.invalid("empty type name");
        }
        Ok(name)
    }

    /// `variable := '$' variable-name`
    pub(crate) fn variable(&mut self) -> PResult<VarRef> {
        self.expect_char('$', "`$`")?;
        self.variable_name()
    }

    /// `variable-name := '{' braced-char* '}' | '?' | '^' | '$' | (scope ':')? name-char+`
    pub(crate) fn variable_name(&mut self) -> PResult<VarRef> {
        match self.peek() {
            Some('{') => {
                self.bump();
                let mut name = String::new();
                loop {
                    match self.bump() {
                        None => return self.incomplete("a `}` is missing in `${...}`"),
                        Some('}') => break,
                        Some('`') => match self.bump() {
                            Some(c) => name.push(self.escape(c)?),
                            None => return self.incomplete("a `}` is missing in `${...}`"),
                        },
                        Some(c) => name.push(c),
                    }
                }
                Ok(VarRef { name, braced: true })
            }
            Some(c @ ('?' | '^' | '$')) => {
                self.bump();
                Ok(VarRef {
                    name: c.to_string(),
                    braced: false,
                })
            }
            _ => {
                let start = self.pos;
                if self.recognise(super::lex::simple_name).is_none() {
                    return self.expected("a variable name");
                }
                if self.peek() == Some(':') && self.peek2().is_some_and(is_name_char) {
                    self.bump();
                    self.recognise(super::lex::simple_name);
                }
                Ok(VarRef {
                    name: self.text(self.span_from(start)).to_string(),
                    braced: false,
                })
            }
        }
    }
}
