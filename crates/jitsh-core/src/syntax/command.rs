//! Pipelines, commands, parameters, command-mode arguments and redirections.

use smol_str::{SmolStr, SmolStrBuilder};

use super::ast::*;
use super::lex::{
    ends_bare_word, ends_token, is_dash, is_name_char, is_newline, is_quote, is_single_quote,
    is_space,
};
use super::parser::{PResult, Parser};

impl<'a> Parser<'a> {
    /// `pipeline := pipeline-element ('|' ws-nl command)*`
    ///
    /// Only the first element may be an expression; `first_operand` is an already parsed
    /// leading operand (see `pipeline_statement`).
    pub(crate) fn pipeline(&mut self, first_operand: Option<Expr>) -> PResult<Pipeline> {
        let start = first_operand.as_ref().map_or(self.pos, |e| e.span.start);
        let mut elements = vec![self.pipeline_element(first_operand)?];
        loop {
            self.skip_ws()?;
            if self.peek() == Some('|') && self.peek2() != Some('|') {
                self.bump();
                self.skip_ws_nl()?;
                if self.at_end() {
                    return self.incomplete("a command is missing after `|`");
                }
                if !self.starts_command() {
                    return self.expected("a command after `|`");
                }
                elements.push(PipelineElement::Command(self.command()?));
            } else {
                break;
            }
        }
        Ok(Pipeline {
            elements,
            span: self.span_from(start),
        })
    }

    /// `pipeline-element := command | expression redirection*`
    fn pipeline_element(&mut self, first_operand: Option<Expr>) -> PResult<PipelineElement> {
        if first_operand.is_none() && self.starts_command() {
            return Ok(PipelineElement::Command(self.command()?));
        }
        if first_operand.is_none() && self.at_end() {
            return self.expected("a command or expression");
        }
        let expr = self.expression_from(first_operand)?;
        let mut redirections = Vec::new();
        loop {
            self.skip_ws()?;
            match self.redirection()? {
                Some(r) => redirections.push(r),
                None => break,
            }
        }
        Ok(PipelineElement::Expression { expr, redirections })
    }

    /// Whether the cursor is at something that starts a command rather than an expression.
    pub(crate) fn starts_command(&self) -> bool {
        let Some(c) = self.peek() else { return false };
        let next = self.peek2();
        match c {
            '&' => next != Some('&'),
            '.' => !next.is_some_and(|n| n.is_ascii_digit()),
            '$' | '@' | '(' | '[' | '{' | '!' | '+' | ')' | '}' | ';' | '|' | ',' | '>' | '<' => {
                false
            }
            c if is_quote(c) || is_newline(c) || is_space(c) => false,
            c if c.is_ascii_digit() => false,
            c if is_dash(c) => false,
            '#' => false,
            _ => true,
        }
    }

    /// `command := call-operator ws command-target command-element* | command-name command-element*`
    /// `call-operator := '&' | '.'`
    /// `command-target := command-name | string | variable postfix* | '(' ... ')' | '$(' ... ')' | block`
    pub(crate) fn command(&mut self) -> PResult<Command> {
        let start = self.pos;
        let mut call_operator = None;
        let c = self.peek();
        // `ScanDot`: `.` is the dot-source operator before a token break, `$` or an ASCII quote;
        // otherwise it starts a word (`.\x.ps1`, `` .`x ``). A typographic quote after it is
        // rejected: PowerShell would read `.‘x’` as a word, not as dot-sourcing `x`.
        if c == Some('.')
            && self
                .peek2()
                .is_some_and(|n| is_quote(n) && !matches!(n, '\'' | '"'))
        {
            return self
                .invalid("a typographic quote directly after `.` is ambiguous; add a space");
        }
        let dot_source = c == Some('.')
            && self
                .peek2()
                .is_none_or(|n| ends_token(n) || matches!(n, '$' | '\'' | '"'));
        if c == Some('&') || dot_source {
            self.bump();
            call_operator = Some(if dot_source {
                CallOperator::DotSource
            } else {
                CallOperator::Call
            });
            self.skip_ws()?;
            if self.at_end() {
                return self.expected("a command after the call operator");
            }
        }
        let name = match call_operator {
            Some(_) => {
                let n = self.peek();
                if n.is_some_and(|n| matches!(n, '$' | '(' | '{' | '@' | '[') || is_quote(n)) {
                    let target = self.command_argument()?;
                    if let ExprKind::String(lit) = &target.kind {
                        if let Some(name) = lit.static_value() {
                            self.check_name(&name, "command name")?;
                        }
                    }
                    CommandName::Expr(target)
                } else if self.starts_command() || self.peek_is(|c| c.is_ascii_digit()) {
                    CommandName::Word(self.command_name()?)
                } else {
                    return self.expected("a command name");
                }
            }
            None => CommandName::Word(self.command_name()?),
        };
        let mut elements = Vec::new();
        let mut redirections = Vec::new();
        let mut after_double_dash = false;
        loop {
            self.skip_ws()?;
            let Some(c) = self.peek() else { break };
            if is_newline(c) || matches!(c, ';' | '|' | ')' | '}') {
                break;
            }
            if c == '&' {
                if self.peek2() == Some('&') {
                    break;
                }
                return self.invalid("the `&` background operator is not supported");
            }
            if let Some(r) = self.redirection()? {
                redirections.push(r);
                continue;
            }
            if !after_double_dash && is_dash(c) {
                if let Some(p) = self.parameter()? {
                    if p.name.is_empty() && !p.colon {
                        after_double_dash = true;
                        continue;
                    }
                    push_element(&mut elements, CommandElement::Parameter(p));
                    continue;
                }
            }
            if c == ',' {
                // PowerShell reports "Missing argument in parameter list" for a comma that does
                // not follow an argument (`X ,a`, `X,a`, `X > f ,a`, `X -P: ,a`); there is no
                // unary comma in argument mode.
                return self
                    .invalid("`,` must follow an argument (missing argument in parameter list)");
            }
            push_element(
                &mut elements,
                CommandElement::Argument(self.argument_list()?),
            );
        }
        // `Parser.CommandRule` starts stop-parsing at any command element whose first token has
        // the value `--%`, however it is spelled: `--%`, `` `--% ``, `'--%'`, a here-string, or
        // glued after another token (`'a'--%`). Its verbatim tail ends at `|`, `||` or `&&`,
        // after which PowerShell runs a new command; jitsh does not model the tail and refuses.
        let stop_parsing = matches!(&name, CommandName::Expr(e) if is_stop_parsing(e))
            || elements.iter().any(|e| match e {
                CommandElement::Argument(a) => is_stop_parsing(a),
                CommandElement::Parameter(p) => p.value.as_ref().is_some_and(is_stop_parsing),
            });
        if stop_parsing {
            self.pos = start;
            return self.invalid("the `--%` stop-parsing token is not supported");
        }
        Ok(Command {
            call_operator,
            name,
            elements,
            redirections,
            span: self.span_from(start),
        })
    }

    /// `command-name := bare-word-char+` (no quotes, no `$` expansion; backtick escapes applied)
    ///
    /// A generic token as PowerShell scans it (`ScanGenericToken`): it ends only at a token break
    /// (`ends_token`), so `Get-Mailbox#x` is one name, as in PowerShell.
    fn command_name(&mut self) -> PResult<Word> {
        let start = self.pos;
        let run = self.ascii_run(is_word_byte);
        // A name written as it stands, nearly every one, is that text: taken without a copy
        // through the builder. The loop below would end at the same place with the same text.
        if !run.is_empty() && self.peek().is_none_or(ends_token) {
            self.check_name(run, "command name")?;
            return Ok(Word {
                text: SmolStr::new(run),
                span: self.span_from(start),
            });
        }
        let mut text = SmolStrBuilder::new();
        text.push_str(run);
        loop {
            text.push_str(self.ascii_run(is_word_byte));
            let Some(c) = self.peek() else { break };
            if ends_token(c) {
                break;
            }
            if is_quote(c) {
                return self.invalid(
                    "a quote inside a command name is ambiguous; quote the whole name after `&`",
                );
            }
            if c == '$'
                && self
                    .peek2()
                    .is_some_and(|n| is_name_char(n) || matches!(n, '{' | '(' | ':'))
            {
                return self.invalid("a variable inside a command name is not supported");
            }
            if c == '`' {
                self.bump();
                match self.bump() {
                    Some(e) => text.push(self.escape(e)?),
                    None => {
                        text.push('`');
                        break;
                    }
                }
                continue;
            }
            text.push(c);
            self.bump();
        }
        if text.is_empty() {
            return self.expected("a command name");
        }
        self.check_name(text.as_str(), "command name")?;
        Ok(Word {
            text: text.finish(),
            span: self.span_from(start),
        })
    }

    /// A name a policy matches must not hold characters that are invisible or that PowerShell
    /// reads differently (control and format characters, possibly written as escapes such as
    /// `` `0 `` or `` `u{200B} ``): a name that differs from a catalogued one only by them
    /// must not slip past an `except` list or a deny rule.
    ///
    /// Also refused: `ı` (U+0131), `ſ` (U+017F) and the Kelvin sign (U+212A). PowerShell looks
    /// names up with `OrdinalIgnoreCase`, which upper-cases `ı` to `I` and `ſ` to `S`, so
    /// `Get-Maılbox` runs `Get-Mailbox` while an ASCII-minded comparison sees another name.
    pub(crate) fn check_name(&self, name: &str, what: &str) -> PResult<()> {
        // Printable ASCII holds none of the characters refused below. (Folded without an
        // early exit, so the compiler checks many bytes at a time.)
        if name
            .bytes()
            .fold(true, |ok, b| ok & (0x20..0x7f).contains(&b))
        {
            return Ok(());
        }
        if let Some(c) = name
            .chars()
            .find(|c| c.is_control() || super::lex::is_rejected_char(*c))
        {
            return self.invalid(format!(
                "a {what} holding the control or invisible character U+{:04X} is not accepted",
                u32::from(c)
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| matches!(c, '\u{131}' | '\u{17f}' | '\u{212a}'))
        {
            return self.invalid(format!(
                "a {what} holding `{c}` is not accepted: PowerShell matches it to an ASCII letter"
            ));
        }
        Ok(())
    }

    /// `parameter := dash param-name (':' command-argument?)?`
    /// `param-name := (letter | '_' | '?') (name-char | '-' | '?' | '`' char)*`
    ///
    /// Returns `None` (cursor unchanged) when the dash starts an argument instead (`-5`, `-`).
    /// `--` alone is returned as an empty, colon-less name (end of parameters).
    fn parameter(&mut self) -> PResult<Option<ParameterToken>> {
        let start = self.pos;
        self.bump();
        if self.peek_is(is_dash) && self.peek2() == Some('%') {
            return self.invalid("the `--%` stop-parsing token is not supported");
        }
        if self.peek_is(is_dash) && self.peek2().is_none_or(ends_token) {
            self.bump();
            return Ok(Some(ParameterToken {
                name: SmolStr::default(),
                value: None,
                colon: false,
                token_span: self.span_from(start),
                span: self.span_from(start),
            }));
        }
        // `Tokenizer.NextToken`: a dash starts a parameter only before a letter, `_` or `?`;
        // `` -`x `` is a word.
        if !self.peek_is(|c| c.is_alphabetic() || c == '_' || c == '?') {
            self.pos = start;
            return Ok(None);
        }
        // The name is the source text as it stands: taken in one piece once its end is known.
        let name_start = self.pos;
        // ASCII name characters first, a byte at a time; the loop below takes the rest.
        self.ascii_run(is_parameter_name_byte);
        while let Some(c) = self.peek() {
            if is_name_char(c) || is_dash(c) || c == '?' {
                self.bump();
            } else {
                break;
            }
        }
        let name = SmolStr::new(self.text(self.span_from(name_start)));
        self.check_name(&name, "parameter name")?;
        let colon = self.eat(':');
        let token_span = self.span_from(start);
        match self.peek() {
            None => {}
            Some(c) if ends_token(c) => {}
            Some(_) if colon => {}
            Some('.') => {
                return self.invalid(format!(
                    "`{}` is not a valid parameter token",
                    self.text(self.span_from(start))
                ));
            }
            // `ScanParameter` keeps any other character in the name (a backtick too, unescaped),
            // so `-Name<#` or `` -Na`me `` is no parameter jitsh could name.
            Some(c) => {
                return self.invalid(format!(
                "a parameter name directly followed by `{c}` is ambiguous; add a space or a colon"
            ))
            }
        }
        let value = if colon {
            self.skip_ws()?;
            let ends = self
                .peek()
                .is_none_or(|c| ends_bare_word(c) && !matches!(c, '(' | '{'));
            if ends {
                return self.expected(&format!("a value after `-{name}:`"));
            }
            Some(self.argument_list()?)
        } else {
            None
        };
        Ok(Some(ParameterToken {
            name,
            value,
            colon,
            token_span,
            span: self.span_from(start),
        }))
    }

    /// `argument-list := command-argument (ws? ',' ws-nl command-argument)*`
    pub(crate) fn argument_list(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let first = self.command_argument()?;
        let mut items = Vec::new();
        loop {
            let save = self.pos;
            self.skip_ws()?;
            if self.eat(',') {
                self.skip_ws_nl()?;
                if self.at_end() {
                    return self.incomplete("a list ends with `,`");
                }
                items.push(self.command_argument()?);
            } else {
                self.pos = save;
                break;
            }
        }
        if items.is_empty() {
            return Ok(first);
        }
        items.insert(0, first);
        Ok(Expr {
            kind: ExprKind::List(items),
            span: self.span_from(start),
        })
    }

    /// `command-argument := ('(' ... ')' | '$(' ... ')' | '@(' ... ')' | hashtable | block | here-string
    ///                      | quoted-string | variable) postfix* | '[' type-name ']' postfix* | splat
    ///                     | number | bare-word`
    ///
    /// As in PowerShell (`Parser.GetCommandArgument`, `PrimaryExpressionRule`), an argument that
    /// starts with a quote, a bracket, a block or a variable is one token: it ends after its
    /// closing quote or bracket and any member access or index glued to it, and what follows
    /// starts a new command element even without white space (`'Rob'-Force` is an argument and a
    /// parameter, `'a'@p` an argument and a splat, `'a'#x` an argument and a comment). Only a
    /// variable directly followed by a word character is part of a bare word (`$env:TEMP\x`),
    /// because PowerShell's `ScanVariable` rescans such a token as a generic token.
    pub(crate) fn command_argument(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return self.expected("an argument");
        };
        let next = self.peek2();
        match c {
            '[' => {
                // PowerShell reads `[int]x` in argument mode as one word, jitsh as a type
                // literal: anything glued to it is rejected rather than guessed at.
                let e = self.primary()?;
                let e = self.postfix(e, false)?;
                self.no_glued_word()?;
                Ok(e)
            }
            '(' | '{' => {
                let e = self.primary()?;
                let e = self.postfix(e, false)?;
                self.end_of_primary()?;
                Ok(e)
            }
            '@' if next == Some('(') || next == Some('{') || next.is_some_and(is_quote) => {
                let e = self.primary()?;
                let e = self.postfix(e, false)?;
                self.end_of_primary()?;
                Ok(e)
            }
            '@' if next.is_some_and(|n| matches!(n, '?' | '^' | '$' | ':')) => {
                self.invalid("splatting an automatic variable is not supported")
            }
            '@' if next.is_some_and(|n| is_name_char(n) || n == '{') => {
                self.bump();
                let v = self.variable_name()?;
                // PowerShell makes `@p'x'` one word and `@p.x` a member access: both rejected.
                self.no_glued_word()?;
                Ok(Expr {
                    kind: ExprKind::Splat(v),
                    span: self.span_from(start),
                })
            }
            '$' if next.is_some_and(|n| n == '(') => {
                self.bump();
                let stmts = self.subexpression_body()?;
                let e = Expr {
                    kind: ExprKind::Subexpression(stmts),
                    span: self.span_from(start),
                };
                let e = self.postfix(e, false)?;
                self.end_of_primary()?;
                Ok(e)
            }
            '$' if next.is_some_and(|n| is_name_char(n) || matches!(n, '{' | '?' | '^' | '$')) => {
                let braced = next == Some('{');
                let v = self.variable()?;
                let span = self.span_from(start);
                // `ScanVariable`: a variable ends at a token break, `.`, `[` (and, unbraced, at
                // `=` or `::`); any other character makes the whole token a bare word.
                let double_colon = self.rest().starts_with("::");
                let glued = self.peek().is_some_and(|c| {
                    let ends_unbraced = c == '=' || (c == ':' && double_colon);
                    !ends_token(c) && !matches!(c, '.' | '[') && (braced || !ends_unbraced)
                });
                if glued {
                    let parts = vec![StringPart::Variable(v, span)];
                    return self.bare_word_continue(start, parts);
                }
                let e = Expr {
                    kind: ExprKind::Variable(v),
                    span,
                };
                let e = self.postfix(e, false)?;
                self.end_of_primary()?;
                Ok(e)
            }
            c if is_quote(c) => {
                let e = self.quoted_string()?;
                let e = self.postfix(e, false)?;
                self.end_of_primary()?;
                Ok(e)
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                if let Some(text) = self.recognise(super::number::number) {
                    if self.peek().is_none_or(ends_token) {
                        return Ok(Expr {
                            kind: ExprKind::Number(text.to_string()),
                            span: self.span_from(start),
                        });
                    }
                }
                self.pos = start;
                self.bare_word_from(start)
            }
            c if is_dash(c) && next.is_some_and(|n| n.is_ascii_digit() || n == '.') => {
                self.bump();
                if self.recognise(super::number::number).is_some()
                    && self.peek().is_none_or(ends_token)
                {
                    // The word as written, its dash included: PowerShell passes `–5` (an en
                    // dash) as that text, not as `-5`.
                    let span = self.span_from(start);
                    return Ok(Expr {
                        kind: ExprKind::Number(self.text(span).to_string()),
                        span,
                    });
                }
                self.pos = start;
                self.bare_word_from(start)
            }
            c if ends_bare_word(c) => self.expected("an argument"),
            _ => self.bare_word_from(start),
        }
    }

    /// After an argument that is one PowerShell token (a quoted string, variable, bracketed
    /// expression or block, with its member accesses): the next command element may follow
    /// directly. A few characters would continue the token in PowerShell in ways jitsh does not
    /// model, so they are rejected: `.` that is not a member access jitsh read (`'a'.5`), `?`
    /// (`?.`/`?[` are null-conditional accesses), a single `:`, and `<#` (PowerShell allows a
    /// block comment between a value and its member access).
    fn end_of_primary(&self) -> PResult<()> {
        let Some(c) = self.peek() else { return Ok(()) };
        let what = match c {
            '.' | '?' | ':' => c.to_string(),
            '<' if self.peek2() == Some('#') => "<#".to_string(),
            _ => return Ok(()),
        };
        self.invalid(format!(
            "`{what}` directly after a quoted string, variable or bracketed argument is ambiguous; \
             add a space"
        ))
    }

    /// After a type literal or a splat a word must not follow without a space: PowerShell would
    /// read them as one bare word, jitsh as two things, so jitsh refuses.
    fn no_glued_word(&self) -> PResult<()> {
        match self.peek() {
            Some(c) if !ends_token(c) => self.invalid(format!(
                "`{c}` directly after a bracketed argument is ambiguous; add a space"
            )),
            _ => Ok(()),
        }
    }

    /// `bare-word := (bare-char | '`' char | quoted-string | variable | '$(' ... ')')+`
    ///
    /// A generic token in command mode: `user@contoso.com`, `C:\dir\file.txt`, `*.txt`,
    /// `$env:TEMP\x`, `a"b c"`. Quoted and variable parts are concatenated as PowerShell does.
    pub(crate) fn bare_word_from(&mut self, start: usize) -> PResult<Expr> {
        self.pos = start;
        self.bare_word_continue(start, Vec::new())
    }

    /// Continues a bare word whose first `parts` (a quoted string, a variable, a subexpression)
    /// were already parsed; the cursor is after them.
    fn bare_word_continue(&mut self, start: usize, initial: Vec<StringPart>) -> PResult<Expr> {
        // A word is nearly always one part (its text).
        let mut parts: Vec<StringPart> = Vec::with_capacity(1);
        let mut text = SmolStrBuilder::new();
        for part in initial {
            match part {
                StringPart::Text(t) => text.push_str(&t),
                other => {
                    if !text.is_empty() {
                        parts.push(StringPart::Text(std::mem::take(&mut text).finish()));
                    }
                    parts.push(other);
                }
            }
        }
        loop {
            text.push_str(self.ascii_run(is_word_byte));
            let Some(c) = self.peek() else { break };
            if ends_token(c) {
                break;
            }
            if c == '`' {
                // `ScanGenericToken`: inside a word every backtick escapes the next character,
                // a newline too (the word goes on); at the end of the input it is a backtick.
                self.bump();
                match self.bump() {
                    Some(e) => text.push(self.escape(e)?),
                    None => {
                        text.push('`');
                        break;
                    }
                }
                continue;
            }
            if is_quote(c) {
                let lit = if is_single_quote(c) {
                    self.single_quoted_body()?
                } else {
                    self.double_quoted_body()?
                };
                for part in lit {
                    match part {
                        StringPart::Text(t) => text.push_str(&t),
                        other => {
                            if !text.is_empty() {
                                parts.push(StringPart::Text(std::mem::take(&mut text).finish()));
                            }
                            parts.push(other);
                        }
                    }
                }
                continue;
            }
            if c == '$' {
                let vstart = self.pos;
                if self.peek2() == Some('(') {
                    self.bump();
                    let stmts = self.subexpression_body()?;
                    if !text.is_empty() {
                        parts.push(StringPart::Text(std::mem::take(&mut text).finish()));
                    }
                    parts.push(StringPart::Subexpression(stmts, self.span_from(vstart)));
                    continue;
                }
                if self
                    .peek2()
                    .is_some_and(|n| is_name_char(n) || matches!(n, '{' | '?' | '^' | '$'))
                {
                    let v = self.variable()?;
                    if !text.is_empty() {
                        parts.push(StringPart::Text(std::mem::take(&mut text).finish()));
                    }
                    parts.push(StringPart::Variable(v, self.span_from(vstart)));
                    continue;
                }
            }
            text.push(c);
            self.bump();
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StringPart::Text(text.finish()));
        }
        if self.pos == start {
            return self.expected("an argument");
        }
        if let Some(c @ ('(' | '{')) = self.peek() {
            // PowerShell reads `a(` as a word and an open bracket: with no closing bracket
            // anywhere after it, it waits for more input, so jitsh says incomplete.
            let close = if c == '(' { ')' } else { '}' };
            if !self.rest().contains(close) {
                return self.incomplete(format!("a `{close}` is missing"));
            }
            return self.invalid(format!(
                "`{c}` directly after a word is ambiguous; add a space or quote the word"
            ));
        }
        Ok(Expr {
            kind: ExprKind::String(StringLit {
                quoting: Quoting::Bare,
                parts,
            }),
            span: self.span_from(start),
        })
    }

    /// `redirection := ('*' | digit)? ('>' | '>>') ('&' digit | ws command-argument) | '<' ...`
    ///
    /// Returns `None` (cursor unchanged) when no redirection starts here.
    pub(crate) fn redirection(&mut self) -> PResult<Option<Redirection>> {
        let start = self.pos;
        let c = self.peek();
        let has_stream =
            c.is_some_and(|c| c == '*' || c.is_ascii_digit()) && self.peek2() == Some('>');
        if has_stream {
            self.bump();
        } else if c == Some('<') {
            return self.invalid("the `<` operator is reserved and not supported");
        } else if c != Some('>') {
            return Ok(None);
        }
        self.bump();
        self.eat('>');
        let mut operator = self.text(self.span_from(start)).to_string();
        if self.peek() == Some('&') && self.peek2().is_some_and(|n| n.is_ascii_digit()) {
            self.bump();
            self.bump();
            operator = self.text(self.span_from(start)).to_string();
            return Ok(Some(Redirection {
                operator,
                target: None,
                span: self.span_from(start),
            }));
        }
        self.skip_ws()?;
        if self
            .peek()
            .is_none_or(|c| ends_bare_word(c) && !matches!(c, '(' | '{'))
        {
            return self.expected("a redirection target");
        }
        let target = self.command_argument()?;
        Ok(Some(Redirection {
            operator,
            target: Some(target),
            span: self.span_from(start),
        }))
    }
}

/// The ASCII characters a command name or bare word takes as plain text, one at a time in
/// `command_name` and `bare_word_continue`: all but token breaks, backticks, quotes and `$`.
/// Read from [`WORD_BYTES`], one load a byte; `byte_tables_are_the_rules` checks the table
/// against [`ends_token`] for every byte.
fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[usize::from(b)]
}

/// [`is_word_byte`] for every byte (false for all above ASCII, which `ascii_run` stops at).
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = !matches!(
            b as u8,
            // `ends_token` for ASCII: white space (tab, LF, VT, FF, CR, space), NUL, `&(),;{|}`.
            b'\t'
                | b'\n'
                | 0x0b
                | 0x0c
                | b'\r'
                | b' '
                | 0
                | b'&'
                | b'('
                | b')'
                | b','
                | b';'
                | b'{'
                | b'|'
                | b'}'
                | b'`'
                | b'\''
                | b'"'
                | b'$'
        );
        b += 1;
    }
    table
};

/// An ASCII character of a parameter's name (letters, digits, `_`, `-`, `?`), read from
/// [`PARAMETER_NAME_BYTES`]; `byte_tables_are_the_rules` checks the table for every byte.
fn is_parameter_name_byte(b: u8) -> bool {
    PARAMETER_NAME_BYTES[usize::from(b)]
}

const PARAMETER_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric() || matches!(b as u8, b'_' | b'-' | b'?');
        b += 1;
    }
    table
};

/// Whether an argument's first token has the value `--%` (any dash, any quoting).
fn is_stop_parsing(e: &Expr) -> bool {
    match &e.kind {
        // Compared character by character: this runs for every argument of every command.
        ExprKind::String(lit) => {
            let mut want = "--%".chars();
            for part in &lit.parts {
                let StringPart::Text(text) = part else {
                    return false;
                };
                for c in text.chars() {
                    let c = if is_dash(c) { '-' } else { c };
                    if want.next() != Some(c) {
                        return false;
                    }
                }
            }
            want.next().is_none()
        }
        ExprKind::List(items) => items.iter().any(is_stop_parsing),
        ExprKind::Postfix { base, .. } => is_stop_parsing(base),
        _ => false,
    }
}

/// Pushes a command's element, room for eight made at the first: most commands have a few
/// parameters with values, two elements each, and growing from four to eight was a copy and a
/// second allocation for each such command.
fn push_element(elements: &mut Vec<CommandElement>, el: CommandElement) {
    if elements.capacity() == 0 {
        elements.reserve_exact(8);
    }
    elements.push(el);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tables_are_the_rules() {
        for b in 0..=u8::MAX {
            let rule = b.is_ascii()
                && !ends_token(char::from(b))
                && !matches!(b, b'`' | b'\'' | b'"' | b'$');
            assert_eq!(is_word_byte(b), rule, "byte {b:#04x}");
            let name = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'?');
            assert_eq!(
                is_parameter_name_byte(b),
                name,
                "parameter name byte {b:#04x}"
            );
        }
    }
}
