//! Export formats for SIEMs: ArcSight CEF and RFC 5424 syslog.
//!
//! Pure: a record in, one line out (no line end). Every field taken from a record is escaped
//! for its position, so a record cannot inject CEF fields, syslog structured data or lines.
//! Control characters (C0, DEL, C1, and the Unicode line and paragraph separators) never reach
//! the output raw: CEF and text output show them as their Unicode control pictures (see
//! [`printable`]), syslog structured data as `\uXXXX` (backslashes themselves are doubled, so
//! this is unambiguous), and the JSON message as JSON escapes.

use serde_json::Value;

use crate::audit::chain::Record;
use crate::audit::search::request_of;

/// RFC 5424 facility 13, "log audit".
const FACILITY_AUDIT: u8 = 13;
/// SD-ID of jitsh's structured data (32473 is the enterprise number RFC 5612 reserves for
/// documentation; operators can rewrite it in their collector).
const SD_ID: &str = "jitsh@32473";

/// CEF severity (0-10) for an outcome.
fn cef_severity(outcome: &str) -> u8 {
    match outcome {
        "error" => 8,
        "deny" => 7,
        "approval" => 5,
        _ => 3,
    }
}

/// Syslog severity for an outcome: err, warning, notice, informational.
fn syslog_severity(outcome: &str) -> u8 {
    match outcome {
        "error" => 3,
        "deny" => 4,
        "approval" => 5,
        _ => 6,
    }
}

/// `CEF:0|jitsh|jitsh|VERSION|action|action|severity|extension`.
pub(crate) fn to_cef(r: &Record, version: &str) -> String {
    let mut ext: Vec<(&str, String)> = vec![
        ("cn1", r.seq.to_string()),
        ("cn1Label", "seq".into()),
        ("suser", r.actor.clone()),
        ("act", r.action.clone()),
        ("outcome", r.outcome.clone()),
        ("cs1", r.subject.clone()),
        ("cs1Label", "subject".into()),
        ("cs2", r.hash.clone()),
        ("cs2Label", "hash".into()),
    ];
    if let Some(ms) = epoch_millis(&r.time) {
        ext.insert(0, ("rt", ms.to_string()));
    }
    if let Some(q) = request_of(r) {
        ext.push(("cs3", q));
        ext.push(("cs3Label", "request".into()));
    }
    if let Some(s) = r.detail_str("session") {
        ext.push(("cs4", s.to_owned()));
        ext.push(("cs4Label", "session".into()));
    }
    ext.push(("msg", Value::Object(r.details.clone()).to_string()));
    let ext = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", cef_ext_escape(v)))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "CEF:0|jitsh|jitsh|{}|{}|{}|{}|{ext}",
        cef_header_escape(version),
        cef_header_escape(&r.action),
        cef_header_escape(&r.action),
        cef_severity(&r.outcome),
    )
}

/// Whether a character could end a line, move the cursor or drive a terminal or parser: C0,
/// DEL, C1, U+2028 and U+2029.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// One control character made visible: C0 and DEL as their Unicode control pictures (ESC as
/// `␛`, NUL as `␀`), the others as U+FFFD.
fn control_picture(c: char) -> char {
    match u32::from(c) {
        n @ 0..=0x1f => char::from_u32(0x2400 + n).unwrap_or('\u{fffd}'),
        0x7f => '\u{2421}',
        _ => '\u{fffd}',
    }
}

/// `s` with every control character shown as a visible picture: for one-line text output
/// (`audit search`) and CEF, where no escape exists for them.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| if is_control(c) { control_picture(c) } else { c })
            .collect(),
    )
}

/// Header fields: backslash and pipe are escaped; control characters are made visible.
fn cef_header_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if is_control(c) => out.push(control_picture(c)),
            c => out.push(c),
        }
    }
    out
}

/// Extension values: backslash and equals are escaped; line breaks as `\n`/`\r`; other
/// control characters are made visible.
fn cef_ext_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => out.push(control_picture(c)),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOST jitsh - MSGID [jitsh@32473 ...] BOM{record}`.
pub(crate) fn to_syslog(r: &Record, hostname: &str) -> String {
    let pri = u16::from(FACILITY_AUDIT) * 8 + u16::from(syslog_severity(&r.outcome));
    let timestamp = rfc5424_time(&r.time).unwrap_or_else(|| "-".into());
    let host = header_token(hostname, 255);
    let msgid = header_token(&r.action, 32);
    let mut sd = format!("[{SD_ID}");
    let mut param = |name: &str, value: &str| {
        sd.push_str(&format!(" {name}=\"{}\"", sd_escape(value)));
    };
    param("seq", &r.seq.to_string());
    param("actor", &r.actor);
    param("subject", &r.subject);
    param("outcome", &r.outcome);
    if let Some(q) = request_of(r) {
        param("request", &q);
    }
    param("hash", &r.hash);
    sd.push(']');
    let msg = json_one_line(&serde_json::to_string(&r.event()).unwrap_or_default());
    format!("<{pri}>1 {timestamp} {host} jitsh - {msgid} {sd} \u{feff}{msg}")
}

/// RFC 5424 header token: printable US-ASCII without spaces, at most `max` long, `-` if empty.
fn header_token(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        "-".into()
    } else {
        out
    }
}

/// PARAM-VALUE: `"`, `\` and `]` are escaped as RFC 5424 says; control characters (which it
/// leaves raw, and which would end or forge a line) as `\uXXXX`.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        } else if is_control(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
            continue;
        }
        out.push(c);
    }
    out
}

/// JSON text with the characters serde leaves raw that some readers take as line ends (C1's
/// NEL, U+2028, U+2029, DEL) escaped. They only occur inside strings, where `\uXXXX` is valid.
pub(crate) fn json_one_line(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_control(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_rfc3339(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    crate::rfc3339::parse(text)
}

/// The record time in RFC 5424 form (RFC 3339, UTC, at most microseconds).
fn rfc5424_time(text: &str) -> Option<String> {
    use chrono::Timelike;
    let t = parse_rfc3339(text)?;
    let t = t.with_nanosecond(t.nanosecond() / 1000 * 1000)?;
    crate::rfc3339::format(t)
}

fn epoch_millis(text: &str) -> Option<i128> {
    Some(i128::from(parse_rfc3339(text)?.timestamp_millis()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn rec() -> Record {
        let details = serde_json::json!({"request": "q|1", "line": "a=b\\c\nd"});
        Record {
            seq: 42,
            time: "2026-01-02T03:04:05.123456789+01:00".into(),
            actor: "ali\"ce]".into(),
            action: "gate.decision".into(),
            subject: "s=1|x".into(),
            outcome: "deny".into(),
            details: details.as_object().cloned().unwrap_or_default(),
            prev: "0".repeat(64),
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let line = to_cef(&rec(), "0.1|x");
        assert!(line.starts_with("CEF:0|jitsh|jitsh|0.1\\|x|gate.decision|gate.decision|7|rt="));
        assert!(line.contains(" cs1=s\\=1|x "), "{line}");
        assert!(line.contains("cs3=q|1 "), "{line}");
        assert!(line.contains("a\\=b\\\\\\\\c\\\\nd"), "{line}");
        assert!(!line.contains('\n'));
        assert!(line.contains("rt=1767319445123 "));
    }

    #[test]
    fn syslog_is_rfc5424_with_escaped_structured_data() {
        let line = to_syslog(&rec(), "host a");
        assert!(
            line.starts_with(
                "<108>1 2026-01-02T02:04:05.123456Z host_a jitsh - gate.decision [jitsh@32473 seq=\"42\" actor=\"ali\\\"ce\\]\""
            ),
            "{line}"
        );
        assert!(line.contains("\u{feff}{\""));
        assert!(!line.contains('\n'));
    }
}
