//! Character classes and small token recognisers shared by the parser: whitespace, dashes and
//! quotes (PowerShell accepts several Unicode forms of each), backtick escapes, names.

use nom::bytes::complete::{take_while, take_while1};
use nom::{IResult, Parser as _};

/// `dash := '-' | U+2013 | U+2014 | U+2015`
pub(crate) fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

/// `single-quote := "'" | U+2018 | U+2019 | U+201A | U+201B`
pub(crate) fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// `double-quote := '"' | U+201C | U+201D | U+201E`
pub(crate) fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

pub(crate) fn is_quote(c: char) -> bool {
    is_single_quote(c) || is_double_quote(c)
}

/// Horizontal white space as PowerShell counts it (`CharExtensions.IsWhitespace`): space, tab,
/// vertical tab, form feed, NBSP, NEL and the Unicode separators (Zs, Zl, Zp). Newlines are
/// statement separators, not white space. U+FEFF and the other format characters are not white
/// space to PowerShell; the parser rejects them (see `is_rejected_char`).
pub(crate) fn is_space(c: char) -> bool {
    c != '\n' && c != '\r' && c.is_whitespace()
}

pub(crate) fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Characters that end a generic token (a bare word or command name) and start a new one:
/// PowerShell's `ForceStartNewToken` trait (white space, newlines, NUL, `& ( ) , ; { | }`).
/// `<`, `>` and `#` do not: `a>b` is one word, not a redirection, and `a<#` opens no comment.
pub(crate) fn ends_token(c: char) -> bool {
    is_space(c)
        || is_newline(c)
        || matches!(c, '\0' | '&' | '(' | ')' | ',' | ';' | '{' | '|' | '}')
}

/// Characters that cannot start a command argument: token breaks, and `<`/`>`, which start a
/// redirection there.
pub(crate) fn ends_bare_word(c: char) -> bool {
    ends_token(c) || matches!(c, '<' | '>')
}

/// Characters jitsh refuses anywhere in a line: control characters other than tab, vertical tab,
/// form feed, CR, LF and NEL (PowerShell reads NUL as a token break and the others as parts of a
/// name), and Unicode format characters (zero-width spaces and joiners, direction marks, U+FEFF),
/// which are invisible but make a name differ from the one a policy lists.
pub(crate) fn is_rejected_char(c: char) -> bool {
    // Printable ASCII, nearly every character of a line, is neither.
    if (' '..='~').contains(&c) {
        return false;
    }
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}'))
        || is_format_char(c)
}

/// Unicode general category Cf (format characters).
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{ad}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}')
}

/// `name-char := letter | digit | '_'`
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The character a backtick escape stands for (`` `n `` is a newline, `` `x `` is `x`).
pub(crate) fn escape_char(c: char) -> char {
    match c {
        '0' => '\0',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'e' => '\u{1b}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        other => other,
    }
}

/// `simple-name := name-char+`
pub(crate) fn simple_name(i: &str) -> IResult<&str, &str> {
    take_while1(is_name_char).parse(i)
}

/// `type-name-chars := (name-char | '.' | '`' | '+' | ',' | ' ')*` (brackets handled by the caller)
pub(crate) fn type_name_chars(i: &str) -> IResult<&str, &str> {
    take_while(|c: char| is_name_char(c) || matches!(c, '.' | '+' | '`' | ',' | ' ')).parse(i)
}

/// The word at the start of `rest` when the reader would take it for a keyword, were it one:
/// ASCII letters only, followed by the end or a character that does not continue a command
/// name (`do+` starts with the keyword `do`; `dog`, `do-it`, `do.ps1` and `do:` do not).
pub(crate) fn keyword_prefix(rest: &str) -> Option<&str> {
    let len = rest
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphabetic())
        .map_or(rest.len(), |(i, _)| i);
    let word = rest.get(..len).filter(|w| !w.is_empty())?;
    let next = rest.get(len..).and_then(|r| r.chars().next());
    if next.is_some_and(|c| is_name_char(c) || is_dash(c) || matches!(c, '\\' | '.' | ':')) {
        return None;
    }
    Some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_dashes_and_quotes() {
        assert!(is_dash('\u{2013}') && is_dash('\u{2015}') && !is_dash('_'));
        assert!(is_single_quote('\u{2019}') && is_double_quote('\u{201E}'));
        assert!(!is_quote('`'));
    }
}
