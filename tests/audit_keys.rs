//! The audit log's checkpoints are signed with the service's own key, so `audit verify` trusts
//! the same `signing.pub` that gates trust for tokens.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly"
)]

use std::process::Command;

use jitsh::audit::{AuditEvent, AuditLog, AuditSigner, AuditSink};
use jitsh::token::SigningKey;

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        time: "2026-11-27T10:00:00Z".into(),
        actor: "alice".into(),
        action: "request.create".into(),
        subject: format!("req-{n}"),
        outcome: "ok".into(),
        details: serde_json::Map::new(),
    }
}

#[test]
fn a_log_signed_with_the_service_key_verifies_with_its_public_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let status = Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let key_text = std::fs::read_to_string(keys.join("signing.key")).unwrap();
    let key = SigningKey::from_file_text(&key_text).unwrap();
    let log_dir = dir.path().join("audit");
    let log = AuditLog::open(&log_dir, Some(AuditSigner::from_signing_key(&key))).unwrap();
    for n in 0..5 {
        log.append(event(n)).unwrap();
    }
    log.close().unwrap();

    let verify = |trust: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_jitsh"))
            .args(["audit", "verify"])
            .arg(&log_dir)
            .arg("--trust-key")
            .arg(trust)
            .output()
            .unwrap()
    };
    let ok = verify(&keys.join("signing.pub"));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));

    // Another service's key does not vouch for this log.
    let other = dir.path().join("other");
    Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(["keygen", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    let bad = verify(&other.join("signing.pub"));
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
}
