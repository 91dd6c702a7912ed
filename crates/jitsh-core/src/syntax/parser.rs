//! The parser state shared by the grammar areas (`block`, `command`, `expr`, `string`): a byte
//! cursor over the source, the nesting depth, and the helpers every production uses.
//!
//! INVARIANT: `pos` is always on a char boundary of `src` (it only moves by whole chars or by the
//! length of text a recogniser consumed), and every slice goes through `get`, so no input can
//! make the parser panic.

use crate::span::Span;

use super::error::{ParseError, ParseErrorKind};
use super::lex::{escape_char, is_newline, is_space};
use super::MAX_DEPTH;

pub(crate) type PResult<T> = Result<T, ParseError>;

#[derive(Debug)]
pub(crate) struct Parser<'a> {
    pub(crate) src: &'a str,
    pub(crate) pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            depth: 0,
        }
    }

    /// The unparsed rest of the input.
    pub(crate) fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        // Lines are mostly ASCII: a byte below 0x80 is a whole character, no decoding needed.
        match self.src.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            Some(_) => self.rest().chars().next(),
            None => None,
        }
    }

    pub(crate) fn peek2(&self) -> Option<char> {
        let bytes = self.src.as_bytes();
        if let (Some(&a), Some(&b)) = (bytes.get(self.pos), bytes.get(self.pos + 1)) {
            if a.is_ascii() && b.is_ascii() {
                return Some(char::from(b));
            }
        }
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    pub(crate) fn peek_is(&self, f: impl Fn(char) -> bool) -> bool {
        self.peek().is_some_and(f)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Runs a nom recogniser on the rest of the input and advances past what it consumed.
    pub(crate) fn recognise(
        &mut self,
        f: impl Fn(&'a str) -> nom::IResult<&'a str, &'a str>,
    ) -> Option<&'a str> {
        let rest = self.rest();
        match f(rest) {
            Ok((after, matched)) => {
                self.pos += rest.len().saturating_sub(after.len());
                Some(matched)
            }
            Err(_) => None,
        }
    }

    /// Takes the run of ASCII bytes at the cursor that `keep` accepts. Callers pass the ASCII
    /// characters their own loop would take one at a time as plain text, so the run is exactly
    /// what that loop would have copied, in one piece. Stops at any non-ASCII byte, which is
    /// always on a char boundary; the caller's loop decides what such a character is (a
    /// typographic quote or dash, a Unicode space).
    pub(crate) fn ascii_run(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest
            .bytes()
            .take_while(|&b| b.is_ascii() && keep(b))
            .count();
        self.pos += n;
        rest.get(..n).unwrap_or("")
    }

    pub(crate) fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.pos)
    }

    pub(crate) fn text(&self, span: Span) -> &'a str {
        span.text(self.src)
    }

    /// Enters one level of nesting; fails with `DepthLimit` beyond [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::new(
                ParseErrorKind::DepthLimit,
                format!("nesting is deeper than {MAX_DEPTH} levels"),
                self.pos,
            ));
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Runs `f` one nesting level deeper.
    pub(crate) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.enter()?;
        let r = f(self);
        self.leave();
        r
    }

    pub(crate) fn invalid<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(ParseError::new(ParseErrorKind::Invalid, message, self.pos))
    }

    pub(crate) fn incomplete<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(ParseError::new(
            ParseErrorKind::Incomplete,
            message,
            self.pos,
        ))
    }

    /// An error for a missing `what`: `Incomplete` when only white space is left (the user may
    /// still type it), `Invalid` otherwise.
    pub(crate) fn expected<T>(&self, what: &str) -> PResult<T> {
        let rest_blank = self.rest().chars().all(|c| is_space(c) || is_newline(c));
        if rest_blank {
            self.incomplete(format!("input ended where {what} was expected"))
        } else {
            let found: String = self.rest().chars().take(12).collect();
            self.invalid(format!("expected {what}, found `{found}`"))
        }
    }

    /// `ws := (space | '`' newline | block-comment | line-comment)*`
    ///
    /// Skips horizontal white space, line continuations and comments; a line comment stops
    /// before its newline.
    ///
    /// Inlined at its callers (a line makes about ten calls): most find a space or two before
    /// a plain ASCII character, settled here; [`Parser::skip_ws_rest`] takes everything else.
    #[inline]
    pub(crate) fn skip_ws(&mut self) -> PResult<()> {
        // Between the tokens of most lines stand plain spaces before an ASCII character that
        // starts no comment or escape: settled byte by byte here, the same way the loop of
        // `skip_ws_rest` would settle it (ASCII white space is tab, VT, FF and space; `\n` and
        // `\r` end it).
        let bytes = self.src.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(b' ' | b'\t') => self.pos += 1,
                None => return Ok(()),
                Some(&b) if b.is_ascii() && !matches!(b, b'`' | b'#' | b'<' | 0x0b | 0x0c) => {
                    return Ok(())
                }
                Some(_) => return self.skip_ws_rest(),
            }
        }
    }

    /// The rest of [`Parser::skip_ws`]: white space other than ASCII space and tab, line
    /// continuations and comments.
    #[inline(never)]
    fn skip_ws_rest(&mut self) -> PResult<()> {
        loop {
            let Some(c) = self.peek() else { return Ok(()) };
            if is_space(c) {
                self.bump();
            } else if c == '`' {
                // At the start of a token a backtick before a newline continues the line and one
                // before white space is white space (`Tokenizer.NextToken`, `SkipWhiteSpace`);
                // .NET's `char.IsWhiteSpace` is Rust's `char::is_whitespace`.
                match self.peek2() {
                    None => return self.incomplete("a line-continuation backtick ends the input"),
                    Some('\n') => self.pos += 2,
                    Some('\r') => {
                        self.pos += 2;
                        self.eat('\n');
                    }
                    Some(n) if n.is_whitespace() => {
                        self.bump();
                        self.bump();
                        continue;
                    }
                    Some(_) => return Ok(()),
                }
                if self.at_end() {
                    return self.incomplete("a line-continuation backtick ends the input");
                }
            } else if c == '#' {
                // `#requires -Modules X` is a statement in comment form: it can load a module.
                let head: String = self.rest().chars().take(9).collect();
                if head.eq_ignore_ascii_case("#requires") {
                    return self.invalid("`#requires` is not supported: it can load modules");
                }
                while self.peek_is(|c| !is_newline(c)) {
                    self.bump();
                }
            } else if self.rest().starts_with("<#") {
                self.block_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    /// The character a backtick escape stands for; the cursor is after `` `c `` (`c` consumed).
    /// `` `u{hex} `` (one to six hex digits) is a code point, as in PowerShell
    /// (`Tokenizer.Backtick`, `ScanUnicodeEscape`); a malformed one is an error there too.
    pub(crate) fn escape(&mut self, c: char) -> PResult<char> {
        if c != 'u' {
            return Ok(escape_char(c));
        }
        let start = self.pos;
        if !self.eat('{') {
            return self.invalid("`` `u `` must be followed by `{hex digits}`");
        }
        let digits: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .take(7)
            .collect();
        self.pos += digits.len();
        if digits.is_empty() || digits.len() > 6 || !self.eat('}') {
            self.pos = start;
            return self.invalid("a `` `u{...} `` escape needs one to six hex digits and `}`");
        }
        match u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
        {
            Some(ch) => Ok(ch),
            None => {
                self.pos = start;
                self.invalid(format!("`` `u{{{digits}}} `` is not a Unicode character"))
            }
        }
    }

    /// `block-comment := '<#' any* '#>'`
    fn block_comment(&mut self) -> PResult<()> {
        let start = self.pos;
        self.pos += 2;
        match self.rest().find("#>") {
            Some(i) => {
                self.pos += i + 2;
                Ok(())
            }
            None => {
                self.pos = start;
                self.incomplete("a `<#` block comment is not closed")
            }
        }
    }

    /// Whether only white space, newlines and comments follow the `skip` bytes after the cursor.
    pub(crate) fn rest_blank_after(&mut self, skip: usize) -> bool {
        let save = self.pos;
        self.pos = (self.pos + skip).min(self.src.len());
        let blank = self.skip_ws_nl().is_ok() && self.at_end();
        self.pos = save;
        blank
    }

    /// `ws-nl := (ws | newline)*`
    pub(crate) fn skip_ws_nl(&mut self) -> PResult<()> {
        loop {
            self.skip_ws()?;
            if self.peek_is(is_newline) {
                self.bump();
            } else {
                return Ok(());
            }
        }
    }

    /// Skips white space, newlines and `;` between statements.
    pub(crate) fn skip_separators(&mut self) -> PResult<()> {
        loop {
            self.skip_ws_nl()?;
            if !self.eat(';') {
                return Ok(());
            }
        }
    }

    /// Whether a newline, `;`, closing bracket or the end follows (after horizontal white space
    /// and comments, which are consumed).
    pub(crate) fn at_statement_end(&mut self) -> PResult<bool> {
        self.skip_ws()?;
        Ok(match self.peek() {
            None => true,
            Some(c) => is_newline(c) || matches!(c, ';' | ')' | '}'),
        })
    }

    /// Looks for the keyword `kw` (case-insensitive, not followed by a name character) after
    /// white space and newlines; consumes it when present, otherwise restores the position.
    pub(crate) fn eat_keyword_ahead(&mut self, kw: &str) -> PResult<bool> {
        let save = self.pos;
        self.skip_ws_nl()?;
        if self.eat_keyword(kw) {
            Ok(true)
        } else {
            self.pos = save;
            Ok(false)
        }
    }

    /// Consumes keyword `kw` at the cursor (case-insensitive, whole word only).
    pub(crate) fn eat_keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..kw.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(kw) {
            return false;
        }
        let next = rest.get(kw.len()..).and_then(|r| r.chars().next());
        if next.is_some_and(|c| super::lex::is_name_char(c) || c == '-' || c == '\\' || c == '.') {
            return false;
        }
        self.pos += kw.len();
        true
    }

    /// `'{' ... '}'` expectation helper: consumes `c` or fails.
    pub(crate) fn expect_char(&mut self, c: char, what: &str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.expected(what)
        }
    }
}
