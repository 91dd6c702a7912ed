//! Statements, statement lists, blocks and the control-flow keywords.

use super::ast::*;
use super::lex::{is_dash, is_newline};
use super::parser::{PResult, Parser};

/// Keywords jitsh recognises at the start of a statement but does not accept (see grammar/README.md).
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "class",
    "enum",
    "using",
    "data",
    "workflow",
    "configuration",
    "parallel",
    "sequence",
    "inlinescript",
    "dynamicparam",
];

/// Keywords that may only follow another construct.
const DANGLING_KEYWORDS: &[&str] = &["else", "elseif", "catch", "finally", "until"];

impl<'a> Parser<'a> {
    /// `script := statement-list EOF`
    pub(crate) fn script(&mut self) -> PResult<Script> {
        // Printable ASCII (0x20..=0x7e) and ASCII whitespace (0x09..=0x0d), nearly every line,
        // hold no refused character. Folded without stopping early, so it runs on whole words.
        let plain = self.src.bytes().fold(true, |plain, b| {
            plain & ((b.wrapping_sub(0x20) < 0x5f) | (b.wrapping_sub(0x09) < 5))
        });
        // Only a line that is not plain is read again, character by character.
        let rejected = if plain {
            None
        } else {
            self.src
                .char_indices()
                .find(|(_, c)| super::lex::is_rejected_char(*c))
        };
        if let Some((offset, c)) = rejected {
            self.pos = offset;
            return self.invalid(format!(
                "the invisible or control character U+{:04X} is not accepted: PowerShell would read \
                 it as part of a name or as a token break",
                u32::from(c)
            ));
        }
        let statements = self.statement_list(None)?;
        if !self.at_end() {
            let found: String = self.rest().chars().take(12).collect();
            return self.invalid(format!("unexpected `{found}`"));
        }
        Ok(Script {
            statements,
            span: self.span_from(0),
        })
    }

    /// `statement-list := separators (statement (statement-end statement)*)? separators`
    /// `statement-end := newline | ';'`
    ///
    /// Stops before `close` (`)` or `}`); `None` means the list runs to the end of input.
    pub(crate) fn statement_list(&mut self, close: Option<char>) -> PResult<Vec<Statement>> {
        // Most lists hold one statement (a line, a script block's body).
        let mut out = Vec::with_capacity(1);
        loop {
            self.skip_separators()?;
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(c)) => return self.incomplete(format!("a `{c}` is missing")),
                (Some(c), Some(want)) if c == want => return Ok(out),
                (Some(c @ (')' | '}')), _) => {
                    return self.invalid(format!("unexpected `{c}`"));
                }
                _ => {}
            }
            let st = self.statement()?;
            // A statement that ends with its own `}` or `)` (a keyword statement, `param()`)
            // needs no separator before the next one, as in PowerShell: `{ param($x) Get-X $x }`.
            let self_delimited = !matches!(
                st.kind,
                StatementKind::Chain(_)
                    | StatementKind::Assignment { .. }
                    | StatementKind::Flow { .. }
            );
            out.push(st);
            self.skip_ws()?;
            match self.peek() {
                None => {}
                Some(c) if is_newline(c) || c == ';' => {}
                Some(c) if Some(c) == close => {}
                Some(_) if self_delimited => {}
                Some('?') => {
                    // The ternary `? :` and `??` are not supported; PowerShell waits for the
                    // rest when the input ends after one of them, or before a ternary's `:`
                    // (`$a ? 1`), so jitsh says so too. The statement is refused either way.
                    let rest = self.rest().trim_end();
                    let ternary = !rest.starts_with("??");
                    if rest.ends_with('?')
                        || rest.ends_with(':')
                        || (ternary && !rest.contains(':'))
                    {
                        return self.incomplete("an operand is missing after `?`, `??` or `:`");
                    }
                    return self.invalid("the `?:` and `??` operators are not supported");
                }
                Some(c) => return self.invalid(format!("unexpected `{c}` after a statement")),
            }
        }
    }

    /// `block := '{' statement-list '}'`
    pub(crate) fn block(&mut self) -> PResult<Block> {
        let start = self.pos;
        self.expect_char('{', "`{`")?;
        let statements = self.nested(|p| p.statement_list(Some('}')))?;
        self.expect_char('}', "`}`")?;
        Ok(Block {
            statements,
            span: self.span_from(start),
        })
    }

    /// Skips white space and newlines, then parses a block.
    fn block_after_ws(&mut self) -> PResult<Block> {
        self.skip_ws_nl()?;
        self.block()
    }

    /// `statement := if-statement | foreach-statement | for-statement | while-statement
    ///             | do-statement | switch-statement | function-statement | param-block
    ///             | named-block | try-statement | trap-statement | flow-statement
    ///             | pipeline-statement`
    pub(crate) fn statement(&mut self) -> PResult<Statement> {
        let start = self.pos;
        if self.peek() == Some('[') {
            if let Some(kind) = self.attributed_param_block()? {
                return Ok(Statement {
                    kind,
                    span: self.span_from(start),
                });
            }
        }
        if let Some(word) = self.keyword_at_cursor() {
            let lower = word.to_ascii_lowercase();
            let kind = match lower.as_str() {
                "if" => Some(self.if_statement()?),
                "foreach" => Some(self.foreach_statement()?),
                "for" => Some(self.for_statement()?),
                "while" => Some(self.while_statement()?),
                "do" => Some(self.do_statement()?),
                "switch" => Some(self.switch_statement()?),
                "function" | "filter" => Some(self.function_statement(&lower)?),
                "param" => Some(self.param_block()?),
                "try" => Some(self.try_statement()?),
                "trap" => Some(self.trap_statement()?),
                "return" | "throw" | "exit" | "break" | "continue" => {
                    Some(self.flow_statement(&lower)?)
                }
                "begin" | "process" | "end" | "clean" => self.named_block(&lower)?,
                k if UNSUPPORTED_KEYWORDS.contains(&k) => {
                    // PowerShell waits for the rest of such a statement (`class` alone is
                    // incomplete input); say so, so the shell does not run what follows alone.
                    if self.rest_blank_after(word.len()) {
                        return self.incomplete(format!("the `{word}` statement is not finished"));
                    }
                    return self.invalid(format!("the `{word}` keyword is not supported"));
                }
                k if DANGLING_KEYWORDS.contains(&k) => {
                    return self.invalid(format!("`{word}` without a statement it belongs to"));
                }
                _ => None,
            };
            if let Some(kind) = kind {
                return Ok(Statement {
                    kind,
                    span: self.span_from(start),
                });
            }
        }
        if self.peek() == Some(':') {
            if let Some(keyword) = self.keyword_after_label() {
                return self.invalid(format!(
                    "loop labels are not supported: `:label {keyword}` is a labelled loop, not a command"
                ));
            }
        }
        self.pipeline_statement()
    }

    /// PowerShell reads `:name` at the start of a statement as a loop label when `switch`,
    /// `foreach`, `for`, `while` or `do` follows (`Parser.LabeledStatementRule`), and as a command
    /// name otherwise. Labels are outside the subset, so the keyword is returned for the caller to
    /// refuse the line rather than read the loop as the command `:name` with arguments. The
    /// cursor is left where it was.
    fn keyword_after_label(&mut self) -> Option<&'a str> {
        let save = self.pos;
        self.bump();
        let name_start = self.pos;
        while self.peek_is(|c| !super::lex::ends_bare_word(c)) {
            self.bump();
        }
        let labelled = self.pos > name_start && self.skip_ws().is_ok();
        let keyword = self.keyword_at_cursor().filter(|_| labelled).filter(|k| {
            ["switch", "foreach", "for", "while", "do"]
                .iter()
                .any(|l| l.eq_ignore_ascii_case(k))
        });
        self.pos = save;
        keyword
    }

    /// The bare word at the cursor when it could be a keyword (letters only, then a non-word char).
    fn keyword_at_cursor(&self) -> Option<&'a str> {
        super::lex::keyword_prefix(self.rest())
    }

    /// `pipeline-statement := assignment | chain`
    /// `assignment := unary-expression assign-op ws-nl statement`
    /// `assign-op := '=' | '+=' | '-=' | '*=' | '/=' | '%=' | '??='`
    pub(crate) fn pipeline_statement(&mut self) -> PResult<Statement> {
        let start = self.pos;
        if self.peek_is(|c| c == '$' || c == '[') {
            // Parse the operand once; it is either an assignment target or the start of an
            // expression pipeline (re-parsing it would be exponential in the nesting).
            let target = self.unary_expression()?;
            self.skip_ws()?;
            if let Some(op) = self.assign_op() {
                self.skip_ws_nl()?;
                if self.at_end() {
                    return self.expected("a value after the assignment");
                }
                let value = self.nested(|p| p.statement())?;
                return Ok(Statement {
                    kind: StatementKind::Assignment {
                        target,
                        op,
                        value: Box::new(value),
                    },
                    span: self.span_from(start),
                });
            }
            let chain = self.chain(Some(target))?;
            return Ok(Statement {
                span: chain.span,
                kind: StatementKind::Chain(chain),
            });
        }
        let chain = self.chain(None)?;
        Ok(Statement {
            span: chain.span,
            kind: StatementKind::Chain(chain),
        })
    }

    fn assign_op(&mut self) -> Option<String> {
        for op in ["??=", "+=", "*=", "/=", "%="] {
            if self.eat_str(op) {
                return Some(op.to_string());
            }
        }
        let c = self.peek()?;
        if is_dash(c) && self.peek2() == Some('=') {
            self.bump();
            self.bump();
            return Some("-=".to_string());
        }
        if c == '=' {
            self.bump();
            return Some("=".to_string());
        }
        None
    }

    /// `chain := pipeline (('&&' | '||') ws-nl pipeline)*`
    pub(crate) fn chain(&mut self, first_operand: Option<Expr>) -> PResult<Chain> {
        let start = first_operand.as_ref().map_or(self.pos, |e| e.span.start);
        let first = self.pipeline(first_operand)?;
        let mut rest = Vec::new();
        loop {
            self.skip_ws()?;
            let op = if self.eat_str("&&") {
                "&&"
            } else if self.eat_str("||") {
                "||"
            } else {
                break;
            };
            self.skip_ws_nl()?;
            if self.at_end() {
                return self.expected(&format!("a pipeline after `{op}`"));
            }
            rest.push((op.to_string(), self.pipeline(None)?));
        }
        Ok(Chain {
            first,
            rest,
            span: self.span_from(start),
        })
    }

    /// `condition := '(' ws-nl pipeline-statement ws-nl ')'`
    fn condition(&mut self) -> PResult<Statement> {
        self.skip_ws()?;
        self.expect_char('(', "`(`")?;
        let st = self.nested(|p| {
            p.skip_ws_nl()?;
            let st = p.pipeline_statement()?;
            p.skip_ws_nl()?;
            Ok(st)
        })?;
        self.expect_char(')', "`)`")?;
        Ok(st)
    }

    /// `if-statement := 'if' condition block ('elseif' condition block)* ('else' block)?`
    fn if_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("if");
        let mut clauses = Vec::new();
        let cond = self.condition()?;
        let body = self.block_after_ws()?;
        clauses.push((cond, body));
        let mut else_block = None;
        loop {
            if self.eat_keyword_ahead("elseif")? {
                let cond = self.condition()?;
                let body = self.block_after_ws()?;
                clauses.push((cond, body));
            } else if self.eat_keyword_ahead("else")? {
                else_block = Some(self.block_after_ws()?);
                break;
            } else {
                break;
            }
        }
        Ok(StatementKind::If {
            clauses,
            else_block,
        })
    }

    /// `foreach-statement := 'foreach' '(' variable 'in' pipeline-statement ')' block`
    fn foreach_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("foreach");
        self.skip_ws()?;
        self.expect_char('(', "`(` after `foreach`")?;
        let (variable, iterable) = self.nested(|p| {
            p.skip_ws_nl()?;
            if !p.peek_is(|c| c == '$') {
                return p.expected("a loop variable");
            }
            let variable = p.variable()?;
            p.skip_ws_nl()?;
            if !p.eat_keyword("in") {
                return p.expected("`in`");
            }
            p.skip_ws_nl()?;
            let iterable = p.pipeline_statement()?;
            p.skip_ws_nl()?;
            Ok((variable, iterable))
        })?;
        self.expect_char(')', "`)`")?;
        let body = self.block_after_ws()?;
        Ok(StatementKind::Foreach {
            variable,
            iterable: Box::new(iterable),
            body,
        })
    }

    /// `for-statement := 'for' '(' statement? ';' statement? ';' statement? ')' block`
    fn for_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("for");
        self.skip_ws()?;
        self.expect_char('(', "`(` after `for`")?;
        let (init, condition, step) = self.nested(|p| {
            let mut parts: Vec<Option<Box<Statement>>> = Vec::new();
            for i in 0..3 {
                p.skip_ws_nl()?;
                if p.peek_is(|c| c == ';' || c == ')') {
                    parts.push(None);
                } else {
                    parts.push(Some(Box::new(p.pipeline_statement()?)));
                }
                p.skip_ws_nl()?;
                if i < 2 && !p.eat(';') && !p.peek_is(|c| c == ')') {
                    return p.expected("`;`");
                }
            }
            let mut it = parts.into_iter();
            Ok((
                it.next().flatten(),
                it.next().flatten(),
                it.next().flatten(),
            ))
        })?;
        self.expect_char(')', "`)`")?;
        let body = self.block_after_ws()?;
        Ok(StatementKind::For {
            init,
            condition,
            step,
            body,
        })
    }

    /// `while-statement := 'while' condition block`
    fn while_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("while");
        let condition = self.condition()?;
        let body = self.block_after_ws()?;
        Ok(StatementKind::While {
            condition: Box::new(condition),
            body,
        })
    }

    /// `do-statement := 'do' block ('while' | 'until') condition`
    fn do_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("do");
        let body = self.block_after_ws()?;
        let until = if self.eat_keyword_ahead("while")? {
            false
        } else if self.eat_keyword_ahead("until")? {
            true
        } else {
            self.skip_ws_nl()?;
            return self.expected("`while` or `until` after a `do` block");
        };
        let condition = self.condition()?;
        Ok(StatementKind::Do {
            body,
            until,
            condition: Box::new(condition),
        })
    }

    /// `switch-statement := 'switch' ('-' option)* condition '{' switch-clause* '}'`
    /// `switch-clause := ('default' | command-argument) block`
    fn switch_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("switch");
        let mut options = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek_is(is_dash) {
                self.bump();
                match self.recognise(super::lex::simple_name) {
                    Some(o) => options.push(o.to_ascii_lowercase()),
                    None => return self.expected("a switch option"),
                }
            } else {
                break;
            }
        }
        let subject = self.condition()?;
        self.skip_ws_nl()?;
        self.expect_char('{', "`{`")?;
        let clauses = self.nested(|p| {
            let mut clauses = Vec::new();
            loop {
                p.skip_separators()?;
                if p.peek() == Some('}') || p.at_end() {
                    break;
                }
                let cstart = p.pos;
                let pattern = if p.eat_keyword("default") {
                    None
                } else {
                    Some(p.command_argument()?)
                };
                let body = p.block_after_ws()?;
                clauses.push(SwitchClause {
                    pattern,
                    body,
                    span: p.span_from(cstart),
                });
            }
            Ok(clauses)
        })?;
        if self.at_end() {
            return self.incomplete("a `}` is missing");
        }
        self.expect_char('}', "`}`")?;
        Ok(StatementKind::Switch {
            options,
            subject: Box::new(subject),
            clauses,
        })
    }

    /// `function-statement := ('function' | 'filter') function-name ('(' param-list ')')? block`
    fn function_statement(&mut self, keyword: &str) -> PResult<StatementKind> {
        self.eat_keyword(keyword);
        self.skip_ws()?;
        // The name is a bare word: backtick escapes apply, as in a command name, so
        // `function Get-Mail``box` defines `Get-Mailbox` and is recognised as such.
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if super::lex::ends_bare_word(c) || super::lex::is_quote(c) {
                break;
            }
            self.bump();
            if c == '`' {
                match self.bump() {
                    Some(e) => name.push(self.escape(e)?),
                    None => return self.incomplete("a backtick ends the input"),
                }
            } else {
                name.push(c);
            }
        }
        if name.is_empty() {
            return self.expected("a function name");
        }
        if self.peek_is(|c| matches!(c, '<' | '>')) {
            return self.invalid("`<` or `>` directly after a function name is ambiguous");
        }
        self.check_name(&name, "function name")?;
        self.skip_ws_nl()?;
        let mut params = Vec::new();
        if self.eat('(') {
            params = self.nested(|p| p.param_list(')'))?;
            self.expect_char(')', "`)`")?;
        }
        let body = self.block_after_ws()?;
        Ok(StatementKind::Function {
            filter: keyword == "filter",
            name,
            params,
            body,
        })
    }

    /// `attributed-param-block := attribute+ ws-nl param-block` (`[CmdletBinding()] param(...)`)
    ///
    /// Returns `None` with the cursor unchanged when the `[...]` is a plain type literal.
    fn attributed_param_block(&mut self) -> PResult<Option<StatementKind>> {
        let save = self.pos;
        let attribute = self.attribute()?;
        if attribute.args.is_none() {
            self.pos = save;
            return Ok(None);
        }
        loop {
            self.skip_ws_nl()?;
            if self.peek() != Some('[') {
                break;
            }
            self.attribute()?;
        }
        if self
            .keyword_at_cursor()
            .is_some_and(|w| w.eq_ignore_ascii_case("param"))
        {
            return self.param_block().map(Some);
        }
        self.expected("`param(` after an attribute")
    }

    /// `param-block := 'param' '(' param-list ')'`
    fn param_block(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("param");
        self.skip_ws_nl()?;
        self.expect_char('(', "`(` after `param`")?;
        let params = self.nested(|p| p.param_list(')'))?;
        self.expect_char(')', "`)`")?;
        Ok(StatementKind::Param(params))
    }

    /// `param-list := (param-decl (',' param-decl)*)?`
    /// `param-decl := attribute* variable ('=' expression-no-comma)?`
    fn param_list(&mut self, close: char) -> PResult<Vec<ParamDecl>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws_nl()?;
            if self.peek() == Some(close) {
                return Ok(out);
            }
            let start = self.pos;
            let mut attributes = Vec::new();
            while self.peek() == Some('[') {
                attributes.push(self.attribute()?);
                self.skip_ws_nl()?;
            }
            if !self.peek_is(|c| c == '$') {
                return self.expected("a parameter variable");
            }
            let variable = self.variable()?;
            self.skip_ws_nl()?;
            let default = if self.eat('=') {
                self.skip_ws_nl()?;
                Some(self.expression_no_comma()?)
            } else {
                None
            };
            out.push(ParamDecl {
                attributes,
                variable,
                default,
                span: self.span_from(start),
            });
            self.skip_ws_nl()?;
            if !self.eat(',') {
                self.skip_ws_nl()?;
                if self.peek() != Some(close) {
                    return self.expected(&format!("`,` or `{close}`"));
                }
            }
        }
    }

    /// `attribute := '[' type-name ('(' attribute-args? ')')? ']'`
    /// `attribute-args := attribute-arg (',' attribute-arg)*`
    /// `attribute-arg := name ('=' expression)? | expression`
    fn attribute(&mut self) -> PResult<Attribute> {
        let start = self.pos;
        self.expect_char('[', "`[`")?;
        let name = self.type_name()?;
        self.skip_ws()?;
        let mut args = None;
        if self.eat('(') {
            let list = self.nested(|p| {
                let mut list = Vec::new();
                loop {
                    p.skip_ws_nl()?;
                    if p.peek() == Some(')') {
                        break;
                    }
                    let save = p.pos;
                    let named = p.recognise(super::lex::simple_name).map(str::to_string);
                    let arg = match named {
                        Some(n) => {
                            p.skip_ws_nl()?;
                            if p.eat('=') {
                                p.skip_ws_nl()?;
                                (Some(n), Some(p.expression()?))
                            } else if p.peek_is(|c| c == ',' || c == ')') {
                                (Some(n), None)
                            } else {
                                p.pos = save;
                                (None, Some(p.expression()?))
                            }
                        }
                        None => (None, Some(p.expression()?)),
                    };
                    list.push(arg);
                    p.skip_ws_nl()?;
                    if !p.eat(',') {
                        break;
                    }
                }
                Ok(list)
            })?;
            self.skip_ws_nl()?;
            self.expect_char(')', "`)`")?;
            args = Some(list);
        }
        self.skip_ws()?;
        self.expect_char(']', "`]`")?;
        Ok(Attribute {
            name,
            args,
            span: self.span_from(start),
        })
    }

    /// `named-block := ('begin' | 'process' | 'end') block`
    ///
    /// Only when a `{` follows; otherwise the word is an ordinary command name.
    fn named_block(&mut self, name: &str) -> PResult<Option<StatementKind>> {
        let save = self.pos;
        self.eat_keyword(name);
        self.skip_ws_nl()?;
        if self.peek() != Some('{') {
            // `Parser.NamedBlockListRule`: a block name at the start of a script body needs its
            // block; at the end of the input PowerShell waits for it.
            if self.at_end() {
                return self.incomplete(format!("a `{{` is missing after `{name}`"));
            }
            self.pos = save;
            return Ok(None);
        }
        let body = self.block()?;
        Ok(Some(StatementKind::NamedBlock {
            name: name.to_string(),
            body,
        }))
    }

    /// `try-statement := 'try' block catch-clause* ('finally' block)?`
    /// `catch-clause := 'catch' (type-literal (',' type-literal)*)? block`
    fn try_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("try");
        let body = self.block_after_ws()?;
        let mut catches = Vec::new();
        while self.eat_keyword_ahead("catch")? {
            let types = self.type_list()?;
            catches.push((types, self.block_after_ws()?));
        }
        let finally = if self.eat_keyword_ahead("finally")? {
            Some(self.block_after_ws()?)
        } else {
            None
        };
        if catches.is_empty() && finally.is_none() {
            self.skip_ws_nl()?;
            return self.expected("`catch` or `finally` after a `try` block");
        }
        Ok(StatementKind::Try {
            body,
            catches,
            finally,
        })
    }

    /// `trap-statement := 'trap' type-literal? block`
    fn trap_statement(&mut self) -> PResult<StatementKind> {
        self.eat_keyword("trap");
        let types = self.type_list()?;
        let body = self.block_after_ws()?;
        Ok(StatementKind::Trap { types, body })
    }

    fn type_list(&mut self) -> PResult<Vec<String>> {
        let mut types = Vec::new();
        loop {
            self.skip_ws_nl()?;
            if !self.eat('[') {
                return Ok(types);
            }
            types.push(self.type_name()?);
            self.expect_char(']', "`]`")?;
            self.skip_ws_nl()?;
            if !self.eat(',') {
                return Ok(types);
            }
        }
    }

    /// `flow-statement := ('return' | 'throw' | 'exit' | 'break' | 'continue') pipeline-statement?`
    fn flow_statement(&mut self, keyword: &str) -> PResult<StatementKind> {
        self.eat_keyword(keyword);
        let value = if self.at_statement_end()?
            || self.rest().starts_with("&&")
            || self.rest().starts_with("||")
            || self.peek() == Some('|')
        {
            None
        } else {
            Some(Box::new(self.nested(|p| p.pipeline_statement())?))
        };
        Ok(StatementKind::Flow {
            keyword: keyword.to_string(),
            value,
        })
    }
}
