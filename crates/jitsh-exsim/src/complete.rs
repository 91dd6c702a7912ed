//! When the simulated console host reads a line as incomplete (and so waits for more code at a
//! bare `>> `), following PowerShell's tokenizer and parser rather than jitsh's.
//!
//! PowerShell reports "incomplete input" when its parser runs out of text inside a construct
//! that is still open. The rules modelled here (from PowerShell's `tokenizer.cs` and
//! `Parser.cs`):
//! - an open `'...'` or `"..."` string (the typographic quotes count too), here-string
//!   (`@'`/`@"` header, closed only by `'@`/`"@` at the start of a line) or `<# ... #>` comment;
//! - an open `(`, `$(`, `@(`, `{`, `@{`, or `[` (a type literal or an index: `'x'[`, `$a[`),
//!   also inside a `"..."` string's `$( ... )`. A `[` inside a bare word (`Get-Item a[`) is
//!   part of the word;
//! - a backtick as the last character (a line continuation);
//! - a last token `|`, `&&`, `||`, `,` or `=` (comments after it do not count).
//!
//! `#` starts a comment except inside a bare word (`a#b` is one word). Binary operators at the
//! end (`(1 +`) are not modelled; that needs the parser's expression/argument modes.
//!
//! This is deliberately independent of `crate::syntax`: the simulated runspace must be able
//! to disagree with the gate, as a real PowerShell can.

/// Deepest nesting followed; deeper input is read as incomplete (it never runs).
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Paren,
    Brace,
    Bracket,
    /// Inside a `"..."` string (a `$(` in it pushes a `Paren` on top).
    Dq,
}

/// The last significant token seen in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    /// `|`, `&&`, `||`, `,`, `=`: PowerShell wants more after it.
    Continues,
    Other,
}

/// What the previous character in code was part of, for `[` and `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// Not in a word: whitespace, an operator, an opening bracket, start of input.
    Gap,
    /// A bare word (`Get-Item`, `a`): `[` and `#` continue it.
    Bare,
    /// A variable, a closing quote or bracket: `[` indexes, `#` starts a comment.
    Value,
    /// A member name after a value (`'x'.Length`): like a value.
    Member,
}

fn single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}')
}

fn double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201c}' | '\u{201d}' | '\u{201e}')
}

/// Whether PowerShell's console host would read `text` as incomplete and wait for more lines.
pub fn incomplete(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut stack: Vec<Frame> = Vec::new();
    let mut last = Last::None;
    let mut word = Word::Gap;
    let mut i = 0;
    while i < chars.len() {
        if stack.len() > MAX_DEPTH {
            return true;
        }
        let c = chars.get(i).copied().unwrap_or(' ');
        let next = chars.get(i + 1).copied();
        if stack.last() == Some(&Frame::Dq) {
            match c {
                '`' => i += 2,
                '$' if next == Some('(') => {
                    stack.push(Frame::Paren);
                    i += 2;
                }
                c if double_quote(c) => {
                    if next.is_some_and(double_quote) {
                        i += 2;
                    } else {
                        stack.pop();
                        word = Word::Value;
                        i += 1;
                    }
                }
                _ => i += 1,
            }
            continue;
        }
        // Code.
        match c {
            '`' => {
                if next.is_none() {
                    return true;
                }
                // An escaped character is part of a word.
                word = Word::Bare;
                last = Last::Other;
                i += 2;
                continue;
            }
            c if c.is_whitespace() => {
                word = Word::Gap;
                i += 1;
                continue;
            }
            '#' if word != Word::Bare => {
                // A comment, to the end of the line.
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '<' if next == Some('#') => match find(&chars, i + 2, &['#', '>']) {
                Some(end) => {
                    i = end + 2;
                    continue;
                }
                None => return true,
            },
            '@' if next.is_some_and(|n| single_quote(n) || double_quote(n)) => {
                // A here-string header ends its line; `@'x` on one line is a plain `@` and a
                // string, which the rules below cover.
                let mut j = i + 2;
                while chars
                    .get(j)
                    .is_some_and(|&c| c != '\n' && c.is_whitespace())
                {
                    j += 1;
                }
                if j >= chars.len() || chars.get(j) == Some(&'\n') {
                    let quote_is_single = next.is_some_and(single_quote);
                    match here_string_end(&chars, j, quote_is_single) {
                        Some(end) => {
                            i = end;
                            word = Word::Value;
                            last = Last::Other;
                            continue;
                        }
                        None => return true,
                    }
                }
                word = Word::Value;
                i += 1;
                continue;
            }
            c if single_quote(c) => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return true,
                        Some(&q) if single_quote(q) => {
                            if chars.get(j + 1).copied().is_some_and(single_quote) {
                                j += 2;
                            } else {
                                break;
                            }
                        }
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                word = Word::Value;
                last = Last::Other;
                continue;
            }
            c if double_quote(c) => {
                stack.push(Frame::Dq);
                last = Last::Other;
                i += 1;
                continue;
            }
            '(' | '{' => {
                stack.push(if c == '(' { Frame::Paren } else { Frame::Brace });
                word = Word::Gap;
                last = Last::Other;
            }
            '[' if word != Word::Bare => {
                stack.push(Frame::Bracket);
                word = Word::Gap;
                last = Last::Other;
            }
            ')' | '}' | ']' => {
                let want = match c {
                    ')' => Frame::Paren,
                    '}' => Frame::Brace,
                    _ => Frame::Bracket,
                };
                if stack.last() == Some(&want) {
                    stack.pop();
                }
                // An unmatched closer is a syntax error, not incomplete input.
                word = Word::Value;
                last = Last::Other;
            }
            '|' => {
                last = Last::Continues;
                word = Word::Gap;
                if next == Some('|') {
                    i += 1;
                }
            }
            '&' if next == Some('&') => {
                last = Last::Continues;
                word = Word::Gap;
                i += 1;
            }
            ',' | '=' => {
                last = Last::Continues;
                word = Word::Gap;
            }
            ';' => {
                last = Last::Other;
                word = Word::Gap;
            }
            '$' => {
                word = Word::Value;
                last = Last::Other;
                if next == Some('(') {
                    stack.push(Frame::Paren);
                    word = Word::Gap;
                    i += 2;
                    continue;
                }
                // The variable's name; `[` after it is an index.
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|&c| c.is_alphanumeric() || matches!(c, '_' | ':' | '?'))
                {
                    i += 1;
                }
                continue;
            }
            '.' if word == Word::Value => {
                // Member access: `'x'.Length[` indexes the member.
                word = Word::Member;
                last = Last::Other;
            }
            c if word == Word::Member && (c.is_alphanumeric() || c == '_') => {
                last = Last::Other;
            }
            _ => {
                word = Word::Bare;
                last = Last::Other;
            }
        }
        i += 1;
    }
    !stack.is_empty() || last == Last::Continues
}

/// Index of the first occurrence of `pat` at or after `from`.
fn find(chars: &[char], from: usize, pat: &[char]) -> Option<usize> {
    (from..chars.len()).find(|&k| chars.get(k..k + pat.len()) == Some(pat))
}

/// The index after a here-string's closing `'@`/`"@`, which must start a line after `from`
/// (the header's line break).
fn here_string_end(chars: &[char], from: usize, single: bool) -> Option<usize> {
    let mut k = from;
    while k < chars.len() {
        if chars.get(k) == Some(&'\n') {
            let quote = chars.get(k + 1).copied();
            let closes = quote.is_some_and(|q| {
                if single {
                    single_quote(q)
                } else {
                    double_quote(q)
                }
            }) && chars.get(k + 2) == Some(&'@');
            if closes {
                return Some(k + 3);
            }
        }
        k += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::incomplete;

    #[test]
    fn open_constructs_are_incomplete() {
        for text in [
            "'x'[",
            "\"x\"[",
            "'x'[0",
            "$a[",
            "Get-Mailbox (",
            "Get-Mailbox -Identity ('bob'",
            "Get-Mailbox $(Get-Date",
            "Get-Mailbox @(1,",
            "Get-Mailbox -Filter {",
            "@{ a = 1",
            "[int",
            "Get-Mailbox 'bob",
            "Get-Mailbox \"bob $(Get-Date",
            "Get-Mailbox \"bob",
            "Get-Mailbox \u{2018}bob",
            "Get-Mailbox @'",
            "Get-Mailbox @\"  ",
            "Get-Mailbox @'\nline\n",
            "Get-Mailbox <# note",
            "Get-Mailbox bob`",
            "Get-Mailbox |",
            "Get-Mailbox | # then",
            "Get-Mailbox bob ||",
            "Get-Mailbox bob &&",
            "Get-Mailbox bob,",
            "$x =",
            "'a'|",
            "'x'.Length[",
        ] {
            assert!(incomplete(text), "{text:?} should be incomplete");
        }
    }

    #[test]
    fn closed_lines_are_complete() {
        for text in [
            "",
            "Get-Mailbox",
            "Get-Mailbox -Identity bob",
            "'x'[0]",
            "$a[1]",
            "Get-Item a[",
            "Get-Mailbox a#b",
            "Get-Mailbox # a ( comment",
            "Get-Mailbox 'it''s'",
            "Get-Mailbox \"a `\" b\"",
            "Get-Mailbox \"a $(Get-Date) b\"",
            "Get-Mailbox @'\nline\n'@",
            "Get-Mailbox <# a #> bob",
            "Get-Mailbox | Select-Object Name",
            "Get-Mailbox bob -and",
            "Get-Mailbox )",
        ] {
            assert!(!incomplete(text), "{text:?} should be complete");
        }
    }

    #[test]
    fn deep_nesting_is_incomplete_not_a_crash() {
        assert!(incomplete(&"(".repeat(100_000)));
        assert!(incomplete(&"\"$(".repeat(10_000)));
    }
}
