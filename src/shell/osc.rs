//! OSC 133 prompt markers in the runspace's output.
//!
//! The runspace tells jitsh where it stands with semantic prompt markers (FinalTerm / OSC 133):
//! `ESC ]133;A BEL` prompt start, `ESC ]133;B BEL` prompt end (input starts), `ESC ]133;D;N BEL`
//! command finished with status N, `ESC ]133;C BEL` the command line just read runs now,
//! `ESC ]133;A;k=c BEL` (or `k=s`) a continuation prompt: the runspace reads more of a command,
//! and the private `ESC ]133;P BEL` ("secret input follows until the next newline"). The scanner splits an output stream into plain bytes and markers, across
//! reads of any size. Other escape sequences pass through untouched.
//!
//! INVARIANT: bytes are never lost or reordered; a partial marker is held back only while it
//! can still become a marker, and at most [`MAX_PENDING`] bytes are ever held.

/// A prompt marker recognised in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `133;A`: the prompt begins.
    PromptStart,
    /// `133;A;k=c` or `133;A;k=s`: a continuation (secondary) prompt begins; the runspace
    /// reads more lines of a command it has not run yet.
    ContinuationPrompt,
    /// `133;B`: the prompt ends; the runspace now reads a command line.
    PromptEnd,
    /// `133;C`: the command line just read runs now (its output begins).
    OutputStart,
    /// `133;D[;status]`: the previous command finished.
    CommandDone(Option<i32>),
    /// `133;P`: the next input up to a newline is secret (a password) and must not be recorded.
    SecretInput,
}

/// A piece of scanned output: plain bytes, or a marker at that point of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    Marker(Marker),
}

/// Longest OSC 133 sequence we hold back while waiting for its terminator. Anything longer is
/// not a marker we know and is passed through as is.
pub(crate) const MAX_PENDING: usize = 64;

const PREFIX: &[u8] = b"\x1b]133;";

/// Incremental scanner; feed it output chunks in order.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    pending: Vec<u8>,
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scan one chunk. Plain bytes and markers come out in stream order; bytes that may start a
    /// marker are kept for the next call.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Piece> {
        // Bulk output without escapes (the common case under heavy output): one copy.
        if self.pending.is_empty() && !chunk.contains(&0x1b) {
            return if chunk.is_empty() {
                Vec::new()
            } else {
                vec![Piece::Bytes(chunk.to_vec())]
            };
        }
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut plain: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let rest = data.get(i..).unwrap_or_default();
            if rest.first() != Some(&0x1b) {
                // Copy the run of plain bytes up to the next ESC in one go.
                let run = rest.iter().position(|&b| b == 0x1b).unwrap_or(rest.len());
                plain.extend_from_slice(rest.get(..run).unwrap_or_default());
                i += run;
                continue;
            }
            match match_marker(rest) {
                Match::Marker(marker, len) => {
                    if !plain.is_empty() {
                        out.push(Piece::Bytes(std::mem::take(&mut plain)));
                    }
                    out.push(Piece::Marker(marker));
                    i += len;
                }
                Match::Partial => {
                    self.pending = rest.to_vec();
                    break;
                }
                Match::No => {
                    plain.push(0x1b);
                    i += 1;
                }
            }
        }
        if !plain.is_empty() {
            out.push(Piece::Bytes(plain));
        }
        out
    }

    /// Bytes held back at the end of the stream (an unfinished sequence): pass them on as output.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

enum Match {
    Marker(Marker, usize),
    Partial,
    No,
}

fn match_marker(s: &[u8]) -> Match {
    let n = s.len().min(PREFIX.len());
    if s.get(..n) != PREFIX.get(..n) {
        return Match::No;
    }
    if s.len() < PREFIX.len() {
        return Match::Partial;
    }
    let body_start = PREFIX.len();
    let mut j = body_start;
    loop {
        match s.get(j) {
            None => {
                return if j >= MAX_PENDING {
                    Match::No
                } else {
                    Match::Partial
                }
            }
            Some(0x07) => return finish_marker(s.get(body_start..j), j + 1),
            Some(0x1b) => match s.get(j + 1) {
                None => return Match::Partial,
                Some(b'\\') => return finish_marker(s.get(body_start..j), j + 2),
                Some(_) => return Match::No,
            },
            Some(_) if j >= MAX_PENDING => return Match::No,
            Some(_) => j += 1,
        }
    }
}

fn finish_marker(body: Option<&[u8]>, len: usize) -> Match {
    let Some(body) = body else { return Match::No };
    let text = String::from_utf8_lossy(body);
    let mut parts = text.split(';');
    let marker = match parts.next() {
        Some("A") => {
            if parts.any(|option| matches!(option.trim(), "k=c" | "k=s")) {
                Marker::ContinuationPrompt
            } else {
                Marker::PromptStart
            }
        }
        Some("B") => Marker::PromptEnd,
        Some("C") => Marker::OutputStart,
        Some("P") => Marker::SecretInput,
        Some("D") => Marker::CommandDone(parts.next().and_then(|s| s.trim().parse().ok())),
        _ => return Match::No,
    };
    Match::Marker(marker, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]]) -> Vec<Piece> {
        let mut s = Scanner::new();
        let mut out: Vec<Piece> = Vec::new();
        for c in chunks {
            for p in s.feed(c) {
                // Merge adjacent byte pieces so the result does not depend on chunking.
                match (out.last_mut(), p) {
                    (Some(Piece::Bytes(a)), Piece::Bytes(b)) => a.extend(b),
                    (_, p) => out.push(p),
                }
            }
        }
        let tail = s.finish();
        if !tail.is_empty() {
            out.push(Piece::Bytes(tail));
        }
        out
    }

    #[test]
    fn markers_are_split_out_in_order() {
        let input = b"out\x1b]133;D;0\x07\x1b]133;A\x07PS C:\\> \x1b]133;B\x07";
        assert_eq!(
            scan_all(&[input]),
            vec![
                Piece::Bytes(b"out".to_vec()),
                Piece::Marker(Marker::CommandDone(Some(0))),
                Piece::Marker(Marker::PromptStart),
                Piece::Bytes(b"PS C:\\> ".to_vec()),
                Piece::Marker(Marker::PromptEnd),
            ]
        );
    }

    #[test]
    fn any_chunking_gives_the_same_result() {
        let input: &[u8] = b"a\x1b[31mred\x1b]133;P\x1b\\pw?\x1b]133;D;7\x07\x1b]0;title\x07z";
        let whole = scan_all(&[input]);
        for cut in 0..input.len() {
            let (x, y) = input.split_at(cut);
            assert_eq!(scan_all(&[x, y]), whole, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(scan_all(&bytewise), whole);
        assert!(whole.contains(&Piece::Marker(Marker::SecretInput)));
        assert!(whole.contains(&Piece::Marker(Marker::CommandDone(Some(7)))));
    }

    #[test]
    fn continuation_prompts_are_told_from_prompts() {
        let input = b"\x1b]133;A;k=c\x07>> \x1b]133;A;k=s\x1b\\\x1b]133;A;k=i\x07\x1b]133;A;aid=7\x07\x1b]133;C\x07";
        assert_eq!(
            scan_all(&[input]),
            vec![
                Piece::Marker(Marker::ContinuationPrompt),
                Piece::Bytes(b">> ".to_vec()),
                Piece::Marker(Marker::ContinuationPrompt),
                Piece::Marker(Marker::PromptStart),
                Piece::Marker(Marker::PromptStart),
                Piece::Marker(Marker::OutputStart),
            ]
        );
    }

    #[test]
    fn other_sequences_and_unknown_markers_pass_through() {
        let input = b"\x1b]0;t\x07\x1b]133;Z\x07\x1b[0m";
        assert_eq!(scan_all(&[input]), vec![Piece::Bytes(input.to_vec())]);
    }

    #[test]
    fn an_unterminated_marker_is_not_held_forever() {
        let mut input = b"\x1b]133;A".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        let pieces = scan_all(&[&input]);
        assert_eq!(pieces, vec![Piece::Bytes(input)]);
    }

    #[test]
    fn partial_marker_at_end_is_held_then_released_on_finish() {
        let mut s = Scanner::new();
        assert_eq!(s.feed(b"x\x1b]13"), vec![Piece::Bytes(b"x".to_vec())]);
        assert_eq!(s.finish(), b"\x1b]13".to_vec());
    }
}
