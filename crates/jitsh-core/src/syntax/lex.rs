//! Character classes and small token recognisers shared by the parser: whitespace, dashes and
//! quotes (PowerShell accepts several Unicode forms of each), backtick escapes, names, numbers.

use nom::bytes::complete::{take_while, take_while1};
use nom::error::ErrorKind;
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

/// `number := (hex | decimal) multiplier? type-suffix?`
/// `hex := '0x' hex-digit+`
/// `decimal := (digit+ ('.' digit+)? | '.' digit+) (('e'|'E') ('+'|'-')? digit+)?`
/// `multiplier := 'kb' | 'mb' | 'gb' | 'tb' | 'pb'`
/// `type-suffix := 'ul' | 'uy' | 'us' | 'l' | 'd' | 'u' | 'y' | 's' | 'n'`
///
/// Letters in any case; each optional part is taken only when whole (`1e` is `1`, `5.` is
/// `5`). Scanned byte by byte: every character of a number is ASCII. (Written with nom's
/// combinators, the alternatives cost about 2,300 instructions a number; the test keeps that
/// form as the reference.)
pub(crate) fn number(i: &str) -> IResult<&str, &str> {
    number_len(i.as_bytes())
        .and_then(|n| i.split_at_checked(n))
        .map(|(text, rest)| (rest, text))
        .ok_or_else(|| nom::Err::Error(nom::error::Error::new(i, ErrorKind::Digit)))
}

/// The length of the [`number`] at the start of `b`, if one is there.
fn number_len(b: &[u8]) -> Option<usize> {
    let run = |from: usize, f: fn(&u8) -> bool| {
        b.get(from..)
            .map_or(0, |r| r.iter().take_while(|c| f(c)).count())
    };
    let hex = match b {
        [b'0', x, ..] if x.eq_ignore_ascii_case(&b'x') => Some(run(2, u8::is_ascii_hexdigit)),
        _ => None,
    };
    let mut i = match hex {
        Some(n) if n > 0 => 2 + n,
        _ => {
            let whole = run(0, u8::is_ascii_digit);
            let mut i = whole;
            if b.get(i) == Some(&b'.') {
                let frac = run(i + 1, u8::is_ascii_digit);
                if frac > 0 {
                    i += 1 + frac;
                } else if whole == 0 {
                    return None;
                }
            } else if whole == 0 {
                return None;
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
                let exp = run(i + 1 + sign, u8::is_ascii_digit);
                if exp > 0 {
                    i += 1 + sign + exp;
                }
            }
            i
        }
    };
    let lower = |at: usize| b.get(at).map(u8::to_ascii_lowercase);
    if lower(i + 1) == Some(b'b') && matches!(lower(i), Some(b'k' | b'm' | b'g' | b't' | b'p')) {
        i += 2;
    }
    match (lower(i), lower(i + 1)) {
        (Some(b'u'), Some(b'l' | b'y' | b's')) => i += 2,
        (Some(b'l' | b'd' | b'u' | b'y' | b's' | b'n'), _) => i += 1,
        _ => {}
    }
    Some(i)
}

/// `simple-name := name-char+`
pub(crate) fn simple_name(i: &str) -> IResult<&str, &str> {
    take_while1(is_name_char).parse(i)
}

/// `type-name-chars := (name-char | '.' | '`' | '+' | ',' | ' ')*` (brackets handled by the caller)
pub(crate) fn type_name_chars(i: &str) -> IResult<&str, &str> {
    take_while(|c: char| is_name_char(c) || matches!(c, '.' | '+' | '`' | ',' | ' ')).parse(i)
}

/// The value of a numeric literal as the runspace would print it, when it is simple enough to
/// compute exactly (integers, hex, multipliers); otherwise the literal as written.
pub fn number_value(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let (body, mult) = [
        ("kb", 1u128 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("tb", 1 << 40),
        ("pb", 1 << 50),
    ]
    .iter()
    .find_map(|(s, m)| lower.strip_suffix(s).map(|b| (b.to_string(), *m)))
    .unwrap_or((lower.clone(), 1));
    let parsed = if let Some(hex) = body.strip_prefix("0x") {
        u128::from_str_radix(hex, 16).ok()
    } else {
        body.parse::<u128>().ok()
    };
    match parsed.and_then(|v| v.checked_mul(mult)) {
        Some(v) => v.to_string(),
        None => text.to_string(),
    }
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

    /// The number grammar written with nom's combinators, as it was: the reference.
    fn number_by_combinators(i: &str) -> IResult<&str, &str> {
        use nom::branch::alt;
        use nom::bytes::complete::tag_no_case;
        use nom::character::complete::{char as ch, digit1, one_of};
        use nom::combinator::{opt, recognize};
        use nom::sequence::{pair, preceded};
        let hex = recognize(preceded(
            tag_no_case("0x"),
            take_while1(|c: char| c.is_ascii_hexdigit()),
        ));
        let decimal = recognize((
            alt((
                recognize(pair(digit1, opt(pair(ch('.'), digit1)))),
                recognize(pair(ch('.'), digit1)),
            )),
            opt((one_of("eE"), opt(one_of("+-")), digit1)),
        ));
        let suffix = alt((
            tag_no_case("ul"),
            tag_no_case("uy"),
            tag_no_case("us"),
            tag_no_case("l"),
            tag_no_case("d"),
            tag_no_case("u"),
            tag_no_case("y"),
            tag_no_case("s"),
            tag_no_case("n"),
        ));
        let multiplier = alt((
            tag_no_case("kb"),
            tag_no_case("mb"),
            tag_no_case("gb"),
            tag_no_case("tb"),
            tag_no_case("pb"),
        ));
        recognize((alt((hex, decimal)), opt(multiplier), opt(suffix))).parse(i)
    }

    /// The byte scanner reads exactly what the combinators read, on every string of up to four
    /// characters over the characters a number is made of and those around one (and on longer
    /// samples), including `0x` without digits, a lone `.`, `e` without digits, signs,
    /// multipliers and suffixes in both cases, and a multi-byte character after a number.
    #[test]
    fn number_scanner_reads_as_the_combinators_read() {
        let alphabet: Vec<char> = "09x.eE+-kKmbBgtpuUlLysdnaF é".chars().collect();
        let mut inputs: Vec<String> = vec![String::new()];
        let mut frontier = inputs.clone();
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in &alphabet {
                    let mut t = s.clone();
                    t.push(*c);
                    next.push(t);
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        inputs.extend(
            [
                "10MB rest",
                "0x1F)",
                "0X",
                "0xg",
                "1.5e3",
                "1.5e+3kbul",
                ".5",
                "5.",
                "1e",
                "1e+",
                "123456789012345678901234567890",
                "0x1fKBUS",
                "7Lx",
                "1ukb",
                "2.e5",
                "3..4",
                "0x.5",
                "1GB;",
                "9pbn",
                "1é",
                "٣",
                "1\u{2013}2",
            ]
            .map(String::from),
        );
        for input in &inputs {
            let want = number_by_combinators(input).ok();
            let got = number(input).ok();
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn numbers_with_suffixes_and_hex() {
        assert_eq!(number("10MB rest"), Ok((" rest", "10MB")));
        assert_eq!(number("0x1F)"), Ok((")", "0x1F")));
        assert_eq!(number("1.5e3"), Ok(("", "1.5e3")));
        assert!(number("abc").is_err());
        assert_eq!(number_value("1KB"), "1024");
        assert_eq!(number_value("0x10"), "16");
        assert_eq!(number_value("1.5"), "1.5");
    }

    #[test]
    fn unicode_dashes_and_quotes() {
        assert!(is_dash('\u{2013}') && is_dash('\u{2015}') && !is_dash('_'));
        assert!(is_single_quote('\u{2019}') && is_double_quote('\u{201E}'));
        assert!(!is_quote('`'));
    }
}
