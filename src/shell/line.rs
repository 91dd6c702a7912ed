//! The line editor jitsh runs while the runspace sits at its prompt.
//!
//! Pure: bytes from the admin's terminal go in, [`Key`]s are decoded, and the editor answers
//! with terminal output (redraws) and [`Action`]s for the proxy. Nothing reaches the runspace
//! from here: the proxy sends a line only after the gate allowed it.
//!
//! Rendering model: the prompt's last line, then the line being edited; continuation lines
//! (`>> `) below it. The editor remembers which row of its rendering the cursor is on, so it can
//! redraw in place on any terminal width. Widths are display columns (`unicode-width`): CJK and
//! most emoji take two, combining marks none; a wide character that does not fit at the end of a
//! row wraps whole to the next one, as terminals do.

/// Continuation prompt shown while the parser asks for more input.
pub const CONTINUATION_PROMPT: &str = ">> ";

/// Most history entries kept per session.
const HISTORY_MAX: usize = 1000;

/// Most completion candidates listed under the line.
const COMPLETIONS_SHOWN: usize = 60;

/// One decoded key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    Tab,
    /// Ctrl-U: delete to the start of the line.
    KillLine,
    /// Ctrl-K: delete to the end of the line.
    KillToEnd,
    /// Ctrl-W: delete the word before the cursor.
    KillWord,
    /// Ctrl-C: abandon the line.
    Interrupt,
    /// Ctrl-D.
    EndOfFile,
    /// Ctrl-L.
    ClearScreen,
    /// Anything else (function keys, Alt-combinations): ignored.
    Ignored,
}

/// Result of decoding the front of an input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A key and how many bytes it used.
    Key(Key, usize),
    /// The buffer ends inside a sequence: wait for more bytes.
    Incomplete,
}

/// Decode one key from the front of `buf` (which must not be empty to yield a key).
pub(crate) fn decode_key(buf: &[u8]) -> Decoded {
    let Some(&b) = buf.first() else {
        return Decoded::Incomplete;
    };
    let key = match b {
        b'\r' | b'\n' => {
            // A terminal sends "\r"; a paste may carry "\r\n": one Enter.
            let len = if b == b'\r' && buf.get(1) == Some(&b'\n') {
                2
            } else {
                1
            };
            return Decoded::Key(Key::Enter, len);
        }
        0x7f | 0x08 => Key::Backspace,
        0x01 => Key::Home,
        0x02 => Key::Left,
        0x03 => Key::Interrupt,
        0x04 => Key::EndOfFile,
        0x05 => Key::End,
        0x06 => Key::Right,
        b'\t' => Key::Tab,
        0x0b => Key::KillToEnd,
        0x0c => Key::ClearScreen,
        0x0e => Key::Down,
        0x10 => Key::Up,
        0x15 => Key::KillLine,
        0x17 => Key::KillWord,
        0x1b => return decode_escape(buf),
        0x00..=0x1f => Key::Ignored,
        _ => return decode_utf8(buf),
    };
    Decoded::Key(key, 1)
}

fn decode_escape(buf: &[u8]) -> Decoded {
    match buf.get(1) {
        None => Decoded::Incomplete,
        Some(b'[') => {
            // CSI: parameters 0x30-0x3f, intermediates 0x20-0x2f, final 0x40-0x7e.
            let mut i = 2;
            loop {
                match buf.get(i) {
                    None => return Decoded::Incomplete,
                    Some(0x20..=0x3f) if i < 32 => i += 1,
                    Some(&f @ 0x40..=0x7e) => {
                        let params = buf.get(2..i).unwrap_or_default();
                        let key = match (params, f) {
                            (_, b'A') => Key::Up,
                            (_, b'B') => Key::Down,
                            (_, b'C') => Key::Right,
                            (_, b'D') => Key::Left,
                            (_, b'H') => Key::Home,
                            (_, b'F') => Key::End,
                            (b"1" | b"7", b'~') => Key::Home,
                            (b"4" | b"8", b'~') => Key::End,
                            (b"3", b'~') => Key::Delete,
                            _ => Key::Ignored,
                        };
                        return Decoded::Key(key, i + 1);
                    }
                    Some(_) => return Decoded::Key(Key::Ignored, i + 1),
                }
            }
        }
        Some(b'O') => match buf.get(2) {
            None => Decoded::Incomplete,
            Some(b'H') => Decoded::Key(Key::Home, 3),
            Some(b'F') => Decoded::Key(Key::End, 3),
            Some(b'A') => Decoded::Key(Key::Up, 3),
            Some(b'B') => Decoded::Key(Key::Down, 3),
            Some(b'C') => Decoded::Key(Key::Right, 3),
            Some(b'D') => Decoded::Key(Key::Left, 3),
            Some(_) => Decoded::Key(Key::Ignored, 3),
        },
        // Alt-<key>: ignored, as is a doubled ESC.
        Some(_) => Decoded::Key(Key::Ignored, 2),
    }
}

fn decode_utf8(buf: &[u8]) -> Decoded {
    let Some(&b) = buf.first() else {
        return Decoded::Incomplete;
    };
    let len = match b {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Decoded::Key(Key::Ignored, 1),
    };
    let Some(bytes) = buf.get(..len) else {
        // Only incomplete if what we have so far is a valid prefix.
        let valid_prefix = buf.iter().skip(1).all(|c| (0x80..=0xbf).contains(c));
        return if valid_prefix {
            Decoded::Incomplete
        } else {
            Decoded::Key(Key::Ignored, 1)
        };
    };
    match std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => Decoded::Key(Key::Char(c), len),
        None => Decoded::Key(Key::Ignored, 1),
    }
}

/// What the proxy has to do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter: the whole text so far (continuation lines joined with `\n`) is ready to be gated.
    Submit(String),
    /// Ctrl-C: the line was abandoned; draw a fresh prompt.
    Cancel,
    /// Ctrl-D on an empty line.
    EndOfFile,
}

/// The editor state for one prompt.
#[derive(Debug)]
pub struct Editor {
    prompt: Vec<u8>,
    prompt_width: usize,
    /// Lines already entered for this command (continuations pending).
    done: Vec<String>,
    buf: Vec<char>,
    cursor: usize,
    cols: usize,
    /// Row of the cursor, counted from the prompt's row.
    cursor_row: usize,
    /// Whole commands: a multi-line command is one entry, its lines joined with `\n`.
    history: Vec<String>,
    /// Position while browsing history, and the unsent command it replaced (finished lines and
    /// the line being edited).
    browsing: Option<(usize, Vec<String>, Vec<char>)>,
    /// The last Enter added a history entry; if the parser then asks for more, that entry was
    /// only the start of a command and gives way to the whole command.
    added_partial: bool,
    words: Vec<String>,
}

impl Editor {
    pub fn new(cols: u16) -> Self {
        Editor {
            prompt: b"> ".to_vec(),
            prompt_width: 2,
            done: Vec::new(),
            buf: Vec::new(),
            cursor: 0,
            cols: usize::from(cols.max(1)),
            cursor_row: 0,
            history: Vec::new(),
            browsing: None,
            added_partial: false,
            words: Vec::new(),
        }
    }

    /// Names offered by Tab completion (cmdlet names).
    pub fn set_words(&mut self, mut words: Vec<String>) {
        words.sort_by_key(|w| w.to_ascii_lowercase());
        words.dedup();
        self.words = words;
    }

    pub fn set_cols(&mut self, cols: u16) {
        self.cols = usize::from(cols.max(1));
    }

    /// Start a new command line. `prompt` is the runspace's prompt as printed (escape sequences
    /// included); it is already on screen, with the cursor right after it.
    pub fn begin(&mut self, prompt: &[u8]) {
        let last_line = match prompt.iter().rposition(|&b| b == b'\n') {
            Some(i) => prompt.get(i + 1..).unwrap_or_default(),
            None => prompt,
        };
        let last_line: Vec<u8> = last_line.iter().copied().filter(|&b| b != b'\r').collect();
        self.prompt_width = visible_width(&last_line);
        self.prompt = last_line;
        self.done.clear();
        self.buf.clear();
        self.cursor = 0;
        self.cursor_row = self.prompt_width / self.cols;
        self.browsing = None;
    }

    /// The prompt text, for redrawing after a message.
    pub fn prompt(&self) -> &[u8] {
        &self.prompt
    }

    /// Everything entered so far for this command.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.done.clone();
        parts.push(self.buf.iter().collect());
        parts.join("\n")
    }

    /// Handle one key; terminal output is appended to `out`.
    pub fn key(&mut self, key: Key, out: &mut Vec<u8>) -> Option<Action> {
        match key {
            Key::Char(c) => {
                self.buf.insert(self.cursor, c);
                self.cursor += 1;
                self.after_edit(out);
            }
            Key::Enter => {
                self.add_history();
                return Some(Action::Submit(self.text()));
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.buf.remove(self.cursor);
                self.after_edit(out);
            }
            Key::Delete if self.cursor < self.buf.len() => {
                self.buf.remove(self.cursor);
                self.after_edit(out);
            }
            Key::Left if self.cursor > 0 => {
                self.cursor -= 1;
                self.refresh(out);
            }
            Key::Right if self.cursor < self.buf.len() => {
                self.cursor += 1;
                self.refresh(out);
            }
            Key::Home => {
                self.cursor = 0;
                self.refresh(out);
            }
            Key::End => {
                self.cursor = self.buf.len();
                self.refresh(out);
            }
            Key::KillLine => {
                self.buf.drain(..self.cursor);
                self.cursor = 0;
                self.after_edit(out);
            }
            Key::KillToEnd => {
                self.buf.truncate(self.cursor);
                self.after_edit(out);
            }
            Key::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.buf.get(start - 1).is_some_and(|c| c.is_whitespace()) {
                    start -= 1;
                }
                while start > 0 && self.buf.get(start - 1).is_some_and(|c| !c.is_whitespace()) {
                    start -= 1;
                }
                self.buf.drain(start..self.cursor);
                self.cursor = start;
                self.after_edit(out);
            }
            Key::Up => self.history_step(true, out),
            Key::Down => self.history_step(false, out),
            Key::Tab => self.complete(out),
            Key::ClearScreen => {
                out.extend_from_slice(b"\x1b[H\x1b[2J");
                self.cursor_row = 0;
                self.refresh(out);
            }
            Key::Interrupt => {
                self.move_to_end(out);
                out.extend_from_slice(b"^C\r\n");
                return Some(Action::Cancel);
            }
            Key::EndOfFile if self.buf.is_empty() && self.done.is_empty() => {
                return Some(Action::EndOfFile);
            }
            Key::EndOfFile if self.cursor < self.buf.len() => {
                self.buf.remove(self.cursor);
                self.after_edit(out);
            }
            _ => {}
        }
        None
    }

    /// The parser wants more: keep the text and open a continuation line.
    pub fn continuation(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.added_partial) {
            self.history.pop();
        }
        self.move_to_end(out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(CONTINUATION_PROMPT.as_bytes());
        self.done.push(self.buf.drain(..).collect());
        self.cursor = 0;
        self.cursor_row = self.rows_before_current() + CONTINUATION_PROMPT.len() / self.cols;
        self.browsing = None;
    }

    /// The line goes to the runspace: erase jitsh's rendering back to the end of the prompt, so
    /// the runspace's own echo shows the line exactly once.
    pub fn erase_for_runspace(&mut self, out: &mut Vec<u8>) {
        self.move_up(self.cursor_row, out);
        out.push(b'\r');
        if self.prompt_width > 0 {
            out.extend_from_slice(b"\x1b[");
            out.extend_from_slice(self.prompt_width.to_string().as_bytes());
            out.push(b'C');
        }
        out.extend_from_slice(b"\x1b[J");
        self.cursor_row = 0;
    }

    /// The line was refused: leave it on screen and move below it for the message.
    pub fn leave_for_message(&mut self, out: &mut Vec<u8>) {
        self.move_to_end(out);
        out.extend_from_slice(b"\r\n");
    }

    /// Draw the prompt and the current text afresh below whatever is on screen (after a
    /// message, or after output the runspace printed while at the prompt).
    pub fn redraw_below(&mut self, out: &mut Vec<u8>) {
        self.cursor_row = 0;
        self.refresh(out);
    }

    fn after_edit(&mut self, out: &mut Vec<u8>) {
        self.browsing = None;
        self.refresh(out);
    }

    fn add_history(&mut self) {
        self.added_partial = false;
        let line = self.text();
        if line.trim().is_empty() || self.history.last() == Some(&line) {
            return;
        }
        self.added_partial = true;
        if self.history.len() >= HISTORY_MAX {
            self.history.remove(0);
        }
        self.history.push(line);
    }

    fn history_step(&mut self, older: bool, out: &mut Vec<u8>) {
        let len = self.history.len();
        let current = self.browsing.as_ref().map_or(len, |(i, _, _)| *i);
        let next = if older {
            match current.checked_sub(1) {
                Some(n) => n,
                None => return,
            }
        } else if current < len {
            current + 1
        } else {
            return;
        };
        if self.browsing.is_none() {
            self.browsing = Some((len, self.done.clone(), self.buf.clone()));
        }
        let (done, text): (Vec<String>, Vec<char>) = if next == len {
            self.browsing
                .take()
                .map(|(_, done, saved)| (done, saved))
                .unwrap_or_default()
        } else {
            if let Some((i, _, _)) = self.browsing.as_mut() {
                *i = next;
            }
            // A multi-line entry comes back as its lines: all but the last finished.
            let mut lines: Vec<String> = self
                .history
                .get(next)
                .map(|s| s.split('\n').map(str::to_owned).collect())
                .unwrap_or_default();
            let last = lines.pop().unwrap_or_default();
            (lines, last.chars().collect())
        };
        self.done = done;
        self.buf = text;
        self.cursor = self.buf.len();
        self.refresh(out);
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        let mut start = self.cursor;
        while start > 0
            && self
                .buf
                .get(start - 1)
                .is_some_and(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        {
            start -= 1;
        }
        let word: String = self
            .buf
            .get(start..self.cursor)
            .unwrap_or_default()
            .iter()
            .collect();
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        let matches: Vec<String> = self
            .words
            .iter()
            .filter(|w| w.to_lowercase().starts_with(&lower))
            .cloned()
            .collect();
        let Some(first) = matches.first() else {
            out.push(0x07);
            return;
        };
        let common = matches.iter().fold(first.to_string(), |acc, w| {
            acc.chars()
                .zip(w.chars())
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                .map(|(a, _)| a)
                .collect()
        });
        let mut replacement: Vec<char> = if matches.len() == 1 {
            format!("{first} ").chars().collect()
        } else {
            common.chars().collect()
        };
        if replacement.len() < word.chars().count() {
            replacement = word.chars().collect();
        }
        let grew = replacement.len() > word.chars().count() || matches.len() == 1;
        self.buf
            .splice(start..self.cursor, replacement.iter().copied());
        self.cursor = start + replacement.len();
        if !grew && matches.len() > 1 {
            // Nothing more to add: list the candidates under the line, then redraw it.
            self.move_to_end(out);
            out.extend_from_slice(b"\r\n");
            let listed: Vec<&str> = matches
                .iter()
                .take(COMPLETIONS_SHOWN)
                .map(|s| s.as_str())
                .collect();
            out.extend_from_slice(listed.join("  ").as_bytes());
            if matches.len() > COMPLETIONS_SHOWN {
                out.extend_from_slice(
                    format!("  ... ({} more)", matches.len() - COMPLETIONS_SHOWN).as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\n");
            self.redraw_below(out);
            return;
        }
        self.refresh(out);
    }

    /// Rows taken by the prompt line and the finished continuation lines.
    fn rows_before_current(&self) -> usize {
        let mut rows = 0;
        for (i, line) in self.done.iter().enumerate() {
            let lead = if i == 0 {
                self.prompt_width
            } else {
                CONTINUATION_PROMPT.len()
            };
            rows += rows_for(end_column(lead, line.chars(), self.cols), self.cols);
        }
        rows
    }

    fn current_lead(&self) -> usize {
        if self.done.is_empty() {
            self.prompt_width
        } else {
            CONTINUATION_PROMPT.len()
        }
    }

    fn move_up(&self, rows: usize, out: &mut Vec<u8>) {
        if rows > 0 {
            out.extend_from_slice(format!("\x1b[{rows}A").as_bytes());
        }
    }

    fn move_to_end(&mut self, out: &mut Vec<u8>) {
        self.cursor = self.buf.len();
        self.refresh(out);
    }

    /// Redraw prompt, finished lines and the current line in place, then put the cursor back.
    fn refresh(&mut self, out: &mut Vec<u8>) {
        self.move_up(self.cursor_row, out);
        out.push(b'\r');
        out.extend_from_slice(&self.prompt);
        for (i, line) in self.done.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(CONTINUATION_PROMPT.as_bytes());
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !self.done.is_empty() {
            out.extend_from_slice(CONTINUATION_PROMPT.as_bytes());
        }
        let text: String = self.buf.iter().collect();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\x1b[J");

        let base = self.rows_before_current();
        let lead = self.current_lead();
        let end = end_column(lead, self.buf.iter().copied(), self.cols);
        if end > 0 && end % self.cols == 0 {
            // The terminal waits at the right margin; make the wrap happen so the model holds.
            out.extend_from_slice(b"\r\n");
        }
        let end_row = base + end / self.cols;
        let at = end_column(
            lead,
            self.buf
                .get(..self.cursor)
                .unwrap_or_default()
                .iter()
                .copied(),
            self.cols,
        );
        let (row, col) = (base + at / self.cols, at % self.cols);
        self.move_up(end_row.saturating_sub(row), out);
        out.push(b'\r');
        if col > 0 {
            out.extend_from_slice(format!("\x1b[{col}C").as_bytes());
        }
        self.cursor_row = row;
    }
}

/// Columns a character takes on screen (0 for combining marks and controls).
fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// The screen position (counted in cells from the start of the first row) after writing
/// `text` from position `start`: a character wider than what is left of its row moves whole to
/// the next row, as terminals place CJK and emoji.
fn end_column(start: usize, text: impl Iterator<Item = char>, cols: usize) -> usize {
    text.fold(start, |at, c| {
        let w = char_width(c);
        let left = cols - at % cols;
        if w > left && w <= cols {
            at + left + w
        } else {
            at + w
        }
    })
}

/// Rows a finished line of `width` columns takes (at least one).
fn rows_for(width: usize, cols: usize) -> usize {
    if width == 0 {
        1
    } else {
        width.div_ceil(cols)
    }
}

/// Columns the text takes on screen: characters, minus escape sequences and control bytes.
pub(crate) fn visible_width(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let mut width = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() => {}
            c => width += char_width(c),
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match decode_key(rest) {
                Decoded::Key(k, n) => {
                    out.push(k);
                    rest = &rest[n..];
                }
                Decoded::Incomplete => break,
            }
        }
        out
    }

    fn type_text(ed: &mut Editor, bytes: &[u8]) -> Option<Action> {
        let mut out = Vec::new();
        let mut last = None;
        for k in keys(bytes) {
            if let Some(a) = ed.key(k, &mut out) {
                last = Some(a);
            }
        }
        last
    }

    #[test]
    fn decodes_arrows_home_end_and_utf8() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1b[4~\x1b[3~\xc3\xa9\r\n"),
            vec![
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Home,
                Key::End,
                Key::Delete,
                Key::Char('\u{e9}'),
                Key::Enter
            ]
        );
        assert_eq!(decode_key(b"\x1b["), Decoded::Incomplete);
        assert_eq!(decode_key(b"\xc3"), Decoded::Incomplete);
        assert_eq!(decode_key(b"\xff"), Decoded::Key(Key::Ignored, 1));
    }

    #[test]
    fn editing_keys_change_the_text() {
        let mut ed = Editor::new(80);
        ed.begin(b"PS C:\\> ");
        type_text(&mut ed, b"Get-Mailbx");
        type_text(&mut ed, b"\x1b[Do\x1b[F s");
        assert_eq!(ed.text(), "Get-Mailbox s");
        type_text(&mut ed, b"\x17");
        assert_eq!(ed.text(), "Get-Mailbox ");
        type_text(&mut ed, b"\x01X\x7f\x15");
        assert_eq!(ed.text(), "Get-Mailbox ");
        type_text(&mut ed, b"\x05\x15");
        assert_eq!(ed.text(), "");
    }

    #[test]
    fn enter_submits_and_history_recalls() {
        let mut ed = Editor::new(80);
        ed.begin(b"> ");
        assert_eq!(
            type_text(&mut ed, b"Get-Mailbox\r"),
            Some(Action::Submit("Get-Mailbox".into()))
        );
        ed.begin(b"> ");
        type_text(&mut ed, b"draft");
        type_text(&mut ed, b"\x1b[A");
        assert_eq!(ed.text(), "Get-Mailbox");
        type_text(&mut ed, b"\x1b[B");
        assert_eq!(ed.text(), "draft");
    }

    #[test]
    fn continuation_joins_lines() {
        let mut ed = Editor::new(80);
        ed.begin(b"> ");
        type_text(&mut ed, b"Get-Mailbox |\r");
        let mut out = Vec::new();
        ed.continuation(&mut out);
        assert!(out.ends_with(b"\r\n>> "));
        assert_eq!(
            type_text(&mut ed, b"Select Name\r"),
            Some(Action::Submit("Get-Mailbox |\nSelect Name".into()))
        );
    }

    #[test]
    fn tab_completes_a_unique_prefix_case_insensitively() {
        let mut ed = Editor::new(80);
        ed.set_words(vec!["New-MoveRequest".into(), "New-Mailbox".into()]);
        ed.begin(b"> ");
        type_text(&mut ed, b"new-mo\t");
        assert_eq!(ed.text(), "New-MoveRequest ");
        ed.begin(b"> ");
        type_text(&mut ed, b"new-\t");
        assert_eq!(ed.text(), "New-M");
    }

    #[test]
    fn ctrl_c_cancels_and_ctrl_d_on_empty_is_eof() {
        let mut ed = Editor::new(80);
        ed.begin(b"> ");
        assert_eq!(type_text(&mut ed, b"abc\x03"), Some(Action::Cancel));
        ed.begin(b"> ");
        assert_eq!(type_text(&mut ed, b"\x04"), Some(Action::EndOfFile));
    }

    #[test]
    fn refresh_tracks_wrapped_rows() {
        let mut ed = Editor::new(10);
        ed.begin(b"PS> ");
        let mut out = Vec::new();
        for c in "abcdefghijklmno".chars() {
            ed.key(Key::Char(c), &mut out);
        }
        // 4 + 15 = 19 columns on a 10-column terminal: cursor on the second row.
        assert_eq!(ed.cursor_row, 1);
        out.clear();
        ed.erase_for_runspace(&mut out);
        assert!(out.starts_with(b"\x1b[1A\r\x1b[4C\x1b[J"));
    }

    #[test]
    fn a_multi_line_command_is_one_history_entry() {
        let mut ed = Editor::new(80);
        ed.begin(b"> ");
        type_text(&mut ed, b"Get-Mailbox |\r");
        let mut out = Vec::new();
        ed.continuation(&mut out);
        type_text(&mut ed, b"Where-Object {\r");
        ed.continuation(&mut out);
        type_text(&mut ed, b"$_.Name -like 'a*' }\r");
        let whole = "Get-Mailbox |\nWhere-Object {\n$_.Name -like 'a*' }";
        assert_eq!(ed.history, vec![whole.to_string()]);
        // A repeated first line does not take the earlier entry with it.
        ed.begin(b"> ");
        type_text(&mut ed, b"Get-Mailbox\r");
        ed.begin(b"> ");
        type_text(&mut ed, b"Get-Mailbox\r");
        ed.begin(b"> ");
        type_text(&mut ed, b"draft");
        type_text(&mut ed, b"\x1b[A");
        assert_eq!(ed.text(), "Get-Mailbox");
        type_text(&mut ed, b"\x1b[A");
        assert_eq!(ed.text(), whole, "recalled whole, lines kept apart");
        assert_eq!(ed.done.len(), 2);
        out.clear();
        ed.refresh(&mut out);
        let shown = String::from_utf8_lossy(&out);
        assert!(
            shown.contains("Get-Mailbox |\r\n>> Where-Object {\r\n>> $_.Name"),
            "{shown:?}"
        );
        type_text(&mut ed, b"\x1b[B\x1b[B");
        assert_eq!(ed.text(), "draft");
        assert!(ed.done.is_empty());
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(visible_width("日本".as_bytes()), 4);
        assert_eq!(visible_width("😀a".as_bytes()), 3);
        assert_eq!(visible_width("e\u{301}".as_bytes()), 1);
        // A wide character that does not fit at the end of a row wraps whole.
        assert_eq!(end_column(9, "あ".chars(), 10), 12);
        assert_eq!(end_column(8, "あ".chars(), 10), 10);

        let mut ed = Editor::new(80);
        ed.begin(b"PS> ");
        let mut out = Vec::new();
        for c in "Get-Mailbox 日本😀".chars() {
            ed.key(Key::Char(c), &mut out);
        }
        // 4 + 12 + 4 + 2 = 22: the cursor is put in column 22, not 18.
        assert!(
            out.ends_with(b"\r\x1b[22C"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        out.clear();
        ed.key(Key::Left, &mut out);
        assert!(
            out.ends_with(b"\r\x1b[20C"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );

        // On a 10-column terminal, `PS> ` + 3 wide characters = 10: the row is full.
        let mut ed = Editor::new(10);
        ed.begin(b"PS> ");
        for c in "日本語".chars() {
            ed.key(Key::Char(c), &mut out);
        }
        assert_eq!(ed.cursor_row, 1);
        ed.key(Key::Char('語'), &mut out);
        assert_eq!(ed.cursor_row, 1);
        for c in "abcdefg".chars() {
            ed.key(Key::Char(c), &mut out);
        }
        // 19 cells: one left on row two, too few for the next wide character, which starts
        // row three; the cursor goes after it, in column 2.
        out.clear();
        ed.key(Key::Char('日'), &mut out);
        assert_eq!(ed.cursor_row, 2);
        assert!(
            out.ends_with(b"\r\x1b[2C"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn visible_width_skips_escapes() {
        assert_eq!(visible_width(b"\x1b[32mPS\x1b[0m C:\\> "), 8);
        assert_eq!(visible_width(b"\x1b]0;title\x07ab"), 2);
    }
}
