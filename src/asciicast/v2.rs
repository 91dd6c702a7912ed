//! asciicast v2: the header line, `[time, code, data]` event lines, an encoder that formats time
//! from integer microseconds (no float drift), and a decoder that tolerates a torn last line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AsciicastError;

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub width: u16,
    pub height: u16,
    /// Unix time (seconds) the recording started.
    pub timestamp: Option<i64>,
    pub idle_time_limit: Option<f64>,
    pub command: Option<String>,
    pub title: Option<String>,
    /// Usually `SHELL` and `TERM`.
    pub env: BTreeMap<String, String>,
    /// jitsh's own header key; other players ignore it.
    pub jitsh: Option<JitshInfo>,
}

/// Who recorded the session and against what, stored under the `"jitsh"` header key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JitshInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runspace: Option<String>,
}

/// The header as it appears on the wire.
#[derive(Serialize, Deserialize)]
struct WireHeader {
    version: u8,
    width: u16,
    height: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_time_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitsh: Option<JitshInfo>,
}

/// What an event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `"o"`: bytes the runspace wrote to the terminal.
    Output,
    /// `"i"`: bytes the user typed.
    Input,
    /// `"m"`: a marker (one per gate decision); the data is its label.
    Marker,
    /// `"r"`: terminal resized; the data is `COLSxROWS`.
    Resize,
    /// Any other code, kept so a newer recording still reads.
    Other(String),
}

impl EventKind {
    pub fn code(&self) -> &str {
        match self {
            EventKind::Output => "o",
            EventKind::Input => "i",
            EventKind::Marker => "m",
            EventKind::Resize => "r",
            EventKind::Other(code) => code,
        }
    }

    fn from_code(code: &str) -> Self {
        match code {
            "o" => EventKind::Output,
            "i" => EventKind::Input,
            "m" => EventKind::Marker,
            "r" => EventKind::Resize,
            other => EventKind::Other(other.to_owned()),
        }
    }
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Microseconds since the start of the recording.
    pub time_us: u64,
    pub kind: EventKind,
    pub data: String,
}

impl Event {
    pub fn new(time_us: u64, kind: EventKind, data: impl Into<String>) -> Self {
        Self {
            time_us,
            kind,
            data: data.into(),
        }
    }
}

/// A decoded recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub header: Header,
    pub events: Vec<Event>,
    /// Set when the last line was cut off (the session was killed mid-write); the events before
    /// it are intact.
    pub torn: Option<TornTail>,
}

/// The unreadable last line of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// 1-based line number.
    pub line: usize,
    pub bytes: usize,
}

/// Format microseconds as seconds with up to six decimals, trailing zeros trimmed (`1.5`,
/// `0.000001`, `3.0`).
pub fn format_time(time_us: u64) -> String {
    let secs = time_us / 1_000_000;
    let frac = format!("{:06}", time_us % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{secs}.0")
    } else {
        format!("{secs}.{frac}")
    }
}

/// The header line, without its newline.
pub fn encode_header(header: &Header) -> String {
    let wire = WireHeader {
        version: 2,
        width: header.width,
        height: header.height,
        timestamp: header.timestamp,
        idle_time_limit: header.idle_time_limit,
        command: header.command.clone(),
        title: header.title.clone(),
        env: header
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        jitsh: header.jitsh.clone(),
    };
    // Serializing plain strings and numbers into a String cannot fail; fall back to a minimal
    // header rather than panic.
    serde_json::to_string(&wire).unwrap_or_else(|_| {
        format!(
            r#"{{"version":2,"width":{},"height":{}}}"#,
            header.width, header.height
        )
    })
}

/// One event line, without its newline.
pub fn encode_event(event: &Event) -> String {
    let mut out = Vec::with_capacity(event.data.len() + 24);
    encode_event_into(&mut out, event.time_us, &event.kind, &event.data);
    // Only JSON text was written, which is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Append the event line (without newline) to `out`: the same bytes as [`encode_event`],
/// written straight from `data` with no intermediate copies.
pub fn encode_event_into(out: &mut Vec<u8>, time_us: u64, kind: &EventKind, data: &str) {
    // Through `itoa` rather than `write!`: the formatter was a tenth of the instructions a
    // keystroke costs the session, and this runs before the key is sent.
    let secs = time_us / 1_000_000;
    let frac = time_us % 1_000_000;
    let mut digits = itoa::Buffer::new();
    out.push(b'[');
    out.extend_from_slice(digits.format(secs).as_bytes());
    out.push(b'.');
    if frac == 0 {
        out.push(b'0');
    } else {
        // Six places, trailing zeros dropped: 1.5 s is `1.5`, 1 µs is `0.000001`.
        let frac = digits.format(frac);
        out.resize(out.len() + 6usize.saturating_sub(frac.len()), b'0');
        out.extend_from_slice(frac.trim_end_matches('0').as_bytes());
    }
    out.extend_from_slice(b", ");
    push_json_str(out, kind.code());
    out.extend_from_slice(b", ");
    push_json_str(out, data);
    out.push(b']');
}

/// `text` as a JSON string, byte for byte as serde_json writes it: `"` and `\` escaped, the
/// control characters below U+0020 as `\b \t \n \f \r` or `\u00xx`, everything else as it is.
/// Runs that need no escape are found eight bytes at a time and copied whole: a terminal's
/// output is mostly such runs, and serde_json's byte-at-a-time escaping was the largest part of
/// the shell's own work under heavy output.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `w` is zero (exact: no false answer either way).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    // Whether any byte of `w` is below 0x20, a quote or a backslash.
    let needs_escape = |w: u64| {
        w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
    };
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    loop {
        while let Some(w) = bytes
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_ne_bytes)
        {
            if needs_escape(w) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        let short = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            0x08 => Some(b'b'),
            0x09 => Some(b't'),
            0x0A => Some(b'n'),
            0x0C => Some(b'f'),
            0x0D => Some(b'r'),
            _ => None,
        };
        i += 1;
        if short.is_none() && b >= 0x20 {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i - 1).unwrap_or_default());
        start = i;
        match short {
            Some(c) => out.extend_from_slice(&[b'\\', c]),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xF)]);
            }
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Decode a whole recording. A last line that does not parse is reported in [`Cast::torn`]
/// instead of failing; a bad line anywhere else is an error.
pub fn decode(text: &str) -> Result<Cast, AsciicastError> {
    let mut lines = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let Some((_, first)) = lines.next() else {
        return Err(AsciicastError::Empty);
    };
    let header = decode_header(first)?;
    let mut events = Vec::new();
    let mut torn = None;
    while let Some((index, line)) = lines.next() {
        match decode_event(line) {
            Ok(event) => events.push(event),
            Err(message) => {
                if lines.peek().is_none() {
                    torn = Some(TornTail {
                        line: index + 1,
                        bytes: line.len(),
                    });
                } else {
                    return Err(AsciicastError::Event {
                        line: index + 1,
                        message,
                    });
                }
            }
        }
    }
    Ok(Cast {
        header,
        events,
        torn,
    })
}

fn decode_header(line: &str) -> Result<Header, AsciicastError> {
    let err = |message: String| AsciicastError::Header { line: 1, message };
    let wire: WireHeader = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
    if wire.version != 2 {
        return Err(err(format!("version is `{}`, expected `2`", wire.version)));
    }
    Ok(Header {
        width: wire.width,
        height: wire.height,
        timestamp: wire.timestamp,
        idle_time_limit: wire.idle_time_limit,
        command: wire.command,
        title: wire.title,
        env: wire
            .env
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        jitsh: wire.jitsh,
    })
}

fn decode_event(line: &str) -> Result<Event, String> {
    let (time, code, data): (f64, String, String) =
        serde_json::from_str(line).map_err(|e| e.to_string())?;
    if !time.is_finite() || time < 0.0 {
        return Err(format!("time `{time}` is not a non-negative number"));
    }
    // Rounding recovers the exact microsecond written by `format_time`: f64 holds 15 digits,
    // exact for recordings shorter than 10^9 seconds.
    let time_us = (time * 1_000_000.0).round() as u64;
    Ok(Event {
        time_us,
        kind: EventKind::from_code(&code),
        data,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            width: 120,
            height: 40,
            timestamp: Some(1_790_000_000),
            title: Some("alice@ex".into()),
            env: [
                ("SHELL".to_owned(), "jitsh".to_owned()),
                ("TERM".to_owned(), "xterm".to_owned()),
            ]
            .into(),
            jitsh: Some(JitshInfo {
                user: Some("alice".into()),
                session: Some("s1".into()),
                runspace: Some("jitsh-exsim".into()),
            }),
            ..Header::default()
        }
    }

    #[test]
    fn time_is_formatted_from_integer_microseconds() {
        assert_eq!(format_time(0), "0.0");
        assert_eq!(format_time(1), "0.000001");
        assert_eq!(format_time(1_500_000), "1.5");
        assert_eq!(format_time(3_000_000), "3.0");
        assert_eq!(format_time(123_456_789_012), "123456.789012");
    }

    #[test]
    fn header_and_events_round_trip() {
        let events = vec![
            Event::new(0, EventKind::Output, "PS C:\\> "),
            Event::new(1_234_567, EventKind::Input, "Get-Mailbox\r"),
            Event::new(
                1_300_001,
                EventKind::Marker,
                "gate: allow rule=read-only line=1",
            ),
            Event::new(2_000_000, EventKind::Resize, "100x30"),
            Event::new(
                9_999_999_999,
                EventKind::Output,
                "\u{1b}[31m\"quoted\"\n\u{0}é",
            ),
        ];
        let mut text = encode_header(&header()) + "\n";
        for e in &events {
            text += &(encode_event(e) + "\n");
        }
        let cast = decode(&text).unwrap();
        assert_eq!(cast.header, header());
        assert_eq!(cast.events, events);
        assert_eq!(cast.torn, None);
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_rest_kept() {
        let text = format!(
            "{}\n{}\n[1.5, \"o\", \"trunc",
            encode_header(&header()),
            encode_event(&Event::new(1, EventKind::Output, "a"))
        );
        let cast = decode(&text).unwrap();
        assert_eq!(cast.events.len(), 1);
        assert_eq!(cast.torn, Some(TornTail { line: 3, bytes: 17 }));
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let text = format!(
            "{}\n[1, \"o\"\n[2, \"o\", \"x\"]\n",
            encode_header(&header())
        );
        let err = decode(&text).unwrap_err();
        assert!(
            matches!(err, AsciicastError::Event { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn other_versions_and_empty_files_are_refused() {
        assert!(matches!(decode(""), Err(AsciicastError::Empty)));
        let err = decode("{\"version\":1,\"width\":1,\"height\":1}\n").unwrap_err();
        assert!(err.to_string().contains("expected `2`"), "{err}");
    }

    #[test]
    fn unknown_header_keys_and_event_codes_are_kept_readable() {
        let text = "{\"version\":2,\"width\":80,\"height\":24,\"theme\":{}}\n[0.5, \"x\", \"?\"]\n";
        let cast = decode(text).unwrap();
        assert_eq!(cast.events[0].kind, EventKind::Other("x".into()));
        assert_eq!(cast.events[0].time_us, 500_000);
    }

    /// The recording's strings are written as serde_json writes them, byte for byte: every
    /// byte value below 0x80 at each position of an eight-byte word, runs of plain text around
    /// them, and characters of two, three and four bytes.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = Vec::new();
        for b in 0u8..0x80 {
            let c = char::from(b);
            for at in 0..9 {
                let mut t = "abcdefghijklmnop".to_string();
                t.insert(at, c);
                cases.push(t);
            }
            cases.push(c.to_string());
        }
        cases.extend(
            [
                "",
                "plain text of some length without anything to escape",
                "\u{1b}[31mred\u{1b}[0m\r\n",
                "é\"ü\\€𝄞\u{7f}\u{80}\u{2028}",
                "\r\n\r\n\t\t\u{0}\u{1f}",
            ]
            .map(String::from),
        );
        for t in cases {
            let mut got = Vec::new();
            push_json_str(&mut got, &t);
            assert_eq!(got, serde_json::to_vec(&t).unwrap(), "{t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(t in "\\PC*|[\\x00-\\x7f]*") {
            let mut got = Vec::new();
            push_json_str(&mut got, &t);
            proptest::prop_assert_eq!(got, serde_json::to_vec(&t).unwrap());
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in "\\PC{0,200}") {
            let _ = decode(&text);
        }

        #[test]
        fn any_event_round_trips(time_us in 0u64..1_000_000_000_000_000, data in "\\PC{0,40}") {
            let event = Event::new(time_us, EventKind::Output, data);
            let text = encode_header(&Header::default()) + "\n" + &encode_event(&event) + "\n";
            proptest::prop_assert_eq!(decode(&text).unwrap().events, vec![event]);
        }
    }
}
