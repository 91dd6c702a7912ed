//! The parser's one error type.

use serde::Serialize;

/// Why a line did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ParseErrorKind {
    /// The input ended inside an unclosed quote, bracket, here-string, after a trailing pipe or
    /// operator, or after a line-continuation backtick: the shell should ask for another line.
    Incomplete,
    /// The input is not in the accepted language (see grammar/README.md).
    Invalid,
    /// Nesting is deeper than [`super::MAX_DEPTH`].
    DepthLimit,
}

/// A parse failure at byte `offset` of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub message: String,
    pub offset: usize,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, message: impl Into<String>, offset: usize) -> Self {
        ParseError {
            kind,
            message: message.into(),
            offset,
        }
    }
}
