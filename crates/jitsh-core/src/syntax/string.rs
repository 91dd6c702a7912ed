//! Quoted strings, here-strings and the expansions inside double-quoted ones.

use smol_str::{SmolStr, SmolStrBuilder};

use super::ast::*;
use super::lex::{is_double_quote, is_name_char, is_newline, is_single_quote, is_space};
use super::parser::{PResult, Parser};

impl<'a> Parser<'a> {
    /// `quoted-string := single-quoted | double-quoted`
    pub(crate) fn quoted_string(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let (quoting, parts) = if self.peek_is(is_single_quote) {
            (Quoting::Single, self.single_quoted_body()?)
        } else {
            (Quoting::Double, self.double_quoted_body()?)
        };
        Ok(Expr {
            kind: ExprKind::String(StringLit { quoting, parts }),
            span: self.span_from(start),
        })
    }

    /// `single-quoted := single-quote (char | single-quote single-quote)* single-quote`
    ///
    /// Any of the single-quote characters closes the string; two in a row stand for one.
    pub(crate) fn single_quoted_body(&mut self) -> PResult<Vec<StringPart>> {
        let open = self.pos;
        self.bump();
        let mut text = SmolStrBuilder::new();
        loop {
            // Every ASCII character but the quote is text here.
            text.push_str(self.ascii_run(|b| b != b'\''));
            match self.bump() {
                None => {
                    return Err(super::error::ParseError::new(
                        super::error::ParseErrorKind::Incomplete,
                        "a single-quoted string is not closed",
                        open,
                    ))
                }
                Some(c) if is_single_quote(c) => {
                    if self.peek_is(is_single_quote) {
                        self.bump();
                        text.push(c);
                    } else {
                        return Ok(vec![StringPart::Text(text.finish())]);
                    }
                }
                Some(c) => text.push(c),
            }
        }
    }

    /// `double-quoted := double-quote (char | '`' char | double-quote double-quote | expansion)* double-quote`
    pub(crate) fn double_quoted_body(&mut self) -> PResult<Vec<StringPart>> {
        let open = self.pos;
        self.bump();
        self.expandable(open, false)
    }

    /// The body of a double-quoted string or `@" "@` here-string after its opening; consumes the
    /// closing quote (or the `"@` line).
    fn expandable(&mut self, open: usize, here: bool) -> PResult<Vec<StringPart>> {
        // Most strings are one part (text) or a few.
        let mut parts = Vec::with_capacity(2);
        let mut text = SmolStrBuilder::new();
        loop {
            // The ASCII characters the loop below pushes as they are: all but the closing quote,
            // a backtick, `$` and (in a here-string) a newline.
            text.push_str(self.ascii_run(|b| {
                !(matches!(b, b'"' | b'`' | b'$') || (here && matches!(b, b'\n' | b'\r')))
            }));
            let Some(c) = self.peek() else {
                return Err(super::error::ParseError::new(
                    super::error::ParseErrorKind::Incomplete,
                    if here {
                        "a here-string is not closed by a line starting with `\"@`"
                    } else {
                        "a double-quoted string is not closed"
                    },
                    open,
                ));
            };
            if here && is_newline(c) && self.here_end_after_newline(is_double_quote) {
                break;
            }
            if !here && is_double_quote(c) {
                self.bump();
                if self.peek_is(is_double_quote) {
                    self.bump();
                    text.push(c);
                    continue;
                }
                break;
            }
            if c == '`' {
                self.bump();
                match self.bump() {
                    Some(e) => text.push(self.escape(e)?),
                    None => {
                        return Err(super::error::ParseError::new(
                            super::error::ParseErrorKind::Incomplete,
                            "a string is not closed",
                            open,
                        ))
                    }
                }
                continue;
            }
            if c == '$' {
                let vstart = self.pos;
                let n = self.peek2();
                if n == Some('(') {
                    self.bump();
                    let stmts = self.subexpression_body()?;
                    flush(&mut parts, &mut text);
                    parts.push(StringPart::Subexpression(stmts, self.span_from(vstart)));
                    continue;
                }
                if n.is_some_and(|n| is_name_char(n) || matches!(n, '{' | '?' | '^' | '$')) {
                    let v = self.variable()?;
                    flush(&mut parts, &mut text);
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
        Ok(parts)
    }

    /// At a newline inside a here-string: when the next line starts with the closing quote and
    /// `@`, consumes newline, quote and `@` and returns true.
    fn here_end_after_newline(&mut self, is_close: fn(char) -> bool) -> bool {
        let save = self.pos;
        self.eat('\r');
        self.eat('\n');
        if self.peek_is(is_close) && self.peek2() == Some('@') {
            self.bump();
            self.bump();
            return true;
        }
        self.pos = save;
        false
    }

    /// `here-string := '@' single-quote ws newline any* newline single-quote '@'
    ///               | '@' double-quote ws newline (char | '`' char | expansion)* newline double-quote '@'`
    pub(crate) fn here_string(&mut self) -> PResult<Expr> {
        let start = self.pos;
        self.bump();
        let single = self.peek_is(is_single_quote);
        self.bump();
        while self.peek_is(is_space) {
            self.bump();
        }
        match self.peek() {
            None => return self.incomplete("a here-string is not closed"),
            Some(c) if is_newline(c) => {
                if self.eat('\r') {
                    self.eat('\n');
                } else {
                    self.bump();
                }
            }
            Some(_) => {
                return self.invalid("a here-string's opening `@'` or `@\"` must end its line")
            }
        }
        let close: fn(char) -> bool = if single {
            is_single_quote
        } else {
            is_double_quote
        };
        let parts = if self.peek_is(close) && self.peek2() == Some('@') {
            self.bump();
            self.bump();
            vec![StringPart::Text(SmolStr::default())]
        } else if single {
            let mut text = SmolStrBuilder::new();
            loop {
                let Some(c) = self.peek() else {
                    return Err(super::error::ParseError::new(
                        super::error::ParseErrorKind::Incomplete,
                        "a here-string is not closed by a line starting with `'@`",
                        start,
                    ));
                };
                if is_newline(c) && self.here_end_after_newline(close) {
                    break;
                }
                text.push(c);
                self.bump();
            }
            vec![StringPart::Text(text.finish())]
        } else {
            self.expandable(start, true)?
        };
        Ok(Expr {
            kind: ExprKind::String(StringLit {
                quoting: if single {
                    Quoting::HereSingle
                } else {
                    Quoting::HereDouble
                },
                parts,
            }),
            span: self.span_from(start),
        })
    }
}

fn flush(parts: &mut Vec<StringPart>, text: &mut SmolStrBuilder) {
    if !text.is_empty() {
        parts.push(StringPart::Text(std::mem::take(text).finish()));
    }
}
