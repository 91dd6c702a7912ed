//! Numeric literals, read as PowerShell's tokenizer reads them (`ScanNumberHelper` and
//! `TryGetNumberValue` in tokenizer.cs): which text is a number, and the value the runspace hands
//! a parameter for it.
//!
//! Both matter to the gate. A word PowerShell does not take for a number is a generic token: in
//! a command argument it is text, at the start of a pipeline it is a command name (`5.ps1` runs
//! a script). A number's value, not its spelling, is what a policy's value constraint must see:
//! `1lkb`, `0b10000000000` and `1024.` are all 1024, and `0xFFFFFFFF` is -1.
//!
//! ```text
//! number      := (hex | binary | decimal) type-suffix? multiplier?
//! hex         := '0x' hex-digit*                  ('0x' alone is 0)
//! binary      := '0b' ('0' | '1')+
//! decimal     := (digit+ ('.' digit*)? | '.' digit+) exponent?
//!                                                 (a '.' followed by '.' is a range, not a point)
//! exponent    := 'e' ('+' | dash)? digit+
//! type-suffix := 'u' ('l' | 's' | 'y')? | 'l' | 's' | 'd' | 'y' | 'n'
//! multiplier  := ('k' | 'm' | 'g' | 't' | 'p') 'b'
//! ```
//!
//! Letters in any case. A part that starts but does not finish (`1e`, `1k`, `1ld`) makes the
//! whole word not a number. After a number, a command argument needs a character that ends a
//! token ([`super::lex::ends_token`]); an expression also accepts an operator's first character
//! ([`ends_number_in_expression`]); anything else makes the word a generic token.

use nom::error::ErrorKind;
use nom::IResult;

use super::lex::{ends_token, is_dash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Decimal,
    Hex,
    Binary,
}

/// The type a suffix asks for (`NumberSuffixFlags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suffix {
    None,
    SignedByte,
    Byte,
    Short,
    UShort,
    Long,
    ULong,
    /// `u`: a `uint`, or a `ulong` when it does not fit.
    Unsigned,
    Decimal,
    BigInteger,
}

/// A number as scanned: where its parts end and what they ask for.
#[derive(Debug, Clone, Copy)]
struct Scan {
    format: Format,
    /// End of the digits (and point and exponent): the suffix starts here.
    body_end: usize,
    real: bool,
    suffix: Suffix,
    multiplier: u64,
    len: usize,
}

/// `e` may be followed by `+` or any dash; the Unicode dashes are three bytes in UTF-8.
fn sign_len(b: &[u8]) -> usize {
    match b {
        [b'+' | b'-', ..] => 1,
        [0xE2, 0x80, 0x93..=0x95, ..] => 3,
        _ => 0,
    }
}

fn run(b: &[u8], from: usize, f: fn(&u8) -> bool) -> usize {
    b.get(from..)
        .map_or(0, |r| r.iter().take_while(|c| f(c)).count())
}

fn is_binary_digit(c: &u8) -> bool {
    matches!(c, b'0' | b'1')
}

/// The number at the start of `b`, if the word starting there is one up to its end or to a
/// character the caller checks. Byte by byte: every character of a number is ASCII, except
/// the exponent's Unicode dashes.
fn scan(b: &[u8]) -> Option<Scan> {
    let lower = |at: usize| b.get(at).map(u8::to_ascii_lowercase);
    // The exponent after digits or a point: `None` when it starts and has no digits.
    let exponent = |i: usize| -> Option<usize> {
        if lower(i) != Some(b'e') {
            return Some(i);
        }
        let sign = b.get(i + 1..).map_or(0, sign_len);
        match run(b, i + 1 + sign, u8::is_ascii_digit) {
            0 => None,
            n => Some(i + 1 + sign + n),
        }
    };
    let (format, mut i, real) = match (b.first(), lower(1)) {
        (Some(b'.'), _) => match run(b, 1, u8::is_ascii_digit) {
            0 => return None,
            n => (Format::Decimal, exponent(1 + n)?, true),
        },
        (Some(b'0'), Some(b'x')) => (Format::Hex, 2 + run(b, 2, u8::is_ascii_hexdigit), false),
        (Some(b'0'), Some(b'b')) => match run(b, 2, is_binary_digit) {
            0 => return None,
            n => (Format::Binary, 2 + n, false),
        },
        (Some(c), _) if c.is_ascii_digit() => {
            let whole = run(b, 0, u8::is_ascii_digit);
            match b.get(whole) {
                Some(b'.') if b.get(whole + 1) != Some(&b'.') => {
                    let frac = run(b, whole + 1, u8::is_ascii_digit);
                    (Format::Decimal, exponent(whole + 1 + frac)?, true)
                }
                Some(b'e' | b'E') => (Format::Decimal, exponent(whole)?, true),
                _ => (Format::Decimal, whole, false),
            }
        }
        _ => return None,
    };
    let body_end = i;
    let is_suffix = |c: Option<u8>| matches!(c, Some(b'u' | b's' | b'l' | b'd' | b'y' | b'n'));
    let suffix = match lower(i) {
        Some(b'u') => {
            i += 1;
            let second = match lower(i) {
                Some(b'l') => Suffix::ULong,
                Some(b's') => Suffix::UShort,
                Some(b'y') => Suffix::Byte,
                c if is_suffix(c) => return None,
                _ => Suffix::Unsigned,
            };
            if second != Suffix::Unsigned {
                i += 1;
            }
            second
        }
        c if is_suffix(c) => {
            i += 1;
            if is_suffix(lower(i)) {
                return None;
            }
            match c {
                Some(b's') => Suffix::Short,
                Some(b'l') => Suffix::Long,
                Some(b'd') => Suffix::Decimal,
                Some(b'y') => Suffix::SignedByte,
                _ => Suffix::BigInteger,
            }
        }
        _ => Suffix::None,
    };
    let shift = match lower(i) {
        Some(b'k') => 10,
        Some(b'm') => 20,
        Some(b'g') => 30,
        Some(b't') => 40,
        Some(b'p') => 50,
        _ => 0,
    };
    if shift > 0 {
        if lower(i + 1) != Some(b'b') {
            return None;
        }
        i += 2;
    }
    Some(Scan {
        format,
        body_end,
        real,
        suffix,
        multiplier: 1 << shift,
        len: i,
    })
}

/// The numeric literal at the start of `i` (see the module's grammar); the caller checks what
/// follows it.
pub(crate) fn number(i: &str) -> IResult<&str, &str> {
    scan(i.as_bytes())
        .and_then(|s| i.split_at_checked(s.len))
        .map(|(text, rest)| (rest, text))
        .ok_or_else(|| nom::Err::Error(nom::error::Error::new(i, ErrorKind::Digit)))
}

/// Whether `c` may follow a number in an expression: a token break, or the first character of
/// an operator, a member access or an index's end (PowerShell's `ForceStartNewTokenAfterNumber`:
/// `! # % * + - . / < = > ]` and the Unicode dashes). After anything else (`5.ps1`, `5$x`, `5'`)
/// the word is not a number at all.
pub(crate) fn ends_number_in_expression(c: char) -> bool {
    ends_token(c)
        || is_dash(c)
        || matches!(
            c,
            '!' | '#' | '%' | '*' | '+' | '.' | '/' | '<' | '=' | '>' | ']'
        )
}

/// `0`, or an optional `-` and at most 18 digits without a leading zero: the same text whether
/// it is kept as a word or read as a number (`-0` is 0, `007` is 7).
pub(crate) fn is_plain_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    v == "0"
        || (!digits.is_empty()
            && !digits.starts_with('0')
            && digits.len() <= 18
            && digits.bytes().all(|c| c.is_ascii_digit()))
}

/// Largest `decimal`: 2^96 - 1.
const DECIMAL_MAX: i128 = (1 << 96) - 1;

/// The text a parameter receives for the numeric literal `text`, as a number's invariant string
/// (`1lkb` is `1024`, `0xFFFFFFFF` is `-1`, `1e3` is `1000`), or as written when PowerShell reads
/// the word as text (a value too large for its suffix, `300y`; and a command argument such as
/// `-5`, which PowerShell passes as the word). `None` when the value cannot be known exactly here:
/// the caller treats it as computed at run time, never as a guess.
pub fn number_value(text: &str) -> Option<String> {
    let first = text.chars().next()?;
    if is_dash(first) {
        // A command argument: the word itself, or the number PowerShell converts it to for a
        // numeric parameter. Only when both read the same (`-5`) is the value certain.
        return is_plain_integer(text).then(|| text.to_string());
    }
    let b = text.as_bytes();
    let s = scan(b).filter(|s| s.len == b.len())?;
    let body = text.get(..s.body_end)?;
    if s.real {
        return real_value(text, body, s);
    }
    let (value, suffix) = match s.format {
        // Digits only: the scanner takes no sign.
        Format::Decimal => (body.parse::<i128>().ok(), s.suffix),
        Format::Hex => hex_value(body.get(2..)?, s.suffix),
        Format::Binary => binary_value(body.get(2..)?, s.suffix),
    };
    // Beyond i128 is beyond every type but BigInteger and, unsuffixed, double.
    let Some(value) = value.and_then(|v| v.checked_mul(i128::from(s.multiplier))) else {
        return match suffix {
            Suffix::BigInteger => None,
            Suffix::None if s.format == Format::Decimal => None,
            _ => Some(text.to_string()),
        };
    };
    let ok = match suffix {
        // int, then long; a decimal literal then takes decimal, then double.
        Suffix::None if fits(Suffix::Long, value) => true,
        Suffix::None if s.format == Format::Decimal => {
            if !fits(Suffix::Decimal, value) {
                // A double: printed in the runspace's own way, not computed here.
                return None;
            }
            true
        }
        Suffix::None => false,
        typed => fits(typed, value),
    };
    Some(if ok {
        value.to_string()
    } else {
        // Too large for its type: PowerShell reads the word as text.
        text.to_string()
    })
}

/// Whether `value` fits the type a suffix names (an unsuffixed literal's types are tried by the
/// caller).
fn fits(suffix: Suffix, value: i128) -> bool {
    let (lo, hi): (i128, i128) = match suffix {
        Suffix::SignedByte => (i8::MIN.into(), i8::MAX.into()),
        Suffix::Byte => (0, u8::MAX.into()),
        Suffix::Short => (i16::MIN.into(), i16::MAX.into()),
        Suffix::UShort => (0, u16::MAX.into()),
        Suffix::Long => (i64::MIN.into(), i64::MAX.into()),
        Suffix::ULong | Suffix::Unsigned => (0, u64::MAX.into()),
        Suffix::Decimal => (-DECIMAL_MAX, DECIMAL_MAX),
        Suffix::BigInteger => (i128::MIN, i128::MAX),
        Suffix::None => (i32::MIN.into(), i32::MAX.into()),
    };
    (lo..=hi).contains(&value)
}

/// A `u` among the suffixes: hex and binary digits carry no sign bit.
fn is_unsigned(suffix: Suffix) -> bool {
    matches!(
        suffix,
        Suffix::Unsigned | Suffix::ULong | Suffix::UShort | Suffix::Byte
    )
}

/// A hex literal's value: with no `u`, digits that fill the suffix's type (8 for an int, 16 for
/// a long, 2 for `y`, 4 for `s`) carry a sign bit (`0xFFFFFFFF` is -1); 16 digits make a long.
fn hex_value(digits: &str, suffix: Suffix) -> (Option<i128>, Suffix) {
    // PowerShell reads "0" + digits, dropping that 0 when the rest has exactly the type's width.
    let with_zero = digits.len() + 1;
    let width = match suffix {
        Suffix::SignedByte => 2,
        Suffix::Short => 4,
        Suffix::Long => 16,
        _ if with_zero < 16 => 8,
        _ => 16,
    };
    let signed = !is_unsigned(suffix) && with_zero == width + 1;
    let read = if signed { digits.len() } else { with_zero };
    // Leading zeros make no difference to the value, however many there are.
    let value = match digits.trim_start_matches('0') {
        "" => Some(0),
        significant => i128::from_str_radix(significant, 16).ok().map(|v| {
            // A leading digit of 8 or more is the sign bit of `digits.len() * 4` bits (at most
            // 64: a signed reading has the width of a type).
            let top = digits.as_bytes().first().map_or(0, |c| match c {
                b'0'..=b'9' => c - b'0',
                _ => c.to_ascii_lowercase() - b'a' + 10,
            });
            if signed && top >= 8 {
                v - (1i128 << (4 * digits.len()))
            } else {
                v
            }
        }),
    };
    (value, widen_to_long(suffix, read == 16))
}

/// A binary literal's value: with no `u` and a leading 1, lengths 8, 16, 32, 64, 96 and 128 or
/// more carry a sign bit (`0b11111111` is -1); 64 digits make a long.
fn binary_value(digits: &str, suffix: Suffix) -> (Option<i128>, Suffix) {
    let signed = !is_unsigned(suffix)
        && digits.starts_with('1')
        && matches!(digits.len(), 8 | 16 | 32 | 64 | 96 | 128..);
    let value = if signed {
        // Two's complement over `digits.len()` bits: minus (the complement plus one).
        let complement: String = digits
            .chars()
            .map(|c| if c == '0' { '1' } else { '0' })
            .collect();
        match complement.trim_start_matches('0') {
            "" => Some(0),
            significant => i128::from_str_radix(significant, 2).ok(),
        }
        .and_then(|c| c.checked_add(1))
        .map(|c| -c)
    } else {
        match digits.trim_start_matches('0') {
            "" => Some(0),
            significant => i128::from_str_radix(significant, 2).ok(),
        }
    };
    (value, widen_to_long(suffix, digits.len() == 64))
}

/// A hex or binary literal as wide as a long is a long (or ulong with `u`), however small.
fn widen_to_long(suffix: Suffix, long_width: bool) -> Suffix {
    match suffix {
        Suffix::None if long_width => Suffix::Long,
        Suffix::Unsigned if long_width => Suffix::ULong,
        other => other,
    }
}

/// A literal with a point or an exponent: a double, multiplied, then its suffix's type. The
/// runspace prints a double in fixed notation for decimal exponents -4 to 14 and in scientific
/// notation outside them; only the fixed form is produced here, and a `d` (decimal, which keeps
/// its trailing zeros) is left to the run time.
fn real_value(text: &str, body: &str, s: Scan) -> Option<String> {
    if s.suffix == Suffix::Decimal {
        return None;
    }
    // The exponent's sign may be any dash.
    let ascii: String = body
        .chars()
        .map(|c| if is_dash(c) { '-' } else { c })
        .collect();
    let v = ascii.parse::<f64>().ok()? * s.multiplier as f64;
    if !v.is_finite() {
        return None;
    }
    if s.suffix == Suffix::None {
        if v == 0.0 {
            return Some("0".to_string());
        }
        let sci = format!("{v:e}");
        let exp: i32 = sci.rsplit('e').next()?.parse().ok()?;
        return (-5 < exp && exp < 15).then(|| format!("{v}"));
    }
    // To an integer type: only an exact whole number is computed here (the runspace rounds
    // halves to even).
    if v.fract() != 0.0 || v.abs() >= 1e30 {
        return None;
    }
    let whole = v as i128;
    let ok = match s.suffix {
        Suffix::None | Suffix::Decimal => return None,
        typed => fits(typed, whole),
    };
    Some(if ok {
        whole.to_string()
    } else {
        // Too large for its type: PowerShell reads the word as text.
        text.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word `w` is a number in a command argument (nothing follows it but a token break).
    fn is_number_word(w: &str) -> bool {
        scan(w.as_bytes()).is_some_and(|s| s.len == w.len())
    }

    /// Whether a whole word is a number is PowerShell's grammar, written out as one regular
    /// expression from tokenizer.cs's rules: an independent reference for the byte scanner, on
    /// every word of up to four characters over the characters of numbers and those around them
    /// (and on longer ones). A grammar over whole words needs no rule for `5..` (a point followed
    /// by a point is a range): no word with two points is a number.
    #[test]
    fn which_words_are_numbers_follows_the_tokenizer_rules() {
        let reference = regex::Regex::new(
            r"^(?:0[xX][0-9a-fA-F]*|0[bB][01]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+\-\x{2013}\x{2014}\x{2015}]?[0-9]+)?)(?:[uU][lLsSyY]?|[lLsSdDyYnN])?(?:[kKmMgGtTpP][bB])?$",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let alphabet: Vec<char> = "019x.eE+-\u{2013}kKmbBgpuUlLysdnaF é".chars().collect();
        let mut words: Vec<String> = vec![String::new()];
        let mut frontier = words.clone();
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in &alphabet {
                    let mut t = s.clone();
                    t.push(*c);
                    next.push(t);
                }
            }
            words.extend(next.iter().cloned());
            frontier = next;
        }
        words.extend(
            [
                "1lkb",
                "1ukb",
                "1ulkb",
                "0b101",
                "0B1kb",
                "0b",
                "0b2",
                "0x",
                "0xkb",
                "0x1d",
                "0x1dkb",
                "0x1bkb",
                "5.",
                "5..",
                "5..6",
                "1.e1",
                "1.e",
                "1e",
                "1e+",
                "1e\u{2013}3",
                "1e\u{2014}3kb",
                "1ld",
                "1yu",
                "1uu",
                "1un",
                "1kbl",
                "1k",
                "1.5.5",
                "0x.5",
                "10MB",
                "1.5e+3lkb",
                "123456789012345678901234567890",
            ]
            .map(String::from),
        );
        let mut checked = 0;
        for w in &words {
            let want = reference.is_match(w);
            assert_eq!(is_number_word(w), want, "{w:?}");
            checked += 1;
        }
        assert!(checked > 500_000, "{checked}");
    }

    /// How far the scanner reads in an expression, where an operator may follow directly.
    #[test]
    fn a_number_ends_where_the_tokenizer_ends_it() {
        for (input, text, rest) in [
            ("10MB rest", "10MB", " rest"),
            ("0x1F)", "0x1F", ")"),
            ("1.5e3", "1.5e3", ""),
            ("5..6", "5", "..6"),
            ("5.+1", "5.", "+1"),
            ("1.5.x", "1.5", ".x"),
            ("1kb.x", "1kb", ".x"),
            ("1e3-2", "1e3", "-2"),
            ("1lkb]", "1lkb", "]"),
        ] {
            assert_eq!(number(input), Ok((rest, text)), "{input:?}");
        }
        for not_a_number in [
            "abc", ".", ".e1", "0b", "0b2", "1e", "1e+x", "1k", "1kx", "1ld", "1uu", "5.ps1",
            "1.exe",
        ] {
            assert!(number(not_a_number).is_err(), "{not_a_number:?}");
        }
    }

    /// The value each literal gives a parameter, worked out by hand from TryGetNumberValue:
    /// suffix before multiplier, binary, a trailing point, doubles in fixed notation, sign bits
    /// of hex and binary literals that fill their type, a value too large for its suffix (the
    /// word as text), and what is left to the run time (`None`).
    const ONES_128: &str = "0b11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";
    const ONES_128_UNSIGNED: &str = "0b11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111u";
    const ONES_128_BIG: &str = "0b11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111n";
    const ONES_96: &str = "0b111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";
    const ONES_100: &str = "0b1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn values_are_the_ones_the_runspace_binds() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1024", Some("1024")),
            ("007", Some("7")),
            ("1kb", Some("1024")),
            ("1KB", Some("1024")),
            ("1lkb", Some("1024")),
            ("1ukb", Some("1024")),
            ("1ulkb", Some("1024")),
            ("1dkb", Some("1024")),
            ("1nkb", Some("1024")),
            ("1skb", Some("1024")),
            ("1ykb", Some("1ykb")),
            ("1pb", Some("1125899906842624")),
            ("8191pb", Some("9222246136947933184")),
            ("8192pb", Some("9223372036854775808")),
            ("0b101", Some("5")),
            ("0b10000000000", Some("1024")),
            ("0b1111111", Some("127")),
            ("0b11111111", Some("-1")),
            ("0b11111111u", Some("255")),
            ("0b011111111", Some("255")),
            ("0b1kb", Some("1024")),
            ("0b10000000", Some("-128")),
            ("0b0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001", Some("1")),
            (ONES_128, Some("-1")),
            (ONES_128_UNSIGNED, Some("0b11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111u")),
            (ONES_128_BIG, Some("-1")),
            (ONES_96, Some("-1")),
            (ONES_100, Some("0b1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111")),
            ("0x10", Some("16")),
            ("0x400", Some("1024")),
            ("0xFF", Some("255")),
            ("0x7FFFFFFF", Some("2147483647")),
            ("0x80000000", Some("-2147483648")),
            ("0xFFFFFFFF", Some("-1")),
            ("0xFFFFFFFFu", Some("4294967295")),
            ("0x1FFFFFFFF", Some("8589934591")),
            ("0xFFFFFFFFFFFFFFFF", Some("-1")),
            ("0x8000000000000000", Some("-9223372036854775808")),
            ("0xFFFFFFFFFFFFFFFFu", Some("18446744073709551615")),
            ("0x1FFFFFFFFFFFFFFFF", Some("0x1FFFFFFFFFFFFFFFF")),
            ("0xFFy", Some("-1")),
            ("0x80y", Some("-128")),
            ("0x100y", Some("0x100y")),
            ("0xFFFFs", Some("-1")),
            ("0xFFFFFFFFn", Some("-1")),
            ("0xFFn", Some("255")),
            ("0xFFFFFFFFkb", Some("-1024")),
            ("0x", Some("0")),
            ("0xkb", Some("0")),
            ("0x1d", Some("29")),
            ("0x0000000000000000000000000000000000000001", Some("1")),
            ("0x0000000000000000000000000000000000000001y", Some("1")),
            ("0x00000000000000000000000000000000000000010000000000000000000000000000000000000000", Some("0x00000000000000000000000000000000000000010000000000000000000000000000000000000000")),
            ("5.", Some("5")),
            ("5.0", Some("5")),
            ("1024.", Some("1024")),
            ("1.50", Some("1.5")),
            (".5", Some("0.5")),
            ("1e3", Some("1000")),
            ("1.e1", Some("10")),
            ("1e\u{2013}3", Some("0.001")),
            ("1.5kb", Some("1536")),
            ("1.0kb", Some("1024")),
            ("1e14", Some("100000000000000")),
            ("1e15", None),
            ("0.0001", Some("0.0001")),
            ("0.00001", None),
            ("1e400", None),
            ("1.5d", None),
            ("2.0l", Some("2")),
            ("1.5l", None),
            ("300.0y", Some("300.0y")),
            ("10d", Some("10")),
            ("1l", Some("1")),
            ("1n", Some("1")),
            ("300y", Some("300y")),
            ("127y", Some("127")),
            ("255uy", Some("255")),
            ("256uy", Some("256uy")),
            ("65535us", Some("65535")),
            ("4294967296u", Some("4294967296")),
            ("2147483648", Some("2147483648")),
            ("9223372036854775808l", Some("9223372036854775808l")),
            ("99999999999999999999", Some("99999999999999999999")),
            (
                "79228162514264337593543950335",
                Some("79228162514264337593543950335"),
            ),
            ("79228162514264337593543950336", None),
            ("123456789012345678901234567890123456789012", None),
            (
                "123456789012345678901234567890123456789012y",
                Some("123456789012345678901234567890123456789012y"),
            ),
            ("-5", Some("-5")),
            ("-1024", Some("-1024")),
            ("-05", None),
            ("-0x10", None),
            ("-1kb", None),
            ("\u{2013}5", None),
            ("1k", None),
        ];
        for (text, want) in cases {
            assert_eq!(number_value(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn expressions_end_a_number_only_where_powershell_does() {
        for c in [
            '+', '-', '\u{2013}', '*', '/', '%', '.', ']', ')', ';', ',', '|', '=', '<', '>', '!',
            '#', ' ', '\n', '}',
        ] {
            assert!(ends_number_in_expression(c), "{c:?}");
        }
        for c in ['a', '$', '\'', '"', '@', '[', '?', ':', '`', '_', 'é', '\\'] {
            assert!(!ends_number_in_expression(c), "{c:?}");
        }
    }
}
