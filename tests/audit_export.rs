//! Exports and search output with hostile fields: every record stays one line in every format,
//! no field can forge a line, a structured-data parameter or a CEF extension, and no control
//! character reaches the output raw. Each format is read back by a strict parser written here,
//! independent of the exporter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test failures are panics"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use jitsh::audit::{AuditEvent, AuditLog, AuditSink};

/// Values that try to end a line, start a forged one, close structured data, add CEF keys or
/// drive a terminal.
fn hostile() -> Vec<String> {
    vec![
        "mallory\r\n<110>1 2026-01-01T00:00:00Z host jitsh - request.approve [jitsh@32473 \
         actor=\"cab\" outcome=\"ok\"] \u{feff}{\"approved\":\"CAB-1234\"}"
            .into(),
        "x\u{1b}[2J\u{1b}]0;title\u{7}\u{0}\u{7f}\u{85}\u{2028}\u{2029}".into(),
        "q] \" \\ | = suser=root cs1=forged\\".into(),
        "line\nCEF:0|jitsh|jitsh|1|request.approve|request.approve|3|suser=cab".into(),
        "\\u000d not a CR".into(),
    ]
}

fn events() -> Vec<AuditEvent> {
    hostile()
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let details = serde_json::json!({
                "request": h,
                "line": h,
                "session": h,
                "n": i,
            });
            AuditEvent {
                time: "2026-03-04T05:06:07Z".into(),
                actor: h.clone(),
                action: "request.create".into(),
                subject: h.clone(),
                outcome: h,
                details: details.as_object().cloned().unwrap(),
            }
        })
        .collect()
}

fn log_with_hostile_records(dir: &Path) {
    let log = AuditLog::open(dir, None).unwrap();
    for e in events() {
        log.append(e).unwrap();
    }
    log.close().unwrap();
}

fn jitsh(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The output lines; none may hold a control character or a Unicode line separator.
fn clean_lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap();
    let lines: Vec<&str> = body.split('\n').collect();
    for l in &lines {
        let bad: Vec<char> = l
            .chars()
            .filter(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            .collect();
        assert!(bad.is_empty(), "raw control characters {bad:?} in {l:?}");
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// A strict RFC 5424 reader

#[derive(Debug)]
struct Syslog {
    msgid: String,
    sd: Vec<(String, BTreeMap<String, String>)>,
    msg: String,
}

fn take_token<'a>(s: &mut &'a str, what: &str, max: usize) -> &'a str {
    let end = s
        .find(' ')
        .unwrap_or_else(|| panic!("no space after {what}"));
    let tok = &s[..end];
    assert!(
        !tok.is_empty() && tok.len() <= max && tok.chars().all(|c| c.is_ascii_graphic()),
        "bad {what}: {tok:?}"
    );
    *s = &s[end + 1..];
    tok
}

fn sd_name(s: &mut &str) -> String {
    let end = s.find(['=', ' ', ']', '"']).unwrap();
    let name = &s[..end];
    assert!(
        (1..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_graphic()),
        "bad SD name {name:?}"
    );
    *s = &s[end..];
    name.to_owned()
}

fn parse_rfc5424(line: &str) -> Syslog {
    let mut s = line;
    let rest = s.strip_prefix('<').expect("PRI");
    let close = rest.find('>').expect("PRI end");
    let pri: u16 = rest[..close].parse().expect("PRI digits");
    assert!(pri <= 191 && close <= 3);
    s = &rest[close + 1..];
    s = s.strip_prefix("1 ").expect("VERSION 1");
    take_token(&mut s, "TIMESTAMP", 64);
    take_token(&mut s, "HOSTNAME", 255);
    take_token(&mut s, "APP-NAME", 48);
    take_token(&mut s, "PROCID", 128);
    let msgid = take_token(&mut s, "MSGID", 32).to_owned();
    let mut sd = Vec::new();
    if let Some(r) = s.strip_prefix('-') {
        s = r;
    } else {
        while let Some(r) = s.strip_prefix('[') {
            s = r;
            let id = sd_name(&mut s);
            let mut params = BTreeMap::new();
            loop {
                if let Some(r) = s.strip_prefix(']') {
                    s = r;
                    break;
                }
                s = s.strip_prefix(' ').expect("SP before SD-PARAM");
                let name = sd_name(&mut s);
                s = s.strip_prefix("=\"").expect("=\" after PARAM-NAME");
                let mut value = String::new();
                let mut chars = s.char_indices();
                let end = loop {
                    let (i, c) = chars.next().expect("unterminated PARAM-VALUE");
                    match c {
                        '\\' => {
                            let (_, n) = chars.next().expect("escape at end");
                            if matches!(n, '"' | '\\' | ']') {
                                value.push(n);
                            } else {
                                // RFC 5424: any other backslash is two literal characters.
                                value.push('\\');
                                value.push(n);
                            }
                        }
                        '"' => break i,
                        ']' => panic!("unescaped ] in PARAM-VALUE"),
                        c => value.push(c),
                    }
                };
                s = &s[end + 1..];
                assert!(
                    params.insert(name.clone(), value).is_none(),
                    "repeated {name}"
                );
            }
            sd.push((id, params));
        }
    }
    let msg = match s.strip_prefix(' ') {
        Some(m) => m
            .strip_prefix('\u{feff}')
            .expect("BOM before UTF-8 MSG")
            .to_owned(),
        None => {
            assert!(s.is_empty(), "junk after SD: {s:?}");
            String::new()
        }
    };
    Syslog { msgid, sd, msg }
}

/// How the exporter shows a control character in a PARAM-VALUE, as RFC 5424 reads it back.
fn sd_expected(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A strict CEF reader

fn parse_cef(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let body = line.strip_prefix("CEF:").expect("CEF prefix");
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = body.chars();
    while header.len() < 7 {
        match chars.next().expect("short header") {
            '\\' => match chars.next().expect("escape at end") {
                c @ ('\\' | '|') => field.push(c),
                c => panic!("bad header escape \\{c}"),
            },
            '|' => header.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    let ext: String = chars.collect();
    // Extension: `key=value` pairs; a key is alphanumeric and follows a space (or the start);
    // an `=` in a value must be escaped.
    let mut pairs = BTreeMap::new();
    let bytes: Vec<char> = ext.chars().collect();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '\\' => i += 2,
            '=' => {
                eqs.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    let mut starts = Vec::new();
    for &e in &eqs {
        let key_start = bytes[..e]
            .iter()
            .rposition(|&c| c == ' ')
            .map_or(0, |p| p + 1);
        let key: String = bytes[key_start..e].iter().collect();
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad extension key {key:?} in {ext:?}"
        );
        starts.push((key_start, e, key));
    }
    for (n, (_, e, key)) in starts.iter().enumerate() {
        let end = starts
            .get(n + 1)
            .map_or(bytes.len(), |(ks, _, _)| ks.saturating_sub(1));
        let raw: String = bytes[e + 1..end].iter().collect();
        let mut value = String::new();
        let mut cs = raw.chars();
        while let Some(c) = cs.next() {
            if c == '\\' {
                match cs.next().expect("escape at end") {
                    '\\' => value.push('\\'),
                    '=' => value.push('='),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    o => panic!("bad extension escape \\{o}"),
                }
            } else {
                value.push(c);
            }
        }
        assert!(pairs.insert(key.clone(), value).is_none(), "repeated {key}");
    }
    (header, pairs)
}

/// How CEF shows a value: line breaks escaped (and read back), other controls as pictures.
fn cef_expected(s: &str) -> String {
    s.chars()
        .map(|c| match u32::from(c) {
            0x0a | 0x0d => c,
            n @ 0..=0x1f => char::from_u32(0x2400 + n).unwrap(),
            0x7f => '\u{2421}',
            _ if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => '\u{fffd}',
            _ => c,
        })
        .collect()
}

#[test]
fn syslog_export_keeps_each_hostile_record_on_one_rfc5424_line() {
    let dir = tempfile::tempdir().unwrap();
    log_with_hostile_records(dir.path());
    let (code, out) = jitsh(&[
        "audit",
        "export",
        "--format",
        "syslog",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let lines = clean_lines(&out);
    let evs = events();
    // genesis + the hostile events: nothing more, nothing less.
    assert_eq!(lines.len(), 1 + evs.len(), "{out}");
    for (line, ev) in lines[1..].iter().zip(&evs) {
        let m = parse_rfc5424(line);
        assert_eq!(m.msgid, "request.create");
        assert_eq!(m.sd.len(), 1, "{line}");
        let (id, params) = &m.sd[0];
        assert_eq!(id, "jitsh@32473");
        assert_eq!(params["actor"], sd_expected(&ev.actor), "{line}");
        assert_eq!(params["subject"], sd_expected(&ev.subject));
        assert_eq!(params["outcome"], sd_expected(&ev.outcome));
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["actor", "hash", "outcome", "request", "seq", "subject"]
        );
        // The message keeps the event exactly.
        let back: AuditEvent = serde_json::from_str(&m.msg).unwrap();
        assert_eq!(&back, ev);
    }
}

#[test]
fn cef_export_escapes_hostile_fields_and_carries_no_raw_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    log_with_hostile_records(dir.path());
    let (code, out) = jitsh(&[
        "audit",
        "export",
        "--format",
        "cef",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let lines = clean_lines(&out);
    let evs = events();
    assert_eq!(lines.len(), 1 + evs.len(), "{out}");
    for (line, ev) in lines[1..].iter().zip(&evs) {
        let (header, ext) = parse_cef(line);
        assert_eq!(
            header[..6],
            [
                "0",
                "jitsh",
                "jitsh",
                header[3].as_str(),
                "request.create",
                "request.create"
            ]
        );
        let keys: Vec<&str> = ext.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "act", "cn1", "cn1Label", "cs1", "cs1Label", "cs2", "cs2Label", "cs3", "cs3Label",
                "cs4", "cs4Label", "msg", "outcome", "rt", "suser"
            ],
            "{line}"
        );
        assert_eq!(ext["suser"], cef_expected(&ev.actor), "{line}");
        assert_eq!(ext["cs1"], cef_expected(&ev.subject));
        assert_eq!(ext["outcome"], cef_expected(&ev.outcome));
        assert_eq!(ext["cs4"], cef_expected(&ev.actor));
        let details: serde_json::Value = serde_json::from_str(&ext["msg"]).unwrap();
        assert_eq!(details["n"], ev.details["n"]);
    }
}

#[test]
fn jsonl_export_and_search_output_are_one_line_per_record_without_raw_controls() {
    let dir = tempfile::tempdir().unwrap();
    log_with_hostile_records(dir.path());
    let evs = events();
    let (code, out) = jitsh(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let lines = clean_lines(&out);
    assert_eq!(lines.len(), 1 + evs.len());
    for (line, ev) in lines[1..].iter().zip(&evs) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["actor"], ev.actor.as_str());
        assert_eq!(v["subject"], ev.subject.as_str());
    }

    let (code, out) = jitsh(&[
        "audit",
        "search",
        "--since",
        "2026-01-01",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let lines = clean_lines(&out);
    // Header, genesis and one row per event.
    assert_eq!(lines.len(), 2 + evs.len(), "{out}");
    assert!(lines[3].contains("x\u{241b}[2J"), "{}", lines[3]);

    let (code, out) = jitsh(&[
        "audit",
        "search",
        "--json",
        "--since",
        "2026-01-01",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let lines = clean_lines(&out);
    assert_eq!(lines.len(), 1 + evs.len());
    for (line, ev) in lines[1..].iter().zip(&evs) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["record"]["actor"], ev.actor.as_str());
    }
}
