//! A canonical printer: renders a [`Script`] as text that parses back to the same invocations.
//!
//! Bare words and strings are printed in their unambiguous quoted forms, operators and parameter
//! tokens with ASCII dashes, so the output is a normal form of the input, not a copy of it.

use std::fmt::Write as _;

use super::ast::*;

/// Renders `script` in canonical form.
pub fn print(script: &Script) -> String {
    let mut out = String::new();
    statements(&mut out, &script.statements, "\n");
    out
}

fn statements(out: &mut String, list: &[Statement], sep: &str) {
    for (i, st) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        statement(out, st);
    }
}

fn block(out: &mut String, b: &Block) {
    out.push_str("{ ");
    statements(out, &b.statements, "; ");
    out.push_str(" }");
}

fn statement(out: &mut String, st: &Statement) {
    match &st.kind {
        StatementKind::Chain(c) => chain(out, c),
        StatementKind::Assignment { target, op, value } => {
            expr(out, target);
            let _ = write!(out, " {op} ");
            statement(out, value);
        }
        StatementKind::If {
            clauses,
            else_block,
        } => {
            for (i, (cond, body)) in clauses.iter().enumerate() {
                out.push_str(if i == 0 { "if (" } else { " elseif (" });
                statement(out, cond);
                out.push_str(") ");
                block(out, body);
            }
            if let Some(b) = else_block {
                out.push_str(" else ");
                block(out, b);
            }
        }
        StatementKind::Foreach {
            variable,
            iterable,
            body,
        } => {
            out.push_str("foreach (");
            var(out, variable);
            out.push_str(" in ");
            statement(out, iterable);
            out.push_str(") ");
            block(out, body);
        }
        StatementKind::For {
            init,
            condition,
            step,
            body,
        } => {
            out.push_str("for (");
            for (i, part) in [init, condition, step].into_iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                if let Some(p) = part {
                    statement(out, p);
                }
            }
            out.push_str(") ");
            block(out, body);
        }
        StatementKind::While { condition, body } => {
            out.push_str("while (");
            statement(out, condition);
            out.push_str(") ");
            block(out, body);
        }
        StatementKind::Do {
            body,
            until,
            condition,
        } => {
            out.push_str("do ");
            block(out, body);
            out.push_str(if *until { " until (" } else { " while (" });
            statement(out, condition);
            out.push(')');
        }
        StatementKind::Switch {
            options,
            subject,
            clauses,
        } => {
            out.push_str("switch ");
            for o in options {
                let _ = write!(out, "-{o} ");
            }
            out.push('(');
            statement(out, subject);
            out.push_str(") { ");
            for c in clauses {
                match &c.pattern {
                    Some(p) => expr(out, p),
                    None => out.push_str("default"),
                }
                out.push(' ');
                block(out, &c.body);
                out.push_str("; ");
            }
            out.push('}');
        }
        StatementKind::Function {
            filter,
            name,
            params,
            body,
        } => {
            out.push_str(if *filter { "filter " } else { "function " });
            // The name is read with backtick escapes, like a bare word.
            word(out, name);
            if !params.is_empty() {
                out.push('(');
                param_list(out, params);
                out.push(')');
            }
            out.push(' ');
            block(out, body);
        }
        StatementKind::Param(params) => {
            out.push_str("param(");
            param_list(out, params);
            out.push(')');
        }
        StatementKind::NamedBlock { name, body } => {
            out.push_str(name);
            out.push(' ');
            block(out, body);
        }
        StatementKind::Try {
            body,
            catches,
            finally,
        } => {
            out.push_str("try ");
            block(out, body);
            for (types, b) in catches {
                out.push_str(" catch ");
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "[{t}]");
                }
                if !types.is_empty() {
                    out.push(' ');
                }
                block(out, b);
            }
            if let Some(f) = finally {
                out.push_str(" finally ");
                block(out, f);
            }
        }
        StatementKind::Trap { types, body } => {
            out.push_str("trap ");
            for t in types {
                let _ = write!(out, "[{t}] ");
            }
            block(out, body);
        }
        StatementKind::Flow { keyword, value } => {
            out.push_str(keyword);
            if let Some(v) = value {
                out.push(' ');
                statement(out, v);
            }
        }
    }
}

fn param_list(out: &mut String, params: &[ParamDecl]) {
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for a in &p.attributes {
            let _ = write!(out, "[{}", a.name);
            if let Some(args) = &a.args {
                out.push('(');
                for (j, (name, value)) in args.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    if let Some(n) = name {
                        out.push_str(n);
                        if value.is_some() {
                            out.push_str(" = ");
                        }
                    }
                    if let Some(v) = value {
                        expr(out, v);
                    }
                }
                out.push(')');
            }
            out.push(']');
        }
        var(out, &p.variable);
        if let Some(d) = &p.default {
            out.push_str(" = ");
            // A default is one expression without a top-level comma; wrapping anything else in
            // parentheses would add a grouping (and nesting depth) on every print.
            match d.kind {
                ExprKind::List(_) => paren_expr(out, d),
                _ => expr(out, d),
            }
        }
    }
}

fn chain(out: &mut String, c: &Chain) {
    pipeline(out, &c.first);
    for (op, p) in &c.rest {
        let _ = write!(out, " {op} ");
        pipeline(out, p);
    }
}

fn pipeline(out: &mut String, p: &Pipeline) {
    for (i, el) in p.elements.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        match el {
            PipelineElement::Command(c) => command(out, c),
            PipelineElement::Expression {
                expr: e,
                redirections,
            } => {
                expr(out, e);
                for r in redirections {
                    redirection(out, r);
                }
            }
        }
    }
}

fn command(out: &mut String, c: &Command) {
    match (&c.call_operator, &c.name) {
        // A name that would need escapes (`.=x`, `a(b`), that would start an operator or a
        // number when printed bare (`.`, `-x`, `1x`, `+x`, `!x`), or that starts with a keyword
        // the reader would stop at (`if`, `do+`), is called by its quoted text.
        (None, CommandName::Word(w))
            if w.text.chars().all(is_plain_word_char)
                && w.text != "."
                && !(w.text.starts_with('.')
                    && w.text[1..].starts_with(|c: char| c.is_ascii_digit()))
                && !super::lex::keyword_prefix(&w.text)
                    .is_some_and(|k| KEYWORDS.contains(&k.to_ascii_lowercase().as_str()))
                && !w.text.starts_with(|c: char| {
                    super::lex::is_dash(c) || c.is_ascii_digit() || matches!(c, '+' | '!')
                }) =>
        {
            word(out, &w.text)
        }
        (op, name) => {
            out.push_str(match op {
                Some(CallOperator::DotSource) => ". ",
                _ => "& ",
            });
            match name {
                CommandName::Word(w) => single_quoted(out, &w.text),
                CommandName::Expr(e) => expr(out, e),
            }
        }
    }
    // Redirections print where they stood among the arguments, so nested invocations keep
    // their source order.
    let mut redirections = c.redirections.iter().peekable();
    for el in &c.elements {
        let at = match el {
            CommandElement::Parameter(p) => p.span.start,
            CommandElement::Argument(e) => e.span.start,
        };
        while let Some(r) = redirections.next_if(|r| r.span.start < at) {
            redirection(out, r);
        }
        out.push(' ');
        command_element(out, el);
    }
    for r in redirections {
        redirection(out, r);
    }
}

fn command_element(out: &mut String, el: &CommandElement) {
    match el {
        CommandElement::Parameter(p) => {
            out.push('-');
            param_name(out, &p.name);
            if p.colon {
                out.push(':');
            }
            if let Some(v) = &p.value {
                argument(out, v);
            }
        }
        CommandElement::Argument(e) => {
            if let ExprKind::String(s) = &e.kind {
                if s.quoting == Quoting::Bare
                    && s.static_value()
                        .is_some_and(|v| v.starts_with(['-', '\u{2013}', '\u{2014}', '\u{2015}']))
                {
                    // Keep a dash-led word an argument, not a parameter.
                    string_lit(out, s, true);
                    return;
                }
            }
            argument(out, e);
        }
    }
}

/// Prints a command-mode argument; expressions that are not valid arguments get parentheses.
fn argument(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Binary { .. } | ExprKind::Unary { .. } | ExprKind::Cast { .. } => {
            out.push('(');
            expr(out, e);
            out.push(')');
        }
        // Argument lists have two or more items: there is no unary comma in argument mode.
        ExprKind::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                argument(out, item);
            }
        }
        _ => expr(out, e),
    }
}

fn redirection(out: &mut String, r: &Redirection) {
    let _ = write!(out, " {}", r.operator);
    if let Some(t) = &r.target {
        out.push(' ');
        argument(out, t);
    }
}

/// A bare word: printed as-is when it is plain, otherwise with every special character escaped.
fn word(out: &mut String, text: &str) {
    for c in text.chars() {
        if !is_plain_word_char(c) {
            escaped(out, c);
        } else {
            out.push(c);
        }
    }
}

/// A parameter name: characters a parameter token does not take bare are escaped, as is a
/// first character that would not start a parameter (`-1x` is a number, `--` ends parameters).
fn param_name(out: &mut String, name: &str) {
    for (i, c) in name.chars().enumerate() {
        let bare = if i == 0 {
            c.is_alphabetic() || c == '_' || c == '?'
        } else {
            super::lex::is_name_char(c) || super::lex::is_dash(c) || c == '?'
        };
        if bare {
            out.push(c);
        } else {
            escaped(out, c);
        }
    }
}

/// A backtick escape that reads back as `c`.
fn escaped(out: &mut String, c: char) {
    if let Some(code) = control_escape(c) {
        out.push_str(&code);
        return;
    }
    out.push('`');
    out.push(c);
}

/// The escape for a control or invisible character, which the reader refuses raw in a line:
/// PowerShell's letter escapes where one exists, else `` `u{hex} ``.
fn control_escape(c: char) -> Option<String> {
    let letter = match c {
        '\0' => '0',
        '\u{7}' => 'a',
        '\u{8}' => 'b',
        '\u{1b}' => 'e',
        '\u{c}' => 'f',
        '\n' => 'n',
        '\r' => 'r',
        '\t' => 't',
        '\u{b}' => 'v',
        c if super::lex::is_rejected_char(c) => return Some(format!("`u{{{:x}}}", u32::from(c))),
        _ => return None,
    };
    Some(format!("`{letter}"))
}

/// Text that holds a character the reader refuses raw, printed as a double-quoted string with
/// escapes so that it reads back as the same value.
fn needs_double_quotes(text: &str) -> bool {
    text.chars()
        .any(|c| c == '\n' || c == '\r' || super::lex::is_rejected_char(c))
}

fn double_quoted(out: &mut String, text: &str) {
    out.push('"');
    double_quoted_text(out, text);
    out.push('"');
}

fn double_quoted_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '`' | '$' => {
                out.push('`');
                out.push(c);
            }
            c if super::lex::is_double_quote(c) => {
                out.push('`');
                out.push(c);
            }
            c => match control_escape(c) {
                Some(code) => out.push_str(&code),
                None => out.push(c),
            },
        }
    }
}

/// PowerShell's keywords: a command with such a name (written `` `if ``) is printed quoted.
const KEYWORDS: &[&str] = &[
    "begin",
    "break",
    "catch",
    "class",
    "clean",
    "configuration",
    "continue",
    "data",
    "define",
    "do",
    "dynamicparam",
    "else",
    "elseif",
    "end",
    "enum",
    "exit",
    "filter",
    "finally",
    "for",
    "foreach",
    "from",
    "function",
    "hidden",
    "if",
    "in",
    "inlinescript",
    "parallel",
    "param",
    "process",
    "return",
    "sequence",
    "switch",
    "throw",
    "trap",
    "try",
    "until",
    "using",
    "var",
    "while",
    "workflow",
];

/// Characters a bare word is printed with unescaped.
fn is_plain_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '-' | '_' | '\\' | '.' | '?' | '%' | '*' | ':' | '/' | '~' | '!' | '+'
        )
}

fn single_quoted(out: &mut String, text: &str) {
    if needs_double_quotes(text) {
        return double_quoted(out, text);
    }
    out.push('\'');
    for c in text.chars() {
        if super::lex::is_single_quote(c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
}

fn var(out: &mut String, v: &VarRef) {
    let simple = !v.name.is_empty()
        && (v
            .name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
            && !v.name.starts_with(':')
            && !v.name.ends_with(':')
            && v.name.matches(':').count() <= 1
            || matches!(v.name.as_str(), "?" | "^" | "$"));
    if simple && !v.braced {
        let _ = write!(out, "${}", v.name);
    } else {
        out.push_str("${");
        for c in v.name.chars() {
            if let Some(code) = control_escape(c) {
                out.push_str(&code);
                continue;
            }
            if c == '}' || c == '`' || c == '{' {
                out.push('`');
            }
            out.push(c);
        }
        out.push('}');
    }
}

fn string_lit(out: &mut String, s: &StringLit, _arg: bool) {
    if let Some(v) = s.static_value() {
        single_quoted(out, &v);
        return;
    }
    out.push('"');
    for p in &s.parts {
        match p {
            StringPart::Text(t) => double_quoted_text(out, t),
            StringPart::Variable(v, _) => var(out, &{
                let mut b = v.clone();
                b.braced = true;
                b
            }),
            StringPart::Subexpression(stmts, _) => {
                out.push_str("$(");
                statements(out, stmts, "; ");
                out.push(')');
            }
        }
    }
    out.push('"');
}

fn paren_expr(out: &mut String, e: &Expr) {
    out.push('(');
    expr(out, e);
    out.push(')');
}

fn expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::String(s) => string_lit(out, s, false),
        ExprKind::Number(n) => out.push_str(n),
        ExprKind::Variable(v) => var(out, v),
        ExprKind::Splat(v) => {
            out.push('@');
            let mut text = String::new();
            var(&mut text, v);
            out.push_str(text.trim_start_matches('$'));
        }
        ExprKind::List(items) => {
            // A one-element list is the unary comma (`,x`): an array, not the element.
            if items.len() == 1 {
                out.push(',');
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                expr(out, item);
            }
        }
        ExprKind::ArraySubexpression(stmts) => {
            out.push_str("@(");
            statements(out, stmts, "; ");
            out.push(')');
        }
        ExprKind::Hashtable(entries) => {
            out.push_str("@{");
            for (i, h) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push(' ');
                match &h.key.kind {
                    // A string key, expandable or not, needs no parentheses (they would add
                    // a grouping on every print).
                    ExprKind::String(s) => string_lit(out, s, false),
                    ExprKind::Paren(_) => expr(out, &h.key),
                    // Any other key was read as one unary expression (`$(…)`, `@x`, `-$a`),
                    // and its print reads back as one unless it starts like a bare-word key
                    // (a name character): only then are parentheses needed, since they add a
                    // grouping, one level more for the code inside.
                    _ => {
                        let mut key = String::new();
                        expr(&mut key, &h.key);
                        if key.starts_with(|c: char| super::lex::is_name_char(c)) {
                            out.push('(');
                            out.push_str(&key);
                            out.push(')');
                        } else {
                            out.push_str(&key);
                        }
                    }
                }
                out.push_str(" = ");
                statement(out, &h.value);
            }
            out.push_str(" }");
        }
        ExprKind::ScriptBlock(b) => block(out, b),
        ExprKind::Subexpression(stmts) => {
            out.push_str("$(");
            statements(out, stmts, "; ");
            out.push(')');
        }
        ExprKind::Paren(st) => {
            out.push('(');
            statement(out, st);
            out.push(')');
        }
        ExprKind::Type(t) => {
            let _ = write!(out, "[{t}]");
        }
        ExprKind::Cast { type_name, operand } => {
            let _ = write!(out, "[{type_name}]");
            match operand.kind {
                ExprKind::Unary { .. } => paren_expr(out, operand),
                _ => expr(out, operand),
            }
        }
        // Operands are printed bare: the tree's shape already follows precedence, and extra
        // parentheses would add nesting (and change invocation depths) on re-parse.
        ExprKind::Unary { op, operand } => {
            out.push_str(op);
            out.push(' ');
            expr(out, operand);
        }
        ExprKind::Binary { first, rest } => {
            expr(out, first);
            for (op, e) in rest {
                let _ = write!(out, " {op} ");
                expr(out, e);
            }
        }
        ExprKind::Postfix { base, ops } => {
            expr(out, base);
            for (i, op) in ops.iter().enumerate() {
                match &op.kind {
                    PostfixKind::Member {
                        name,
                        is_static,
                        args,
                    } => {
                        out.push_str(if *is_static { "::" } else { "." });
                        // A bare name starting with a digit, or any bare name right after a
                        // number, would join the number token (`3.'3V'` is not `3.3V`): those
                        // are quoted.
                        let after_number = i == 0 && matches!(base.kind, ExprKind::Number(_));
                        match name {
                            MemberName::Name(n)
                                if n.chars().all(|c| c.is_alphanumeric() || c == '_')
                                    && n.starts_with(|c: char| c.is_alphabetic() || c == '_')
                                    && !after_number =>
                            {
                                out.push_str(n)
                            }
                            MemberName::Name(n) => single_quoted(out, n),
                            // `.$name`, `.(expr)`, `.$(expr)` and `."string"` print as
                            // written: parentheses would add a grouping, which the code
                            // inside an expandable name would count as one more level.
                            MemberName::Dynamic(d) => match d.kind {
                                ExprKind::Variable(_)
                                | ExprKind::Paren(_)
                                | ExprKind::Subexpression(_)
                                | ExprKind::String(_) => expr(out, d),
                                _ => paren_expr(out, d),
                            },
                        }
                        if let Some(args) = args {
                            out.push('(');
                            for (i, a) in args.iter().enumerate() {
                                if i > 0 {
                                    out.push_str(", ");
                                }
                                expr(out, a);
                            }
                            out.push(')');
                        }
                    }
                    PostfixKind::Index(i) => {
                        out.push('[');
                        expr(out, i);
                        out.push(']');
                    }
                    PostfixKind::Step(s) => out.push_str(s),
                }
            }
        }
    }
}
