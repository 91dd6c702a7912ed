//! Text from other people made safe for a terminal, a mail body or a chat message.
//!
//! Requesters, approvers and token holders write free text (reasons, comments, task names,
//! claims). Shown raw, a carriage return, a cursor movement or a right-to-left override can make
//! a screen show something other than what was asked (a `Remove-Mailbox` request drawn over as
//! `Get-Mailbox`). Every human-facing output passes such text through [`escape`]. Pure.

use std::borrow::Cow;

/// Whether `c` can change how surrounding text is drawn: C0 and C1 controls and DEL (`Cc`),
/// bidirectional embeddings, overrides, isolates and marks, zero-width characters, line and
/// paragraph separators, and the byte-order mark.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                      // Arabic letter mark
            | '\u{180E}'                    // Mongolian vowel separator (zero width)
            | '\u{200B}'..='\u{200F}'       // zero-width space, non-joiner, joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}'       // line/paragraph separators, bidi embeddings, overrides
            | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'       // bidi isolates
            | '\u{206A}'..='\u{206F}'       // deprecated format characters
            | '\u{FEFF}'                    // zero-width no-break space / BOM
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
}

/// `text` with every [`is_unsafe`] character written as a visible escape: `\n`, `\r`, `\t`, or
/// `\u{XX}` (Rust's notation). Borrowed when nothing needed escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A multi-line message (our own line breaks) whose every line is escaped; lines are joined
/// with `eol` (`"\r\n"` for a terminal in raw mode).
pub(crate) fn escape_lines(text: &str, eol: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str(eol);
        }
        out.push_str(&escape(line));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_screen_changing_character_is_escaped() {
        let attacks = [
            (
                "Remove-Mailbox\rGet-Mailbox    ",
                "Remove-Mailbox\\rGet-Mailbox    ",
            ),
            ("a\x1b[2K\x1b[1Ab", "a\\u{1b}[2K\\u{1b}[1Ab"),
            ("x\u{9b}2Ky", "x\\u{9b}2Ky"),
            ("del\u{7f}", "del\\u{7f}"),
            ("bell\x07\x08", "bell\\u{7}\\u{8}"),
            ("moc.evil\u{202e}", "moc.evil\\u{202e}"),
            ("\u{2066}iso\u{2069}", "\\u{2066}iso\\u{2069}"),
            ("zero\u{200b}width\u{feff}", "zero\\u{200b}width\\u{feff}"),
            ("line\u{2028}sep\nnl\ttab", "line\\u{2028}sep\\nnl\\ttab"),
            ("rlm\u{200f}alm\u{061c}", "rlm\\u{200f}alm\\u{61c}"),
        ];
        for (input, shown) in attacks {
            let out = escape(input);
            assert_eq!(out, shown, "{input:?}");
            assert!(!out.chars().any(is_unsafe), "{out:?}");
        }
    }

    #[test]
    fn ordinary_text_is_untouched_and_borrowed() {
        for text in ["move bob's mailbox", "Zoë Müller — 東京", "C:\\path\\x", ""] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn escape_lines_keeps_our_breaks_and_escapes_the_rest() {
        assert_eq!(escape_lines("a\rb\nc\x1b", "\r\n"), "a\\rb\r\nc\\u{1b}");
    }
}
