//! Golden outputs that performance work must not change: the gate's `check` JSON for every line
//! of a fixed set under several policy sets, and a recording byte for byte.
//!
//! The decisions are pinned as one SHA-256 per (policy set, line source) in
//! tests/fixtures/golden/decisions.txt; `JITSH_BLESS=1 cargo test --test golden` rewrites it (only
//! do that for an intended change of output, and say so in the commit). The recording is pinned as
//! tests/fixtures/golden/recording.cast.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly"
)]

mod inputs;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jitsh::asciicast::{Header, JitshInfo, Recorder};
use jitsh::catalog::Catalog;
use jitsh::gate::{check_line, GateContext};
use jitsh::policy::{load_dir, synthetic_policy_set, PolicySet, PolicySource};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lines that need nothing from outside the repository: the parser fixtures, and attack and
/// edge shapes the gate must keep refusing the same way.
fn builtin_lines() -> Vec<String> {
    let mut lines = vec![
        "Get-Mailbox -Identity rob@contoso.com | Format-List".to_string(),
        "New-MoveRequest -Identity 'Ayla Kol' -TargetDatabase DB02".into(),
        "Set-Mailbox -Identity rob -ForwardingSmtpAddress rob@fabrikam.com".into(),
        "Get-MessageTrace -StartDate (Get-Date).AddDays(-7) -EndDate (Get-Date)".into(),
        "get-mailbox | set-mailbox -ProhibitSendQuota 5GB".into(),
        "& (\"Set-\" + \"Mailbox\") -Identity x".into(),
        "iex 'Remove-Mailbox x'".into(),
        "Invoke-Expression $cmd".into(),
        "Remove-Mailbox -Identity x -Confirm:$false".into(),
        "Set-Noun5 -Identity a@contoso.com".into(),
        "Add-Noun4 -Identity x".into(),
        "Get-Noun30Extra; Stop-Thing25".into(),
        "Microsoft.Exchange.Management.PowerShell.E2010\\Get-Mailbox".into(),
        "C:\\scripts\\do.ps1 -x 1".into(),
        "cmd.exe /c del x".into(),
        "[System.IO.File]::Delete('x')".into(),
        "Get-Mailbox -Identity \"unclosed".into(),
        "".into(),
        "ForEach-Object { Remove-Mailbox $_ }".into(),
        "Get-Mailbox | % { Set-Mailbox $_ -HiddenFromAddressListsEnabled $true }".into(),
    ];
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/parse"))
        .expect("tests/fixtures/parse")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ps1"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("parse fixture");
        lines.push(text.trim_end_matches(['\r', '\n']).to_string());
    }
    lines
}

fn corpus_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("corpus")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
        .collect()
}

fn policy_sets() -> Vec<(&'static str, PolicySet)> {
    let dir = |d: &str| load_dir(&root().join(d)).unwrap_or_else(|e| panic!("{d}: {e}"));
    let synthetic = |n: usize| {
        PolicySet::from_sources(&[PolicySource::new(
            format!("synthetic-{n}.toml"),
            synthetic_policy_set(n),
        )])
        .unwrap_or_else(|e| panic!("synthetic {n}: {e}"))
    };
    vec![
        ("shipped", dir("policies")),
        ("allow-all", dir("tests/fixtures/allow-all")),
        ("spec-example", dir("tests/fixtures/policies/valid")),
        ("synthetic-10", synthetic(10)),
        ("synthetic-1000", synthetic(1000)),
    ]
}

/// SHA-256 over the `check` JSON of every line, one per line.
fn digest(set: &PolicySet, lines: &[String]) -> String {
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: set,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::TimeDelta::seconds(30),
        online: false,
    };
    let mut out = String::new();
    for l in lines {
        let _ = writeln!(out, "{}", check_line(l, &ctx).to_json());
    }
    sha256_hex(out.as_bytes())
}

#[test]
fn decisions_match_the_pinned_outputs() {
    let fixture = root().join("tests/fixtures/golden/decisions.txt");
    let bless = std::env::var("JITSH_BLESS").is_ok_and(|v| v == "1");
    let mut sources = vec![("builtin", builtin_lines())];
    if let Some(path) = inputs::corpus_or_skip(
        "exchange-examples.jsonl",
        "decisions_match_the_pinned_outputs (corpus part)",
    ) {
        sources.push(("corpus", corpus_lines(&path)));
    }
    let mut actual = BTreeMap::new();
    for (set_name, set) in policy_sets() {
        for (src, lines) in &sources {
            assert!(lines.len() > 10, "{src}: too few lines");
            actual.insert(
                format!("{set_name}\t{src}\t{}", lines.len()),
                digest(&set, lines),
            );
        }
    }
    if bless {
        let mut text = String::from(
            "# SHA-256 of the check JSON (one line each) per policy set and line source.\n# Rewritten by JITSH_BLESS=1 cargo test --test golden.\n",
        );
        for (k, v) in &actual {
            let _ = writeln!(text, "{k}\t{v}");
        }
        std::fs::write(&fixture, text).expect("write fixture");
        return;
    }
    let pinned: BTreeMap<String, String> = std::fs::read_to_string(&fixture)
        .expect("tests/fixtures/golden/decisions.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut wrong = Vec::new();
    for (k, v) in &actual {
        match pinned.get(k) {
            Some(p) if p == v => {}
            Some(_) => wrong.push(format!("{k}: output changed")),
            None => wrong.push(format!("{k}: not pinned")),
        }
    }
    assert!(
        wrong.is_empty(),
        "decisions differ from the pinned ones: {wrong:#?}"
    );
}

/// Writes a fixed session (split UTF-8, controls, quotes, markers, a resize, a torn last
/// character) with fixed times; the file must equal the pinned one byte for byte and the
/// returned digest must be the file's.
#[test]
fn recording_matches_the_pinned_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.cast");
    let header = Header {
        width: 120,
        height: 40,
        timestamp: Some(1_764_000_000),
        idle_time_limit: None,
        command: Some("jitsh-exsim".into()),
        title: Some("jitsh session s-1 (alice)".into()),
        env: [("TERM".to_string(), "xterm-256color".to_string())].into(),
        jitsh: Some(JitshInfo {
            user: Some("alice".into()),
            session: Some("s-1".into()),
            runspace: Some("jitsh-exsim".into()),
        }),
    };
    let mut rec = Recorder::create(&path, &header).unwrap();
    let euro = "€".as_bytes();
    rec.output(1_000, b"PS C:\\> ").unwrap();
    rec.input(2_500, b"Get-Mailbox \"x\"\r").unwrap();
    rec.marker(2_600, "allow Get-Mailbox (rule read-only)")
        .unwrap();
    rec.output(3_000, &[b'a', euro[0], euro[1]]).unwrap();
    rec.output(3_001, &[euro[2], b'\x1b', b'[', b'0', b'm', b'\t'])
        .unwrap();
    rec.output(2_900, b"clock went back\r\n").unwrap();
    rec.resize(4_000, 80, 24).unwrap();
    rec.input(5_000, b"\x03\x7f\\").unwrap();
    rec.output(6_000, &[0xff, b'z', 0xe2, 0x82]).unwrap();
    rec.marker(7_000, "deny Remove-Mailbox: \u{1F512} \"quoted\"")
        .unwrap();
    let digest = rec.finish(8_000).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        digest,
        sha256_hex(&bytes),
        "finish returns the file's SHA-256"
    );
    let fixture = root().join("tests/fixtures/golden/recording.cast");
    if std::env::var("JITSH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&fixture, &bytes).unwrap();
        return;
    }
    let pinned = std::fs::read(&fixture).expect("tests/fixtures/golden/recording.cast");
    assert!(
        bytes == pinned,
        "recording differs from the pinned one:\n{}\n---\n{}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&pinned)
    );
}

/// The recorder writes event lines straight into its buffer; they must be the bytes the
/// reference encoding (time as `format_time`, code and data as JSON strings) gives.
#[test]
fn event_lines_match_the_reference_encoding() {
    use jitsh::asciicast::v2::{encode_event, format_time, Event, EventKind};
    let times = [
        0,
        1,
        9,
        10,
        100_000,
        999_999,
        1_000_000,
        1_000_001,
        1_234_500,
        86_400_000_000,
        123_456_789_012,
        u64::MAX - 1,
        u64::MAX,
    ];
    let data = [
        "",
        "plain",
        "\"q\" \\ \u{1b}[0m\t\r\n",
        "€ 🔒",
        "\u{7f}\u{0}",
    ];
    let kinds = [
        EventKind::Output,
        EventKind::Input,
        EventKind::Marker,
        EventKind::Resize,
        EventKind::Other("x".into()),
    ];
    for t in times {
        for d in data {
            for k in &kinds {
                let reference = format!(
                    "[{}, {}, {}]",
                    format_time(t),
                    serde_json::Value::from(k.code()),
                    serde_json::Value::from(d)
                );
                let ev = Event {
                    time_us: t,
                    kind: k.clone(),
                    data: d.to_string(),
                };
                assert_eq!(encode_event(&ev), reference);
            }
        }
    }
    // And at random: any time, any text, every kind.
    proptest::proptest!(|(t in proptest::prelude::any::<u64>(), d in ".*", k in 0usize..5)| {
        let reference = format!(
            "[{}, {}, {}]",
            format_time(t),
            serde_json::Value::from(kinds[k].code()),
            serde_json::Value::from(d.as_str())
        );
        let ev = Event {
            time_us: t,
            kind: kinds[k].clone(),
            data: d,
        };
        proptest::prop_assert_eq!(encode_event(&ev), reference);
    });
}
