//! Incremental UTF-8 decoding for terminal output that arrives in arbitrary chunks.
//!
//! A PTY read may end in the middle of a multi-byte character; the tail is kept until the next
//! chunk. Invalid bytes become U+FFFD. Never panics, whatever the input.

/// Decodes a byte stream into `String` chunks, carrying split characters across calls.
#[derive(Debug, Default, Clone)]
pub struct Utf8Decoder {
    /// The start of a character whose remaining bytes have not arrived yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode the next chunk. Bytes of a character split at the end of `input` are kept for the
    /// next call.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> std::borrow::Cow<'a, str> {
        // The common case, nothing carried over and whole characters only: no copy.
        if self.pending.is_empty() {
            if let Ok(valid) = std::str::from_utf8(input) {
                return std::borrow::Cow::Borrowed(valid);
            }
        }
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(input);
        let mut out = String::with_capacity(bytes.len());
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` guarantees this prefix is valid UTF-8.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None => {
                            // An incomplete sequence at the very end: wait for more bytes.
                            self.pending = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        std::borrow::Cow::Owned(out)
    }

    /// End of stream: an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_a_multibyte_text_decodes_the_same() {
        let text = "héllo → 世界 🎉 done";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut d = Utf8Decoder::new();
            let (a, b) = bytes.split_at(cut);
            let got = d.decode(a).into_owned() + &d.decode(b) + &d.finish();
            assert_eq!(got, text, "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_decoding_matches() {
        let text = "αβγ 🎉";
        let mut d = Utf8Decoder::new();
        let got: String = text
            .as_bytes()
            .iter()
            .map(|b| d.decode(&[*b]).into_owned())
            .collect();
        assert_eq!(got, text);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut d = Utf8Decoder::new();
        assert_eq!(d.decode(b"a\xffb\xc3(c"), "a\u{fffd}b\u{fffd}(c");
        assert_eq!(d.decode(b"x\xe2\x82"), "x");
        assert_eq!(d.finish(), "\u{fffd}");
        assert_eq!(d.finish(), "");
    }

    proptest::proptest! {
        #[test]
        fn chunked_decoding_equals_lossy_decoding_of_the_whole(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut d = Utf8Decoder::new();
            let mut got = String::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                got += &d.decode(&bytes[from..cut]);
                from = cut;
            }
            got += &d.finish();
            proptest::prop_assert_eq!(got, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}
