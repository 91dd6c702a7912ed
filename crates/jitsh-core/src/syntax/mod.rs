//! The PowerShell subset parser: `&str` → [`ast::Script`] with a [`crate::span::Span`] on every
//! node, or a [`ParseError`] that says whether more input could complete the line.
//!
//! The accepted language is `grammar/jitsh.ebnf`; every parser function is named after its
//! production and quotes it. Where PowerShell's reading of a line is ambiguous or depends on
//! run-time state, jitsh rejects the line instead of guessing (grammar/README.md lists where).
//!
//! INVARIANTS: pure (no I/O, no global state); never panics on any input; nesting is bounded by
//! [`MAX_DEPTH`], beyond which the result is [`ParseErrorKind::DepthLimit`], so neither the parser
//! nor any consumer recursing over the tree can exhaust the stack.

pub mod ast;
mod block;
mod command;
mod error;
mod expr;
mod lex;
mod number;
mod parser;
mod print;
mod string;

pub use error::{ParseError, ParseErrorKind};
pub(crate) use number::is_plain_integer;
pub use number::number_value;
pub use print::print;

/// Deepest nesting of blocks, brackets, subexpressions, strings and unary operators accepted.
pub const MAX_DEPTH: usize = 32;

/// Parses one submitted line (which may span several physical lines).
pub fn parse(src: &str) -> Result<ast::Script, ParseError> {
    parser::Parser::new(src).script()
}

/// Entry point for fuzzers: parses arbitrary bytes (invalid UTF-8 is replaced) and, when the
/// parse succeeds, asserts that the print parses again, runs the same invocations and prints
/// the same (see [`crate::resolve::round_trip`]).
///
/// # Panics
/// When the round trip does not hold: that is the finding the fuzzer reports.
#[allow(
    clippy::panic,
    reason = "a fuzz entry point reports a broken property by panicking"
)]
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = crate::resolve::round_trip(&text, crate::catalog::Catalog::builtin()) {
        panic!("print round trip fails for {text:?}: {e}");
    }
}

#[cfg(test)]
mod tests;
